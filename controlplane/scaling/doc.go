// Package scaling decides a node's capacity from what was observed on it, in the style of
// Neon's autoscaler-agent core: Decide is a pure function of a Policy, the State carried from
// the previous decision and one Observation, and returns the target capacity with the reason
// and the next State. It does no I/O and reads no clock; the same inputs give the same output.
//
// It owns the decision only. It never applies a change (the cluster manager does), and knows
// capacities only through the capacity package.
package scaling
