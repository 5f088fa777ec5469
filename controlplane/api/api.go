package api

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/borealisdb/borealis/controlplane/cluster"
	"github.com/borealisdb/borealis/controlplane/failover"
	"github.com/borealisdb/borealis/controlplane/logs"
	"github.com/borealisdb/borealis/controlplane/store"
)

// maxBody bounds request bodies; every valid request is far smaller.
const maxBody = 64 << 10

// Config configures the API handler.
type Config struct {
	Manager  *cluster.Manager
	Token    string
	Registry *prometheus.Registry
	// MetricsToken makes /metrics require the bearer token too (always so off loopback).
	MetricsToken bool
	// Logs serves the log groups; nil answers their routes with 503.
	Logs *logs.Service
}

// Error is the JSON error body.
type Error struct {
	Code    string `json:"Code"`
	Message string `json:"Message"`
	Field   string `json:"Field,omitempty"`
}

// ErrorBody wraps Error.
type ErrorBody struct {
	Error Error `json:"Error"`
}

// ClusterBody is the answer about one cluster.
type ClusterBody struct {
	DBCluster cluster.Description `json:"DBCluster"`
}

// ClustersBody is the cluster list.
type ClustersBody struct {
	DBClusters []cluster.Description `json:"DBClusters"`
}

// EventsBody is the event list.
type EventsBody struct {
	Events []store.Event `json:"Events"`
}

// Handler returns the API's HTTP handler.
func Handler(cfg Config) http.Handler {
	a := &apiHandler{cfg: cfg}
	if len(cfg.Token) < 32 {
		// The token is what protects the API; a handler without one would open it to anyone.
		panic("api: Config.Token must hold a token of at least 32 characters")
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	if cfg.Registry != nil {
		metrics := promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{})
		if cfg.MetricsToken {
			mux.HandleFunc("GET /metrics", a.auth(metrics.ServeHTTP))
		} else {
			mux.Handle("GET /metrics", metrics)
		}
	}
	mux.HandleFunc("GET /v1/clusters", a.auth(a.list))
	mux.HandleFunc("POST /v1/clusters", a.auth(a.create))
	mux.HandleFunc("GET /v1/clusters/{name}", a.auth(a.describe))
	mux.HandleFunc("PATCH /v1/clusters/{name}", a.auth(a.modify))
	mux.HandleFunc("DELETE /v1/clusters/{name}", a.auth(a.delete))
	mux.HandleFunc("POST /v1/clusters/{name}/capacity", a.auth(a.modifyCapacity))
	mux.HandleFunc("GET /v1/events", a.auth(a.events))
	a.paramGroupRoutes(mux)
	a.lifecycleRoutes(mux)
	mux.HandleFunc("POST /v1/clusters/{name}/failover", a.auth(a.failover))
	mux.HandleFunc("PATCH /v1/clusters/{name}/members/{id}", a.auth(a.modifyMember))
	a.logRoutes(mux)
	mux.HandleFunc("/", a.auth(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, Error{Code: "NotFound", Message: fmt.Sprintf("no API route %s %s (see `borealis help`)", r.Method, r.URL.Path)})
	}))
	return mux
}

type apiHandler struct{ cfg Config }

