package api

import (
	"encoding/json"
	"testing"
)

func TestFailoverAndTierBadInput(t *testing.T) {
	c, _ := startAPI(t)
	for _, tc := range []struct {
		method, path, body string
		status             int
		code, field        string
	}{
		{"PATCH", "/v1/clusters/x/members/x-2", `{"PromotionTier": 16}`, 400, "InvalidParameterValue", "PromotionTier"},
		{"PATCH", "/v1/clusters/x/members/x-2", `{"PromotionTier": -1}`, 400, "InvalidParameterValue", "PromotionTier"},
		{"PATCH", "/v1/clusters/x/members/x-2", `{}`, 400, "InvalidParameterValue", "PromotionTier"},
		{"PATCH", "/v1/clusters/x/members/x-2", `{"PromotionTier": 2}`, 404, "DBClusterNotFoundFault", ""},
		{"POST", "/v1/clusters/x/failover", ``, 404, "DBClusterNotFoundFault", ""},
		{"POST", "/v1/clusters/x/failover", `{"TargetDBInstanceIdentifier": 3}`, 400, "InvalidParameterValue", "TargetDBInstanceIdentifier"},
		{"POST", "/v1/clusters", `{"Name": "x", "Readers": 1, "PromotionTier": 16}`, 400, "InvalidParameterValue", "PromotionTier"},
		{"POST", "/v1/clusters", `{"Name": "x", "Readers": 1, "DurabilityMode": "strict"}`, 400, "InvalidParameterValue", "DurabilityMode"},
		{"POST", "/v1/clusters", `{"Name": "x", "Readers": 1, "FailoverGraceSeconds": 301}`, 400, "InvalidParameterValue", "FailoverGraceSeconds"},
		{"PATCH", "/v1/clusters/x", `{"DurabilityMode": "synchronous"}`, 404, "DBClusterNotFoundFault", ""},
	} {
		status, body := c.do(tc.method, tc.path, tc.body)
		var eb ErrorBody
		_ = json.Unmarshal(body, &eb)
		if status != tc.status || eb.Error.Code != tc.code || eb.Error.Field != tc.field || eb.Error.Message == "" {
			t.Errorf("%s %s %s: %d %s", tc.method, tc.path, tc.body, status, body)
		}
	}
}
