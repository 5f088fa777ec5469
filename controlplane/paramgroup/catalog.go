package paramgroup

import (
	"fmt"

	"github.com/borealisdb/borealis/controlplane/capacity"
	"sort"
	"strconv"
	"strings"
)

// Family is the only parameter group family: the engine Borealis runs.
const Family = "borealis-postgresql15"

// DefaultGroup is the read-only group every cluster uses unless given another.
const DefaultGroup = "default." + Family

// Apply types, as Aurora names them.
const (
	Dynamic = "dynamic" // a reload applies it on every node
	Static  = "static"  // a node restart applies it
)

// Owners of parameters a group may not change.
const (
	OwnerCapacity    = "capacity"
	OwnerLogging     = "logging"
	OwnerReplication = "replication"
	OwnerEngine      = "engine"
)

// Param is one parameter of the family.
type Param struct {
	Name        string
	Default     string // as pg_settings.setting shows it (base unit, no suffix)
	Description string
	DataType    string // boolean, integer, list (an enumeration), string
	Unit        string // of integers: ms, kB, B
	Min, Max    int64
	Allowed     []string // of lists
	ApplyType   string
	// Owner is set on parameters a group cannot change: who sets them, for the refusal.
	Owner  string
	Reason string
}

// Modifiable reports whether a custom group may set the parameter.
func (p Param) Modifiable() bool { return p.Owner == "" }

// AllowedValues is Aurora's AllowedValues string: "-1-2147483647", "none,ddl,mod,all", "0,1".
func (p Param) AllowedValues() string {
	switch p.DataType {
	case "boolean":
		return "0,1"
	case "integer":
		return fmt.Sprintf("%d-%d", p.Min, p.Max)
	case "list":
		return strings.Join(p.Allowed, ",")
	}
	return ""
}

const maxInt32 = 2147483647

var logLevels = []string{"debug5", "debug4", "debug3", "debug2", "debug1", "info", "notice", "warning", "error", "log", "fatal", "panic"}

// catalog is every parameter of the family, by name. Defaults are PostgreSQL 15's (the node's
// postgresql.conf sets none of the modifiable ones), or the value Borealis fixes.
var catalog = func() map[string]Param {
	ps := []Param{
		// The seed's fixed logging rules: always on, always off.
		{Name: "log_connections", Default: "on", DataType: "boolean", ApplyType: Dynamic, Owner: OwnerLogging,
			Description: "Logs each successful connection.", Reason: "is always on in Borealis (a fixed logging rule)"},
		{Name: "log_disconnections", Default: "on", DataType: "boolean", ApplyType: Dynamic, Owner: OwnerLogging,
			Description: "Logs end of a session, including duration.", Reason: "is always on in Borealis (a fixed logging rule)"},
		{Name: "log_hostname", Default: "off", DataType: "boolean", ApplyType: Dynamic, Owner: OwnerLogging,
			Description: "Logs the host name in the connection logs.", Reason: "is always off in Borealis (a fixed logging rule)"},
		{Name: "logging_collector", Default: "on", DataType: "boolean", ApplyType: Static, Owner: OwnerLogging,
			Description: "Start a subprocess to capture stderr output and/or csvlogs into log files.", Reason: "is on so the control plane can collect the node's logs into log groups"},
		{Name: "log_destination", Default: "stderr,jsonlog", DataType: "string", ApplyType: Dynamic, Owner: OwnerLogging,
			Description: "Sets the destination for server log output.", Reason: "is stderr,jsonlog: the control plane collects the jsonlog files into log groups"},
		{Name: "shared_preload_libraries", Default: "borealis", DataType: "string", ApplyType: Static, Owner: OwnerEngine,
			Description: "Lists shared libraries to preload into server.", Reason: "loads the Borealis node agent and index"},
		{Name: "wal_level", Default: "replica", DataType: "list", Allowed: []string{"replica", "logical"}, ApplyType: Static, Owner: OwnerReplication,
			Description: "Sets the level of information written to the WAL.", Reason: "is set for the cluster's streaming replicas"},
		{Name: "hot_standby", Default: "on", DataType: "boolean", ApplyType: Static, Owner: OwnerReplication,
			Description: "Allows connections and queries during recovery.", Reason: "is on so readers serve queries"},

		// Modifiable: the seed's logging parameters.
		{Name: "log_lock_waits", Default: "off", DataType: "boolean", ApplyType: Dynamic,
			Description: "Logs long lock waits."},
		{Name: "log_min_duration_statement", Default: "-1", DataType: "integer", Unit: "ms", Min: -1, Max: maxInt32, ApplyType: Dynamic,
			Description: "Sets the minimum execution time above which statements will be logged (-1 disables)."},
		{Name: "log_min_messages", Default: "warning", DataType: "list", Allowed: logLevels, ApplyType: Dynamic,
			Description: "Sets the message levels that are logged."},
		{Name: "log_temp_files", Default: "-1", DataType: "integer", Unit: "kB", Min: -1, Max: maxInt32, ApplyType: Dynamic,
			Description: "Log the use of temporary files larger than this number of kilobytes (-1 disables)."},
		{Name: "log_statement", Default: "none", DataType: "list", Allowed: []string{"none", "ddl", "mod", "all"}, ApplyType: Dynamic,
			Description: "Sets the type of statements logged."},
		// Modifiable: other session and statistics settings.
		{Name: "log_min_error_statement", Default: "error", DataType: "list", Allowed: logLevels, ApplyType: Dynamic,
			Description: "Causes all statements generating error at or above this level to be logged."},
		{Name: "log_autovacuum_min_duration", Default: "600000", DataType: "integer", Unit: "ms", Min: -1, Max: maxInt32, ApplyType: Dynamic,
			Description: "Sets the minimum execution time above which autovacuum actions will be logged."},
		{Name: "statement_timeout", Default: "0", DataType: "integer", Unit: "ms", Min: 0, Max: maxInt32, ApplyType: Dynamic,
			Description: "Sets the maximum allowed duration of any statement (0 disables)."},
		{Name: "lock_timeout", Default: "0", DataType: "integer", Unit: "ms", Min: 0, Max: maxInt32, ApplyType: Dynamic,
			Description: "Sets the maximum allowed duration of any wait for a lock (0 disables)."},
		{Name: "idle_in_transaction_session_timeout", Default: "0", DataType: "integer", Unit: "ms", Min: 0, Max: maxInt32, ApplyType: Dynamic,
			Description: "Sets the maximum allowed idle time between queries, when in a transaction (0 disables)."},
		{Name: "deadlock_timeout", Default: "1000", DataType: "integer", Unit: "ms", Min: 1, Max: maxInt32, ApplyType: Dynamic,
			Description: "Sets the time to wait on a lock before checking for deadlock."},
		{Name: "default_statistics_target", Default: "100", DataType: "integer", Min: 1, Max: 10000, ApplyType: Dynamic,
			Description: "Sets the default statistics target."},
		{Name: "track_io_timing", Default: "off", DataType: "boolean", ApplyType: Dynamic,
			Description: "Collects timing statistics for database I/O activity."},
		{Name: "track_activity_query_size", Default: "1024", DataType: "integer", Unit: "B", Min: 100, Max: 1048576, ApplyType: Static,
			Description: "Sets the size reserved for pg_stat_activity.query, in bytes."},
		{Name: "track_commit_timestamp", Default: "off", DataType: "boolean", ApplyType: Static,
			Description: "Collects transaction commit time."},
	}
	// The parameters capacity sets come from its table, the one source of truth.
	for _, s := range capacity.Settings(1) {
		apply := Dynamic
		if s.Restart {
			apply = Static
		}
		ps = append(ps, Param{Name: s.Name, DataType: "integer", ApplyType: apply, Owner: OwnerCapacity,
			Description: fmt.Sprintf("Follows the node's capacity in ACUs (at 1 ACU: %s).", s.Value),
			Reason:      "follows the node's capacity in ACUs: change the cluster's capacity range (`borealis cluster modify --min-capacity/--max-capacity`) instead"})
	}
	m := make(map[string]Param, len(ps))
	for _, p := range ps {
		m[p.Name] = p
	}
	return m
}()

