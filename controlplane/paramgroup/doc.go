// Package paramgroup owns cluster parameter groups: the engine's default group (family
// borealis-postgresql15, read-only), the catalogue of every parameter it lists (value, type,
// allowed values, ApplyType, whether it is modifiable and by whom), the validation of a change,
// and the custom groups kept in the control plane's store.
//
// It decides; it never touches a node. Turning a group into ALTER SYSTEM, reloads and restarts
// is the cluster package's job (controlplane/cluster/paramgroups.go), which asks this package
// for the settings a node must carry (Effective) and whether a change needs a restart.
//
// Parameters that follow capacity (shared_buffers, max_connections, ...) belong to the capacity
// machinery, not to parameter groups: a change to one is refused naming that owner.
package paramgroup
