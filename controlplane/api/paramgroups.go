package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/borealisdb/borealis/controlplane/paramgroup"
)

// Parameter group routes (shapes of aws rds describe-engine-default-cluster-parameters,
// describe-db-cluster-parameter-groups, describe-db-cluster-parameters, and the create, modify,
// reset and delete calls).

// EngineDefaultsBody answers GET /v1/engine-default-cluster-parameters.
type EngineDefaultsBody struct {
	EngineDefaults EngineDefaults `json:"EngineDefaults"`
}

// EngineDefaults is the default group's parameters.
type EngineDefaults struct {
	DBParameterGroupFamily string                 `json:"DBParameterGroupFamily"`
	Parameters             []paramgroup.Parameter `json:"Parameters"`
}

// ParamGroupsBody lists groups.
type ParamGroupsBody struct {
	DBClusterParameterGroups []paramgroup.Group `json:"DBClusterParameterGroups"`
}

// ParamGroupBody is one group, with its parameters when described.
type ParamGroupBody struct {
	DBClusterParameterGroup paramgroup.Group       `json:"DBClusterParameterGroup"`
	Parameters              []paramgroup.Parameter `json:"Parameters,omitempty"`
}

// CreateParamGroupInput is POST /v1/parameter-groups.
type CreateParamGroupInput struct {
	DBClusterParameterGroupName string `json:"DBClusterParameterGroupName"`
	DBParameterGroupFamily      string `json:"DBParameterGroupFamily,omitempty"`
	Description                 string `json:"Description,omitempty"`
}

// ModifyParamGroupInput is PATCH /v1/parameter-groups/{name}.
type ModifyParamGroupInput struct {
	Parameters []paramgroup.Change `json:"Parameters"`
}

// ResetParamGroupInput is POST /v1/parameter-groups/{name}/reset.
type ResetParamGroupInput struct {
	ResetAllParameters bool                   `json:"ResetAllParameters,omitempty"`
	Parameters         []paramgroup.Parameter `json:"Parameters,omitempty"`
}

// ParamGroupChangeBody answers modify and reset: the group and what changed in it.
type ParamGroupChangeBody struct {
	DBClusterParameterGroupName string              `json:"DBClusterParameterGroupName"`
	Parameters                  []paramgroup.Change `json:"Parameters"`
}

func (a *apiHandler) paramGroupRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/engine-default-cluster-parameters", a.auth(a.engineDefaults))
	mux.HandleFunc("GET /v1/parameter-groups", a.auth(a.listParamGroups))
	mux.HandleFunc("POST /v1/parameter-groups", a.auth(a.createParamGroup))
	mux.HandleFunc("GET /v1/parameter-groups/{name}", a.auth(a.describeParamGroup))
	mux.HandleFunc("PATCH /v1/parameter-groups/{name}", a.auth(a.modifyParamGroup))
	mux.HandleFunc("POST /v1/parameter-groups/{name}/reset", a.auth(a.resetParamGroup))
	mux.HandleFunc("DELETE /v1/parameter-groups/{name}", a.auth(a.deleteParamGroup))
}

// failParamGroup maps parameter group errors to statuses; others go to fail.
func failParamGroup(w http.ResponseWriter, err error) {
	var ie *paramgroup.InvalidError
	var se *paramgroup.StateError
	switch {
	case errors.As(err, &ie):
		writeError(w, http.StatusBadRequest, Error{Code: "InvalidParameterValue", Message: err.Error(), Field: "Parameters"})
	case errors.As(err, &se):
		code := "InvalidDBParameterGroupState"
		if strings.Contains(err.Error(), "already exists") {
			code = "DBParameterGroupAlreadyExists"
		}
		writeError(w, http.StatusConflict, Error{Code: code, Message: err.Error()})
	case errors.Is(err, paramgroup.ErrNotFound):
		writeError(w, http.StatusNotFound, Error{Code: "DBParameterGroupNotFound", Message: err.Error() + " (see `borealis parameter-group describe`)"})
	default:
		fail(w, err)
	}
}

func (a *apiHandler) engineDefaults(w http.ResponseWriter, r *http.Request) {
	if f := r.URL.Query().Get("family"); f != "" && f != paramgroup.Family {
		writeError(w, http.StatusBadRequest, Error{Code: "InvalidParameterValue", Field: "family",
			Message: "unknown parameter group family " + f + ": the only family is " + paramgroup.Family})
		return
	}
	writeJSON(w, http.StatusOK, EngineDefaultsBody{EngineDefaults{DBParameterGroupFamily: paramgroup.Family, Parameters: paramgroup.EngineDefaults()}})
}

func (a *apiHandler) listParamGroups(w http.ResponseWriter, r *http.Request) {
	gs, err := a.cfg.Manager.ParamGroups().List()
	if err != nil {
		failParamGroup(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ParamGroupsBody{DBClusterParameterGroups: gs})
}

func (a *apiHandler) createParamGroup(w http.ResponseWriter, r *http.Request) {
	var in CreateParamGroupInput
	if !decode(w, r, &in) {
		return
	}
	g, err := a.cfg.Manager.ParamGroups().Create(in.DBClusterParameterGroupName, in.DBParameterGroupFamily, in.Description)
	if err != nil {
		failParamGroup(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, ParamGroupBody{DBClusterParameterGroup: g})
}

func (a *apiHandler) describeParamGroup(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	gs := a.cfg.Manager.ParamGroups()
	g, err := gs.Get(name)
	if err != nil {
		failParamGroup(w, err)
		return
	}
	ps, err := gs.Parameters(name, r.URL.Query().Get("source"))
	if err != nil {
		failParamGroup(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ParamGroupBody{DBClusterParameterGroup: g, Parameters: ps})
}

func (a *apiHandler) modifyParamGroup(w http.ResponseWriter, r *http.Request) {
	var in ModifyParamGroupInput
	if !decode(w, r, &in) {
		return
	}
	name := r.PathValue("name")
	done, err := a.cfg.Manager.ModifyParamGroup(name, in.Parameters)
	if err != nil {
		failParamGroup(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ParamGroupChangeBody{DBClusterParameterGroupName: name, Parameters: done})
}

func (a *apiHandler) resetParamGroup(w http.ResponseWriter, r *http.Request) {
	var in ResetParamGroupInput
	if !decode(w, r, &in) {
		return
	}
	var names []string
	for _, p := range in.Parameters {
		names = append(names, p.ParameterName)
	}
	name := r.PathValue("name")
	reset, err := a.cfg.Manager.ResetParamGroup(name, names, in.ResetAllParameters)
	if err != nil {
		failParamGroup(w, err)
		return
	}
	out := ParamGroupChangeBody{DBClusterParameterGroupName: name, Parameters: []paramgroup.Change{}}
	for _, n := range reset {
		p, _ := paramgroup.Lookup(n)
		out.Parameters = append(out.Parameters, paramgroup.Change{ParameterName: n, ParameterValue: p.Default})
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *apiHandler) deleteParamGroup(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	g, err := a.cfg.Manager.ParamGroups().Get(name)
	if err != nil {
		failParamGroup(w, err)
		return
	}
	if err := a.cfg.Manager.DeleteParamGroup(name); err != nil {
		failParamGroup(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ParamGroupBody{DBClusterParameterGroup: g})
}
