package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestVersionJSON(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"version", "--output", "json"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var v versionInfo
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		t.Fatalf("not JSON: %v: %s", err, out.String())
	}
	if v.Version != Version || !strings.HasPrefix(v.GoVersion, "go1.") || v.SIMD.Path == "" {
		t.Fatalf("incomplete: %+v", v)
	}
}

func TestBadInvocationsExitNonZero(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"version", "--output", "yaml"}, 2, "--output must be json or table"},
		{[]string{"version", "--no-such-flag"}, 2, "flag provided but not defined"},
		{[]string{"version", "extra"}, 2, `unexpected argument "extra"`},
	} {
		var out, errb bytes.Buffer
		code := run(tc.args, &out, &errb)
		if code != tc.code || !strings.Contains(errb.String(), tc.msg) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d mentioning %q", tc.args, code, errb.String(), tc.code, tc.msg)
		}
	}
}
