package borealis

import (
	"context"
	"net/http"
)

// The calls below belong to other parts of the control plane (failover, stop/start/reboot). They
// name their route once here; on a control plane without the route they return an error wrapping
// ErrNotSupported. Like aws rds, stop, start and reboot answer at once with the cluster in its
// transitional status: follow with WaitStatus.

// Failover promotes a reader to writer (Aurora's FailoverDBCluster); target is the member to
// promote, or "" to let the control plane choose.
func (cl *Client) Failover(ctx context.Context, target string) (Description, error) {
	var out struct {
		DBCluster Description `json:"DBCluster"`
	}
	var in any
	if target != "" {
		in = map[string]string{"TargetDBInstanceIdentifier": target}
	}
	err := cl.do(ctx, http.MethodPost, cl.clusterPath("/failover"), in, &out, "failover")
	return out.DBCluster, err
}

// Stop stops the cluster (Aurora's StopDBCluster): its nodes shut down, its state is kept.
func (cl *Client) Stop(ctx context.Context) (Description, error) {
	var out struct {
		DBCluster Description `json:"DBCluster"`
	}
	err := cl.do(ctx, http.MethodPost, cl.clusterPath("/stop"), nil, &out, "stop cluster")
	return out.DBCluster, err
}

// Start starts a stopped cluster (Aurora's StartDBCluster).
func (cl *Client) Start(ctx context.Context) (Description, error) {
	var out struct {
		DBCluster Description `json:"DBCluster"`
	}
	err := cl.do(ctx, http.MethodPost, cl.clusterPath("/start"), nil, &out, "start cluster")
	return out.DBCluster, err
}

// Reboot restarts one instance (the writer when instance is "").
func (cl *Client) Reboot(ctx context.Context, instance string) (Description, error) {
	var out struct {
		DBCluster Description `json:"DBCluster"`
	}
	var in any
	if instance != "" {
		in = map[string]string{"DBInstanceIdentifier": instance}
	}
	err := cl.do(ctx, http.MethodPost, cl.clusterPath("/reboot"), in, &out, "reboot")
	return out.DBCluster, err
}