func (a *apiHandler) auth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(a.cfg.Token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="borealis"`)
			writeError(w, http.StatusUnauthorized, Error{Code: "Unauthorized",
				Message: "missing or wrong bearer token: send `Authorization: Bearer <token>` with the token from the control plane's api-token file"})
			return
		}
		next(w, r)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, e Error) {
	writeJSON(w, status, ErrorBody{Error: e})
}

// fail maps a Manager error to its HTTP status.
func fail(w http.ResponseWriter, err error) {
	var fe *cluster.FieldError
	var ce *cluster.ConflictError
	var se *cluster.StateError
	var foe *cluster.FailoverError
	var che *failover.ChoiceError
	var pe *cluster.ProtectedError
	switch {
	case errors.As(err, &pe):
		writeError(w, http.StatusBadRequest, Error{Code: "InvalidParameterCombination", Message: err.Error(), Field: "DeletionProtection"})
	case errors.As(err, &se):
		writeError(w, http.StatusConflict, Error{Code: "InvalidDBClusterStateFault", Message: err.Error()})
	case errors.As(err, &fe):
		writeError(w, http.StatusBadRequest, Error{Code: "InvalidParameterValue", Message: err.Error(), Field: fe.Field})
	case errors.As(err, &ce):
		writeError(w, http.StatusConflict, Error{Code: "DBClusterAlreadyExistsFault", Message: err.Error()})
	case errors.As(err, &foe), errors.As(err, &che):
		writeError(w, http.StatusConflict, Error{Code: "InvalidDBClusterStateFault", Message: err.Error()})
	case errors.Is(err, cluster.ErrMemberNotFound):
		writeError(w, http.StatusNotFound, Error{Code: "DBInstanceNotFound", Message: err.Error()})
	case errors.Is(err, cluster.ErrNotFound):
		writeError(w, http.StatusNotFound, Error{Code: "DBClusterNotFoundFault", Message: err.Error()})
	default:
		writeError(w, http.StatusInternalServerError, Error{Code: "InternalFailure", Message: err.Error()})
	}
}

// decode reads a JSON body strictly: one object, known fields, right types.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		writeError(w, http.StatusUnsupportedMediaType, Error{Code: "InvalidContentType", Message: "send the body as application/json, not " + ct})
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("extra data after the JSON object")
	}
	if err == nil {
		return true
	}
	e := Error{Code: "MalformedRequest", Message: "request body is not one valid JSON object (" + err.Error() + `): send e.g. {"Name": "c1", "MaxCapacity": 4}`}
	var te *json.UnmarshalTypeError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &te):
		e.Field = te.Field
		e.Message = fmt.Sprintf("field %s must be a JSON %s, not %s", te.Field, jsonKind(te.Type.Kind()), te.Value)
		e.Code = "InvalidParameterValue"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		e.Field = strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		e.Message = fmt.Sprintf("unknown field %q", e.Field)
		e.Code = "InvalidParameterValue"
	case errors.As(err, &mbe):
		e.Message = fmt.Sprintf("request body is over %d bytes", maxBody)
	case errors.Is(err, io.EOF):
		e.Message = "request body is empty: send a JSON object"
	}
	writeError(w, http.StatusBadRequest, e)
	return false
}

// jsonKind names a Go kind as JSON does: a client sends a number, not a float64.
func jsonKind(k reflect.Kind) string {
	switch k {
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "whole number"
	case reflect.Bool:
		return "boolean (true or false)"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Map, reflect.Struct:
		return "object"
	}
	return k.String()
}

func (a *apiHandler) list(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, ClustersBody{DBClusters: a.cfg.Manager.List()})
}

func (a *apiHandler) create(w http.ResponseWriter, r *http.Request) {
	var in cluster.CreateInput
	if !decode(w, r, &in) {
		return
	}
	d, err := a.cfg.Manager.Create(in)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, ClusterBody{DBCluster: d})
}

func (a *apiHandler) describe(w http.ResponseWriter, r *http.Request) {
	d, err := a.cfg.Manager.Describe(r.PathValue("name"))
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ClusterBody{DBCluster: d})
}

func (a *apiHandler) modify(w http.ResponseWriter, r *http.Request) {
	var in cluster.ModifyInput
	if !decode(w, r, &in) {
		return
	}
	d, err := a.cfg.Manager.Modify(r.PathValue("name"), in)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ClusterBody{DBCluster: d})
}

// modifyCapacity is aws rds modify-current-db-cluster-capacity.
func (a *apiHandler) modifyCapacity(w http.ResponseWriter, r *http.Request) {
	var in cluster.CapacityInput
	if !decode(w, r, &in) {
		return
	}
	out, err := a.cfg.Manager.ModifyCurrentCapacity(r.PathValue("name"), in)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *apiHandler) delete(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	// As delete-db-cluster: no deletion without saying what happens to the data.
	if skip := r.URL.Query().Get("SkipFinalSnapshot"); skip != "true" {
		writeError(w, http.StatusBadRequest, Error{Code: "InvalidParameterCombination", Field: "SkipFinalSnapshot",
			Message: fmt.Sprintf("deleting cluster %s destroys its data and Borealis keeps no final snapshot: send ?SkipFinalSnapshot=true to confirm", name)})
		return
	}
	d, err := a.cfg.Manager.Describe(name)
	if err != nil {
		fail(w, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Minute)
	defer cancel()
	if err := a.cfg.Manager.Delete(ctx, name); err != nil {
		fail(w, err)
		return
	}
	d.Status = "deleted"
	writeJSON(w, http.StatusOK, ClusterBody{DBCluster: d})
}

func (a *apiHandler) events(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for k := range q {
		if k != "cluster" && k != "limit" {
			writeError(w, http.StatusBadRequest, Error{Code: "InvalidParameterValue", Field: k, Message: fmt.Sprintf("unknown query parameter %q (use cluster, limit)", k)})
			return
		}
	}
	limit := 0
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 10000 {
			writeError(w, http.StatusBadRequest, Error{Code: "InvalidParameterValue", Field: "limit", Message: fmt.Sprintf("limit %q must be a whole number from 1 to 10000", s)})
			return
		}
		limit = n
	}
	name := q.Get("cluster")
	if name != "" {
		if err := cluster.ValidateName(name); err != nil {
			writeError(w, http.StatusBadRequest, Error{Code: "InvalidParameterValue", Field: "cluster", Message: err.Error()})
			return
		}
	}
	evs, err := a.cfg.Manager.Events(name, limit)
	if err != nil {
		fail(w, err)
		return
	}
	if evs == nil {
		evs = []store.Event{}
	}
	writeJSON(w, http.StatusOK, EventsBody{Events: evs})
}

// ParseAddress checks an API listen address (host:port with a numeric port) and reports
// whether it is on a loopback interface. Off loopback the API still requires the bearer token
// on every route but /healthz, and /metrics requires it too.
func ParseAddress(addr string) (loopback bool, err error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false, fmt.Errorf("API address %q: %v (use host:port, e.g. 127.0.0.1:8433 or 0.0.0.0:8433)", addr, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return false, fmt.Errorf("API address %q: port %q is not a number from 0 to 65535", addr, port)
	}
	if host == "localhost" {
		return true, nil
	}
	if host == "" {
		return false, nil // every interface
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return false, fmt.Errorf("API address %q: %q is not an IP address (use an address such as 127.0.0.1 or 0.0.0.0)", addr, host)
	}
	return ip.IsLoopback(), nil
}