// Lookup returns the catalogue entry of a parameter.
func Lookup(name string) (Param, bool) {
	p, ok := catalog[name]
	return p, ok
}

// Catalog returns every parameter of the family, by name.
func Catalog() []Param {
	out := make([]Param, 0, len(catalog))
	for _, p := range catalog {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// InvalidError is a parameter change that cannot be made, whatever the group.
type InvalidError struct {
	Parameter string
	Message   string
}

func (e *InvalidError) Error() string { return e.Message }

func invalid(name, format string, args ...any) error {
	return &InvalidError{Parameter: name, Message: fmt.Sprintf(format, args...)}
}

// Validate checks one parameter change and returns the value in its canonical form (as
// pg_settings.setting shows it).
func Validate(name, value string) (string, error) {
	p, ok := catalog[strings.ToLower(strings.TrimSpace(name))]
	if !ok {
		return "", invalid(name, "unknown parameter %q in family %s (list them with `borealis describe-engine-default-cluster-parameters`)", name, Family)
	}
	if p.Owner == OwnerCapacity {
		return "", invalid(name, "%s is owned by capacity: it %s", p.Name, p.Reason)
	}
	if !p.Modifiable() {
		return "", invalid(name, "%s is not modifiable: it %s (owner: %s)", p.Name, p.Reason, p.Owner)
	}
	v := strings.TrimSpace(value)
	switch p.DataType {
	case "boolean":
		switch strings.ToLower(v) {
		case "on", "true", "1", "yes":
			return "on", nil
		case "off", "false", "0", "no":
			return "off", nil
		}
		return "", invalid(name, "%s is a boolean: use on or off (or 1/0, true/false), not %q", p.Name, value)
	case "integer":
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			unit := ""
			if p.Unit != "" {
				unit = " in " + p.Unit + " without a unit suffix"
			}
			return "", invalid(name, "%s is an integer%s, not %q", p.Name, unit, value)
		}
		if n < p.Min || n > p.Max {
			return "", invalid(name, "%s = %d is out of range: allowed %s", p.Name, n, p.AllowedValues())
		}
		return strconv.FormatInt(n, 10), nil
	case "list":
		lv := strings.ToLower(v)
		for _, a := range p.Allowed {
			if a == lv {
				return a, nil
			}
		}
		return "", invalid(name, "%s must be one of %s, not %q", p.Name, p.AllowedValues(), value)
	}
	return v, nil
}

// Modifiable returns the names of the parameters a group may set, sorted.
func Modifiable() []string {
	var out []string
	for _, p := range Catalog() {
		if p.Modifiable() {
			out = append(out, p.Name)
		}
	}
	return out
}

// Effective returns, for every modifiable parameter, the value a node of a cluster using a
// group with these user settings must run with.
func Effective(user map[string]string) map[string]string {
	out := map[string]string{}
	for _, p := range catalog {
		if !p.Modifiable() {
			continue
		}
		out[p.Name] = p.Default
		if v, ok := user[p.Name]; ok {
			out[p.Name] = v
		}
	}
	return out
}

// FixedLogging are the fixed logging rules every node carries, as postgresql.conf values.
func FixedLogging() map[string]string {
	return map[string]string{"log_connections": "on", "log_disconnections": "on", "log_hostname": "off"}
}
