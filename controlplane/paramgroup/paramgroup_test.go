package paramgroup

import (
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/borealisdb/borealis/controlplane/capacity"
	"github.com/borealisdb/borealis/controlplane/store"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name, value, want, err string
	}{
		{"log_statement", "ALL", "all", ""},
		{"log_lock_waits", "1", "on", ""},
		{"log_lock_waits", "false", "off", ""},
		{"log_min_duration_statement", "250", "250", ""},
		{"log_min_duration_statement", "-1", "-1", ""},
		{"log_temp_files", "0", "0", ""},
		{"log_min_messages", "Notice", "notice", ""},
		{"track_commit_timestamp", "on", "on", ""},
		{"no_such_thing", "1", "", `unknown parameter "no_such_thing"`},
		{"log_statement", "most", "", "log_statement must be one of none,ddl,mod,all"},
		{"log_lock_waits", "maybe", "", "log_lock_waits is a boolean"},
		{"log_min_duration_statement", "1s", "", "log_min_duration_statement is an integer in ms"},
		{"log_min_duration_statement", "-2", "", "-2 is out of range: allowed -1-2147483647"},
		{"log_temp_files", "2147483648", "", "out of range"},
		{"track_activity_query_size", "50", "", "out of range: allowed 100-1048576"},
		{"shared_buffers", "1GB", "", "shared_buffers is owned by capacity"},
		{"max_connections", "500", "", "max_connections is owned by capacity"},
		{"log_connections", "off", "", "log_connections is not modifiable: it is always on"},
		{"log_disconnections", "off", "", "always on"},
		{"log_hostname", "on", "", "log_hostname is not modifiable: it is always off"},
		{"logging_collector", "off", "", "owner: logging"},
	} {
		got, err := Validate(tc.name, tc.value)
		if tc.err == "" {
			if err != nil || got != tc.want {
				t.Errorf("Validate(%s, %s) = %q, %v; want %q", tc.name, tc.value, got, err, tc.want)
			}
			continue
		}
		var ie *InvalidError
		if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.As(err, &ie) {
			t.Errorf("Validate(%s, %s) = %q, %v; want an InvalidError with %q", tc.name, tc.value, got, err, tc.err)
		}
	}
}

func TestCatalogShape(t *testing.T) {
	byName := map[string]Parameter{}
	for _, p := range EngineDefaults() {
		byName[p.ParameterName] = p
		if p.ApplyType != Dynamic && p.ApplyType != Static || p.DataType == "" || len(p.SupportedEngineModes) == 0 {
			t.Errorf("incomplete %+v", p)
		}
	}
	for _, n := range []string{"log_lock_waits", "log_min_duration_statement", "log_min_messages", "log_temp_files", "log_statement"} {
		if p := byName[n]; !p.IsModifiable || p.ApplyType != Dynamic || p.Source != "engine-default" {
			t.Errorf("%s: %+v", n, p)
		}
	}
	if p := byName["log_connections"]; p.IsModifiable || p.ParameterValue != "on" || p.Source != "system" {
		t.Errorf("log_connections: %+v", p)
	}
	if p := byName["log_hostname"]; p.IsModifiable || p.ParameterValue != "off" {
		t.Errorf("log_hostname: %+v", p)
	}
	if p := byName["shared_buffers"]; p.IsModifiable || p.Owner != OwnerCapacity {
		t.Errorf("shared_buffers: %+v", p)
	}
	if p := byName["log_statement"]; p.AllowedValues != "none,ddl,mod,all" || p.ParameterValue != "none" {
		t.Errorf("log_statement: %+v", p)
	}
	if p := byName["track_commit_timestamp"]; p.ApplyType != Static {
		t.Errorf("track_commit_timestamp: %+v", p)
	}
}

