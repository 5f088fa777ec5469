package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestFailoverFlagsRefusedBeforeAnyCall(t *testing.T) {
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"cluster", "create", "--name", "a", "--promotion-tier", "16"}, "--promotion-tier: 16 is out of range: use 0"},
		{[]string{"cluster", "create", "--name", "a", "--promotion-tier", "-1"}, "--promotion-tier: -1 is out of range"},
		{[]string{"cluster", "create", "--name", "a", "--durability-mode", "sync"}, `--durability-mode: "sync" is not a durability mode`},
		{[]string{"cluster", "create", "--name", "a", "--readers", "0", "--durability-mode", "synchronous"}, "needs at least one reader"},
		{[]string{"cluster", "create", "--name", "a", "--failover-grace-seconds", "0"}, "--failover-grace-seconds"},
		{[]string{"cluster", "create", "--name", "a", "--synchronous-fallback-seconds", "-1"}, "--synchronous-fallback-seconds: -1 is out of range: use 0 (strict"},
		{[]string{"cluster", "modify", "--name", "a", "--synchronous-fallback-seconds", "3601"}, "--synchronous-fallback-seconds: 3601 is out of range"},
		{[]string{"cluster", "modify-instance", "--name", "a", "--db-instance-identifier", "a-2", "--promotion-tier", "99"}, "--promotion-tier: 99 is out of range"},
		{[]string{"cluster", "modify-instance", "--name", "a", "--promotion-tier", "2"}, "--db-instance-identifier is required"},
		{[]string{"cluster", "modify-instance", "--name", "a", "--db-instance-identifier", "a-2"}, "nothing to modify"},
		{[]string{"cluster", "failover"}, "--name is required"},
		{[]string{"cluster", "failover", "--name", "a", "--bogus"}, "flag provided but not defined"},
	} {
		var out, errb bytes.Buffer
		if code := run(tc.args, &out, &errb); code != 2 || !strings.Contains(errb.String(), tc.msg) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 mentioning %q", tc.args, code, errb.String(), tc.msg)
		}
	}
}
