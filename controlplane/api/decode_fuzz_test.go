package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/borealisdb/borealis/controlplane/cluster"
)

// FuzzDecode feeds arbitrary bodies to the API's strict JSON decoding of create and modify
// requests: it never panics, accepts only what re-encodes to an equivalent request (then
// Validate decides, without panicking either), and refuses everything else with a 400 whose
// body is the API's JSON error naming a code.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"Name": "web", "Readers": 1, "MinCapacity": 0.5, "MasterUsername": "admin", "MasterUserPassword": "password", "DatabaseName": "vector_db"}`))
	f.Add([]byte(`{"MaxCapacity": 16, "MasterUserPassword": "x", "DeletionProtection": false}`))
	f.Add([]byte(`{"Name": 3}`))
	f.Add([]byte(`{"Name": "a"} {"Name": "b"}`))
	f.Add([]byte(`{"Unknown": true}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(``))
	f.Add([]byte("{\"Name\": \"\\ud800\"}"))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, target := range []func() any{func() any { return &cluster.CreateInput{} }, func() any { return &cluster.ModifyInput{} }} {
			v := target()
			w := httptest.NewRecorder()
			r := httptest.NewRequest(http.MethodPost, "/v1/clusters", bytes.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
			if decode(w, r, v) {
				if w.Code != http.StatusOK || w.Body.Len() != 0 {
					t.Fatalf("accepted but wrote %d %q", w.Code, w.Body.Bytes())
				}
				again, err := json.Marshal(v)
				if err != nil {
					t.Fatalf("accepted %q but cannot re-encode it: %v", body, err)
				}
				v2 := target()
				if err := json.Unmarshal(again, v2); err != nil {
					t.Fatalf("re-encoded %q does not decode: %v", again, err)
				}
				if in, ok := v.(*cluster.CreateInput); ok {
					_ = in.Validate()
				}
				continue
			}
			var eb ErrorBody
			if w.Code != http.StatusBadRequest && w.Code != http.StatusUnsupportedMediaType {
				t.Fatalf("refused %q with status %d", body, w.Code)
			}
			if err := json.Unmarshal(w.Body.Bytes(), &eb); err != nil || eb.Error.Code == "" || eb.Error.Message == "" {
				t.Fatalf("refusal of %q is not a JSON error: %q (%v)", body, w.Body.Bytes(), err)
			}
		}
	})
}