func openStore(t *testing.T) *store.Store {
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestGroupsLifecycleAndBadInput(t *testing.T) {
	st := openStore(t)
	gs := Groups{Store: st}
	var se *StateError
	var ie *InvalidError

	if _, err := gs.Create("logs-on", "", "verbose"); err != nil {
		t.Fatal(err)
	}
	if _, err := gs.Create("logs-on", "", ""); !errors.As(err, &se) || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("duplicate: %v", err)
	}
	if _, err := gs.Create("Bad_Name", "", ""); !errors.As(err, &ie) {
		t.Fatalf("bad name: %v", err)
	}
	if _, err := gs.Create("other", "mysql8.0", ""); !errors.As(err, &ie) || !strings.Contains(err.Error(), "family") {
		t.Fatalf("bad family: %v", err)
	}
	if _, err := gs.Create("default-mine", "", ""); !errors.As(err, &ie) {
		t.Fatalf("reserved name: %v", err)
	}
	list, _ := gs.List()
	if len(list) != 2 || list[0].DBClusterParameterGroupName != DefaultGroup || list[1].Description != "verbose" {
		t.Fatalf("list: %+v", list)
	}

	done, err := gs.Modify("logs-on", []Change{{"log_statement", "ALL"}, {"log_min_duration_statement", "250"}})
	if err != nil || len(done) != 2 || done[0].ParameterValue != "all" {
		t.Fatalf("modify: %v %+v", err, done)
	}
	want := map[string]string{"log_statement": "all", "log_min_duration_statement": "250"}
	// Any bad parameter in a request: nothing of it is stored.
	for _, bad := range [][]Change{
		{{"log_lock_waits", "on"}, {"nope", "1"}},
		{{"log_lock_waits", "on"}, {"log_temp_files", "lots"}},
		{{"log_lock_waits", "on"}, {"log_temp_files", "-7"}},
		{{"log_lock_waits", "on"}, {"shared_buffers", "1GB"}},
		{{"log_lock_waits", "on"}, {"log_connections", "off"}},
		{{"log_lock_waits", "on"}, {"log_lock_waits", "off"}},
		{},
	} {
		if _, err := gs.Modify("logs-on", bad); !errors.As(err, &ie) {
			t.Errorf("modify %v: %v, want an InvalidError", bad, err)
		}
		if got, _ := gs.UserValues("logs-on"); !reflect.DeepEqual(got, want) {
			t.Fatalf("after refused %v: %v", bad, got)
		}
	}
	if _, err := gs.Modify(DefaultGroup, []Change{{"log_lock_waits", "on"}}); !errors.As(err, &se) || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("modify default: %v", err)
	}
	if _, err := gs.Modify("missing", []Change{{"log_lock_waits", "on"}}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("modify missing: %v", err)
	}
	ps, _ := gs.Parameters("logs-on", "user")
	if len(ps) != 2 || ps[0].ParameterName != "log_min_duration_statement" || ps[0].ApplyMethod != "immediate" {
		t.Fatalf("user parameters: %+v", ps)
	}

	reset, err := gs.Reset("logs-on", []string{"log_statement"}, false)
	if err != nil || !reflect.DeepEqual(reset, []string{"log_statement"}) {
		t.Fatalf("reset: %v %v", reset, err)
	}
	if _, err := gs.Reset("logs-on", []string{"shared_buffers"}, false); !errors.As(err, &ie) {
		t.Fatalf("reset capacity-owned: %v", err)
	}
	if _, err := gs.Reset("logs-on", nil, false); !errors.As(err, &ie) {
		t.Fatalf("reset nothing: %v", err)
	}
	if _, err := gs.Reset(DefaultGroup, nil, true); !errors.As(err, &se) {
		t.Fatalf("reset default: %v", err)
	}

	// In use by a cluster: not deleted.
	if err := st.CreateCluster(store.Cluster{Name: "c1", ParameterGroup: "logs-on"}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateCluster(store.Cluster{Name: "c2", ParameterGroup: "ghost"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("cluster naming a missing group: %v", err)
	}
	if err := gs.Delete("logs-on"); !errors.As(err, &se) || !strings.Contains(err.Error(), "used by cluster(s) [c1]") {
		t.Fatalf("delete in use: %v", err)
	}
	if _, err := gs.Get("logs-on"); err != nil {
		t.Fatalf("group gone after a refused delete: %v", err)
	}
	if err := gs.Delete(DefaultGroup); !errors.As(err, &se) {
		t.Fatalf("delete default: %v", err)
	}
	st.DeleteCluster("c1")
	if err := gs.Delete("logs-on"); err != nil {
		t.Fatal(err)
	}
	if err := gs.Delete("logs-on"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
}

func TestEffective(t *testing.T) {
	e := Effective(map[string]string{"log_statement": "all"})
	if e["log_statement"] != "all" || e["log_lock_waits"] != "off" || e["log_min_messages"] != "warning" {
		t.Fatalf("effective: %v", e)
	}
	if _, ok := e["shared_buffers"]; ok {
		t.Fatal("a capacity-owned parameter in the group's effective settings")
	}
}

// TestCapacityOwnedRefused: every parameter of capacity's table is refused, naming capacity.
func TestCapacityOwnedRefused(t *testing.T) {
	owned := capacity.Owned()
	if len(owned) == 0 {
		t.Fatal("capacity owns no parameter")
	}
	for _, n := range owned {
		if _, err := Validate(n, "1"); err == nil || !strings.Contains(err.Error(), n+" is owned by capacity") {
			t.Errorf("%s: %v", n, err)
		}
		if p, ok := Lookup(n); !ok || p.Modifiable() {
			t.Errorf("%s not listed as owned: %+v", n, p)
		}
	}
}
