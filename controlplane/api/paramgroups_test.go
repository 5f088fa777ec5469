package api

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestParamGroupRoutes: the routes' shapes and status codes, bad input answered with the
// field or state named and nothing changed.
func TestParamGroupRoutes(t *testing.T) {
	c, _ := startAPI(t)
	code, out := c.do("GET", "/v1/engine-default-cluster-parameters", "")
	var defs EngineDefaultsBody
	if code != 200 || json.Unmarshal(out, &defs) != nil || defs.EngineDefaults.DBParameterGroupFamily != "borealis-postgresql15" || len(defs.EngineDefaults.Parameters) < 20 {
		t.Fatalf("engine defaults: %d %s", code, out)
	}
	for _, tc := range []struct {
		method, path, body string
		code               int
		want               string
	}{
		{"GET", "/v1/engine-default-cluster-parameters?family=mysql8.0", "", 400, "the only family is borealis-postgresql15"},
		{"POST", "/v1/parameter-groups", `{"DBClusterParameterGroupName":"custom","Description":"mine"}`, 201, `"DBClusterParameterGroupName": "custom"`},
		{"POST", "/v1/parameter-groups", `{"DBClusterParameterGroupName":"custom"}`, 409, "DBParameterGroupAlreadyExists"},
		{"POST", "/v1/parameter-groups", `{"DBClusterParameterGroupName":"No Spaces"}`, 400, "InvalidParameterValue"},
		{"PATCH", "/v1/parameter-groups/custom", `{"Parameters":[{"ParameterName":"log_statement","ParameterValue":"ddl"}]}`, 200, `"ParameterValue": "ddl"`},
		{"PATCH", "/v1/parameter-groups/custom", `{"Parameters":[{"ParameterName":"log_statement","ParameterValue":"all"},{"ParameterName":"max_connections","ParameterValue":"900"}]}`, 400, "max_connections is owned by capacity"},
		{"PATCH", "/v1/parameter-groups/custom", `{"Parameters":[{"ParameterName":"log_disconnections","ParameterValue":"off"}]}`, 400, "always on"},
		{"PATCH", "/v1/parameter-groups/default.borealis-postgresql15", `{"Parameters":[{"ParameterName":"log_statement","ParameterValue":"all"}]}`, 409, "read-only"},
		{"PATCH", "/v1/parameter-groups/nope", `{"Parameters":[{"ParameterName":"log_statement","ParameterValue":"all"}]}`, 404, "DBParameterGroupNotFound"},
		{"GET", "/v1/parameter-groups/custom?source=user", "", 200, `"ParameterValue": "ddl"`},
		{"GET", "/v1/parameter-groups", "", 200, "default.borealis-postgresql15"},
		{"POST", "/v1/clusters", `{"Name":"x","DBClusterParameterGroupName":"nope"}`, 400, `"Field": "DBClusterParameterGroupName"`},
		{"POST", "/v1/parameter-groups/custom/reset", `{"ResetAllParameters":true}`, 200, `"ParameterName": "log_statement"`},
		{"DELETE", "/v1/parameter-groups/default.borealis-postgresql15", "", 409, "cannot be deleted"},
		{"DELETE", "/v1/parameter-groups/custom", "", 200, "custom"},
		{"DELETE", "/v1/parameter-groups/custom", "", 404, "DBParameterGroupNotFound"},
	} {
		code, out := c.do(tc.method, tc.path, tc.body)
		if code != tc.code || !strings.Contains(string(out), tc.want) {
			t.Errorf("%s %s %s: %d %s; want %d with %q", tc.method, tc.path, tc.body, code, out, tc.code, tc.want)
		}
	}
	// The refused PATCH above changed nothing.
	code, out = c.do("GET", "/v1/parameter-groups/custom", "")
	if code != 404 {
		t.Fatalf("deleted group still there: %d %s", code, out)
	}
}
