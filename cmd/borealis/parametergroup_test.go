package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/borealisdb/borealis/controlplane/api"
	"github.com/borealisdb/borealis/controlplane/paramgroup"
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

// TestParamGroupCommands: the parameter-group commands and
// describe-engine-default-cluster-parameters through the CLI and a running control plane:
// the defaults carry every field the issue names, a custom group is created, modified, reset,
// described and deleted, the default group and a bad value are refused, and nothing changes
// on a refusal.
func TestParamGroupCommands(t *testing.T) {
	home := newHome(t)
	startServeWith(t, home, fmt.Sprintf("127.0.0.1:%d", freePorts(t, 1)[0]))
	run := func(want int, args ...string) string {
		t.Helper()
		code, out, errOut := cli(t, append(args, "--home", home)...)
		if code != want {
			t.Fatalf("%v: exit %d (want %d): %s%s", args, code, want, out, errOut)
		}
		return out + errOut
	}
	var defaults api.EngineDefaultsBody
	if err := json.Unmarshal([]byte(run(0, "describe-engine-default-cluster-parameters", "--output", "json")), &defaults); err != nil {
		t.Fatal(err)
	}
	byName := map[string]paramgroup.Parameter{}
	for _, p := range defaults.EngineDefaults.Parameters {
		byName[p.ParameterName] = p
	}
	for _, name := range []string{"log_lock_waits", "log_min_duration_statement", "log_min_messages", "log_temp_files", "log_statement"} {
		p := byName[name]
		if !p.IsModifiable || p.ApplyType != "dynamic" || p.DataType == "" || len(p.SupportedEngineModes) == 0 {
			t.Errorf("engine default %s: %+v", name, p)
		}
	}
	if p := byName["log_statement"]; p.AllowedValues != "none,ddl,mod,all" || p.ParameterValue != "none" {
		t.Errorf("log_statement: %+v", p)
	}
	if p := byName["log_connections"]; p.IsModifiable || p.ParameterValue != "1" && p.ParameterValue != "on" {
		t.Errorf("log_connections must be fixed on: %+v", p)
	}

	run(0, "parameter-group", "create", "custom", "--description", "for the test")
	run(0, "parameter-group", "modify", "custom", "--parameter", "log_statement=all", "--parameter", "log_min_duration_statement=250")
	if out := run(2, "parameter-group", "modify", "custom", "--parameter", "log_statement=all", "--parameter", "log_temp_files=-5"); !strings.Contains(out, "log_temp_files") {
		t.Fatalf("a bad value in a batch: %s", out)
	}
	var got api.ParamGroupBody
	if err := json.Unmarshal([]byte(run(0, "parameter-group", "describe", "custom", "--source", "user", "--output", "json")), &got); err != nil {
		t.Fatal(err)
	}
	user := map[string]string{}
	for _, p := range got.Parameters {
		user[p.ParameterName] = p.ParameterValue
	}
	if len(user) != 2 || user["log_statement"] != "all" || user["log_min_duration_statement"] != "250" {
		t.Fatalf("user parameters after modify (the refused batch must change nothing): %v", user)
	}
	run(0, "parameter-group", "reset", "custom", "--parameter", "log_statement")
	if err := json.Unmarshal([]byte(run(0, "parameter-group", "describe", "custom", "--source", "user", "--output", "json")), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Parameters) != 1 || got.Parameters[0].ParameterName != "log_min_duration_statement" {
		t.Fatalf("after reset: %+v", got.Parameters)
	}
	if out := run(1, "parameter-group", "modify", "default.borealis-postgresql15", "--parameter", "log_statement=all"); !strings.Contains(out, "default") {
		t.Fatalf("modifying the default group: %s", out)
	}
	run(0, "parameter-group", "delete", "custom")
	if out := run(1, "parameter-group", "describe", "custom"); !strings.Contains(out, "custom") {
		t.Fatalf("describe after delete: %s", out)
	}
}
