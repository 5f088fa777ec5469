package api

import (
	"context"
	"net/http"
	"time"

	"github.com/borealisdb/borealis/controlplane/cluster"
)

// FailoverInput is the body of POST /v1/clusters/{name}/failover (aws rds failover-db-cluster).
type FailoverInput struct {
	TargetDBInstanceIdentifier string `json:"TargetDBInstanceIdentifier,omitempty"`
}

// failover runs a switchover and answers once it completed (or was refused, with nothing
// changed).
func (a *apiHandler) failover(w http.ResponseWriter, r *http.Request) {
	var in FailoverInput
	if r.ContentLength != 0 && !decode(w, r, &in) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Minute)
	defer cancel()
	d, err := a.cfg.Manager.Failover(ctx, r.PathValue("name"), in.TargetDBInstanceIdentifier)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ClusterBody{DBCluster: d})
}

// modifyMember changes one member's promotion tier (aws rds modify-db-instance --promotion-tier).
func (a *apiHandler) modifyMember(w http.ResponseWriter, r *http.Request) {
	var in cluster.ModifyMemberInput
	if !decode(w, r, &in) {
		return
	}
	d, err := a.cfg.Manager.ModifyMember(r.PathValue("name"), r.PathValue("id"), in)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ClusterBody{DBCluster: d})
}
