package api

import (
	"net/http"

	"github.com/borealisdb/borealis/controlplane/cluster"
)

// RebootInput is the body of POST /v1/clusters/{name}/reboot: the instance to restart, the
// writer when empty (aws rds reboot-db-instance names an instance).
type RebootInput struct {
	DBInstanceIdentifier string `json:"DBInstanceIdentifier,omitempty"`
}

// lifecycleRoutes adds stop, start and reboot: like stop-db-cluster, start-db-cluster and
// reboot-db-instance they answer at once with the cluster in its transitional status.
func (a *apiHandler) lifecycleRoutes(mux *http.ServeMux) {
	one := func(op func(string) (cluster.Description, error)) http.HandlerFunc {
		return a.auth(func(w http.ResponseWriter, r *http.Request) {
			d, err := op(r.PathValue("name"))
			if err != nil {
				fail(w, err)
				return
			}
			writeJSON(w, http.StatusOK, ClusterBody{DBCluster: d})
		})
	}
	mux.HandleFunc("POST /v1/clusters/{name}/stop", one(a.cfg.Manager.Stop))
	mux.HandleFunc("POST /v1/clusters/{name}/start", one(a.cfg.Manager.Start))
	mux.HandleFunc("POST /v1/clusters/{name}/reboot", a.auth(func(w http.ResponseWriter, r *http.Request) {
		var in RebootInput
		if r.ContentLength != 0 && !decode(w, r, &in) {
			return
		}
		d, err := a.cfg.Manager.Reboot(r.PathValue("name"), in.DBInstanceIdentifier)
		if err != nil {
			fail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, ClusterBody{DBCluster: d})
	}))
}
