package api

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestMalformedBodiesSayWhatToSend: a new user's curl with a broken body, or a value of the
// wrong type, is told what JSON to send in JSON's words (number, boolean), not Go's (float64).
func TestMalformedBodiesSayWhatToSend(t *testing.T) {
	c, m := startAPI(t)
	for _, tc := range []struct{ body, code, want string }{
		{`{`, "MalformedRequest", `send e.g. {"Name": "c1", "MaxCapacity": 4}`},
		{`{"Name": "x",}`, "MalformedRequest", "not one valid JSON object"},
		{`{"Name": "x", "MinCapacity": "a"}`, "InvalidParameterValue", "field MinCapacity must be a JSON number, not string"},
		{`{"Name": "x", "Readers": 1.5}`, "InvalidParameterValue", "field Readers must be a JSON whole number, not number 1.5"},
		{`{"Name": "x", "AutoPause": "yes"}`, "InvalidParameterValue", "field AutoPause must be a JSON boolean (true or false), not string"},
		{`{"Name": 5}`, "InvalidParameterValue", "field Name must be a JSON string, not number"},
	} {
		code, body := c.do("POST", "/v1/clusters", tc.body)
		var eb ErrorBody
		if err := json.Unmarshal(body, &eb); err != nil || code != 400 || eb.Error.Code != tc.code || !strings.Contains(eb.Error.Message, tc.want) {
			t.Errorf("%s: got %d %s; want 400 %s saying %q", tc.body, code, body, tc.code, tc.want)
		}
	}
	if list := m.List(); len(list) != 0 {
		t.Fatalf("bad requests created clusters: %+v", list)
	}
}
