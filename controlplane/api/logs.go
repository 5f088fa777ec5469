package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/borealisdb/borealis/controlplane/logs"
)

// Log group routes (shapes of aws logs describe-log-groups, filter-log-events,
// put-retention-policy and delete-log-group). Group names hold slashes, so they travel in the
// query string.

// LogGroupsBody answers GET /v1/log-groups.
type LogGroupsBody struct {
	LogGroups []logs.Description `json:"logGroups"`
}

// RetentionInput is PUT /v1/log-groups/retention.
type RetentionInput struct {
	LogGroupName    string `json:"logGroupName"`
	RetentionInDays int    `json:"retentionInDays"`
}

func (a *apiHandler) logRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/log-groups", a.auth(a.withLogs(a.describeLogGroups)))
	mux.HandleFunc("DELETE /v1/log-groups", a.auth(a.withLogs(a.deleteLogGroup)))
	mux.HandleFunc("PUT /v1/log-groups/retention", a.auth(a.withLogs(a.putRetention)))
	mux.HandleFunc("GET /v1/log-events", a.auth(a.withLogs(a.filterLogEvents)))
}

func (a *apiHandler) withLogs(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if a.cfg.Logs == nil {
			writeError(w, http.StatusServiceUnavailable, Error{Code: "ServiceUnavailable", Message: "log groups are not enabled in this control plane"})
			return
		}
		next(w, r)
	}
}

func failLogs(w http.ResponseWriter, field string, err error) {
	if errors.Is(err, logs.ErrNotFound) {
		writeError(w, http.StatusNotFound, Error{Code: "ResourceNotFoundException", Message: err.Error()})
		return
	}
	writeError(w, http.StatusBadRequest, Error{Code: "InvalidParameterException", Message: err.Error(), Field: field})
}

func (a *apiHandler) describeLogGroups(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, LogGroupsBody{LogGroups: a.cfg.Logs.Describe(r.URL.Query().Get("logGroupNamePrefix"))})
}

func (a *apiHandler) deleteLogGroup(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("logGroupName")
	if err := a.cfg.Logs.DeleteGroup(name); err != nil {
		failLogs(w, "logGroupName", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"logGroupName": name})
}

func (a *apiHandler) putRetention(w http.ResponseWriter, r *http.Request) {
	var in RetentionInput
	if !decode(w, r, &in) {
		return
	}
	if err := a.cfg.Logs.PutRetention(in.LogGroupName, in.RetentionInDays); err != nil {
		failLogs(w, "retentionInDays", err)
		return
	}
	writeJSON(w, http.StatusOK, in)
}

// filterLogEvents: ?logGroupName=&startTime=&endTime=&filterPattern=&limit=&nextToken=
func (a *apiHandler) filterLogEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	in := logs.FilterInput{LogGroupName: q.Get("logGroupName"), FilterPattern: q.Get("filterPattern"), NextToken: q.Get("nextToken")}
	for k := range q {
		switch k {
		case "logGroupName", "filterPattern", "nextToken", "startTime", "endTime", "limit":
		default:
			writeError(w, http.StatusBadRequest, Error{Code: "InvalidParameterException", Field: k,
				Message: fmt.Sprintf("unknown query parameter %q (use logGroupName, startTime, endTime, filterPattern, limit, nextToken)", k)})
			return
		}
	}
	for _, p := range []struct {
		name string
		v    *int64
	}{{"startTime", &in.StartTime}, {"endTime", &in.EndTime}} {
		if s := q.Get(p.name); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n < 0 {
				failLogs(w, p.name, fmt.Errorf("%s %q must be milliseconds since the epoch", p.name, s))
				return
			}
			*p.v = n
		}
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			failLogs(w, "limit", fmt.Errorf("limit %q must be a whole number from 1 to 10000", s))
			return
		}
		in.Limit = n
	}
	out, err := a.cfg.Logs.Filter(in)
	if err != nil {
		failLogs(w, "", err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}
