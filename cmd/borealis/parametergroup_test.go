package main

import (
	"strings"
	"testing"
)

// TestParamGroupBadInvocations: bad flags and parameters exit 2 before any API call.
func TestParamGroupBadInvocations(t *testing.T) {
	home := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"parameter-group"}, 2, "which parameter-group command"},
		{[]string{"parameter-group", "frob"}, 2, `unknown parameter-group command "frob"`},
		{[]string{"parameter-group", "create"}, 2, "a parameter group name is required"},
		{[]string{"parameter-group", "create", "Bad_Name"}, 2, "lower-case letters"},
		{[]string{"parameter-group", "create", "g", "--family", "mysql8.0"}, 2, "the only family is borealis-postgresql15"},
		{[]string{"parameter-group", "modify", "g"}, 2, "nothing to modify"},
		{[]string{"parameter-group", "modify", "g", "--parameter", "log_statement"}, 2, "use NAME=VALUE"},
		{[]string{"parameter-group", "modify", "g", "--parameter", "shared_buffers=1GB"}, 2, "owned by capacity"},
		{[]string{"parameter-group", "modify", "g", "--parameter", "log_hostname=on"}, 2, "always off"},
		{[]string{"parameter-group", "modify", "g", "--parameter", "log_min_duration_statement=fast"}, 2, "is an integer in ms"},
		{[]string{"parameter-group", "modify", "g", "--parameters", "ParameterName=log_statement,ParameterValue=loud"}, 2, "must be one of none,ddl,mod,all"},
		{[]string{"parameter-group", "modify", "g", "--parameter", "bogus=1"}, 2, `unknown parameter "bogus"`},
		{[]string{"parameter-group", "reset", "g"}, 2, "either --parameter NAME"},
		{[]string{"parameter-group", "describe", "--source", "nobody"}, 2, "--source must be"},
		{[]string{"describe-engine-default-cluster-parameters", "--db-parameter-group-family", "x"}, 2, "unknown family"},
		{[]string{"parameter-group", "describe", "--home", home}, 1, "no control plane is running"},
	} {
		code, _, errOut := cli(t, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.msg) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d mentioning %q", tc.args, code, errOut, tc.code, tc.msg)
		}
	}
}
