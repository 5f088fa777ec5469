package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/borealisdb/borealis/controlplane/api"
	"github.com/borealisdb/borealis/controlplane/cluster"
	"github.com/borealisdb/borealis/controlplane/paramgroup"
)

func init() {
	commands["cluster"] = command{summary: "create, describe, list, modify and delete clusters (like aws rds)", run: runCluster}
}

var clusterSubcommands = map[string]func(args []string, stdout, stderr io.Writer) error{
	"create":   clusterCreate,
	"describe": clusterDescribe,
	"list":     clusterList,
	"modify":   clusterModify,
	"delete":   clusterDelete,

	"modify-current-capacity": clusterModifyCapacity,
}

func runCluster(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(stdout, "Usage: borealis cluster <create|describe|list|modify|delete|stop|start|reboot|failover|modify-instance|modify-current-capacity> [flags]\n\n"+
			"  create   --name N [--readers 1] [--min-capacity 1] [--max-capacity 8] [--wait]\n"+
			"  describe [N]\n  list\n"+
			"  modify   --name N [--min-capacity X] [--max-capacity Y] [--auto-pause] [--timeout-action A] ...\n"+
			"  delete   --name N --skip-final-snapshot\n"+
			"  stop     --name N [--wait]       (stop-db-cluster: nodes stopped, clients refused)\n"+
			"  start    --name N [--wait]       (start-db-cluster)\n"+
			"  reboot   --name N [--instance ID] [--wait]  (reboot-db-instance; the writer by default)\n"+
			"  failover --name N [--target-db-instance-identifier ID]   (switchover, like aws rds failover-db-cluster)\n"+
			"  modify-instance --name N --db-instance-identifier ID --promotion-tier T\n"+
			"  modify-current-capacity --name N --capacity C [--seconds-before-timeout S] [--timeout-action A]\n\nRun 'borealis cluster <sub> -h' for its flags.")
		if len(args) == 0 {
			return usagef("which cluster command? %s", clusterCommandList())
		}
		return nil
	}
	sub, ok := clusterSubcommands[args[0]]
	if !ok {
		return usagef("unknown cluster command %q: use %s", args[0], clusterCommandList())
	}
	return sub(args[1:], stdout, stderr)
}

// clusterCommandList names every cluster subcommand, from the table itself, so an error never
// leaves one out (it forgot failover and modify-instance).
func clusterCommandList() string {
	names := make([]string, 0, len(clusterSubcommands))
	for n := range clusterSubcommands {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// scalingFlags are the serverless settings shared by create and modify.
type scalingFlags struct {
	min, max                         *float64
	autoPause                        *bool
	secondsUntilPause, secondsBefore *int
	timeoutAction                    *string
}

func addScalingFlags(fs *flag.FlagSet) scalingFlags {
	return scalingFlags{
		min:               fs.Float64("min-capacity", cluster.DefaultMinCapacity, "minimum capacity in ACUs (0.5-128, steps of 0.5)"),
		max:               fs.Float64("max-capacity", cluster.DefaultMaxCapacity, "maximum capacity in ACUs (0.5-128, steps of 0.5)"),
		autoPause:         fs.Bool("auto-pause", false, "pause the cluster when idle"),
		secondsUntilPause: fs.Int("seconds-until-auto-pause", cluster.DefaultSecondsUntilAutoPause, "idle seconds before pausing (300-86400; dev floor: "+cluster.AutoPauseFloorEnv+")"),
		secondsBefore:     fs.Int("seconds-before-timeout", cluster.DefaultSecondsBeforeTimeout, "seconds to wait for a scaling point (60-600)"),
		timeoutAction:     fs.String("timeout-action", cluster.RollbackCapacityChange, "RollbackCapacityChange or ForceApplyCapacityChange"),
	}
}

// refuseZero: in a create, 0 means "the default" to the API, so a flag given as 0 would be
// silently replaced (--min-capacity 0 became 1 ACU); refuse it, as modify does.
func (sf scalingFlags) refuseZero(fs *flag.FlagSet) error {
	var err error
	fs.Visit(func(f *flag.Flag) {
		if err != nil {
			return
		}
		switch f.Name {
		case "min-capacity", "max-capacity":
			if f.Value.String() == "0" {
				err = usagef("--%s: 0 ACU is not allowed: use a multiple of 0.5 from %g to %d", f.Name, cluster.MinACU, cluster.MaxACU)
			}
		case "seconds-until-auto-pause", "seconds-before-timeout":
			if f.Value.String() == "0" {
				err = usagef("--%s: 0 is out of range (see `-h` for the range)", f.Name)
			}
		}
	})
	return err
}

// usageFromField turns a validation error into a usage error naming the flag.
func usageFromField(err error) error {
	var fe *cluster.FieldError
	if errors.As(err, &fe) {
		if f := flagForField[fe.Field]; f != "" {
			return usagef("%s: %s", f, fe.Message)
		}
	}
	return err
}

func clusterCreate(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("cluster create", stderr)
	cf := addClientFlags(fs)
	name := clusterNameFlag(fs, "cluster identifier (required)")
	readers := fs.Int("readers", 1, "number of readers (0-15)")
	port := fs.Int("port", 0, "cluster endpoint port on 127.0.0.1 (0: a free one)")
	readerPort := fs.Int("reader-port", 0, "reader endpoint port on 127.0.0.1 (0: a free one)")
	wait := fs.Bool("wait", false, "wait until the cluster and its members are available, showing each change of status on stderr")
	paramGroup := fs.String("db-cluster-parameter-group-name", "", "cluster parameter group (default: "+paramgroup.DefaultGroup+")")
	logExports := fs.String("enable-logs-exports", "", "log types to publish to log groups, comma-separated: error, postgresql (default: error)")
	sf := addScalingFlags(fs)
	ff := addFailoverFlags(fs, true)
	mf := addMasterUserFlags(fs, false)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	format, err := outputFormat(*cf.output)
	if err != nil {
		return err
	}
	if err := sf.refuseZero(fs); err != nil {
		return err
	}
	in := cluster.CreateInput{Name: *name, Readers: *readers, MinCapacity: *sf.min, MaxCapacity: *sf.max,
		AutoPause: *sf.autoPause, SecondsUntilAutoPause: *sf.secondsUntilPause, SecondsBeforeTimeout: *sf.secondsBefore,
		TimeoutAction: *sf.timeoutAction, Port: *port, ReaderPort: *readerPort, DBClusterParameterGroupName: *paramGroup,
		MasterUserInput: mf.input()}
	if err := ff.apply(fs, &in.FailoverInput, nil); err != nil {
		return err
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "enable-logs-exports" {
			in.EnableLogsExports = splitList(*logExports)
		}
	})
	if err := in.Validate(); err != nil {
		return usageFromField(err)
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	var body api.ClusterBody
	if err := c.call("POST", "/v1/clusters", in, &body); err != nil {
		return err
	}
	if *wait {
		if err := waitStatus(c, *name, cluster.StatusAvailable, &body, stderr, waitTimeout); err != nil {
			return err
		}
	}
	return printCluster(stdout, format, body.DBCluster, true)
}

// onePositional parses flags that may come before or after at most one positional argument,
// as with aws and psql, and returns that argument ("" when absent).
func onePositional(fs *flag.FlagSet, args []string) (string, error) {
	var positional []string
	for {
		if err := parseFlagsOnly(fs, args); err != nil {
			return "", err
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(positional) > 1 {
		return "", usagef("unexpected argument %q", positional[1])
	}
	if len(positional) == 1 {
		return positional[0], nil
	}
	return "", nil
}

// nameArg takes the cluster name from --name or the one positional argument.
func nameArg(fs *flag.FlagSet, args []string, name *string, required bool) error {
	positional, err := onePositional(fs, args)
	if err != nil {
		return err
	}
	if positional != "" {
		if *name != "" && *name != positional {
			return usagef("two cluster names: --name %s and %s", *name, positional)
		}
		*name = positional
	}
	if *name == "" && required {
		return usagef("--name is required")
	}
	if *name != "" {
		if err := cluster.ValidateName(*name); err != nil {
			return usageFromField(err)
		}
	}
	return nil
}

func clusterDescribe(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("cluster describe", stderr)
	cf := addClientFlags(fs)
	name := clusterNameFlag(fs, "cluster identifier (all clusters when omitted)")
	if err := nameArg(fs, args, name, false); err != nil {
		return err
	}
	c, format, err := cf.connect()
	if err != nil {
		return err
	}
	if *name == "" {
		var list api.ClustersBody
		if err := c.call("GET", "/v1/clusters", nil, &list); err != nil {
			return err
		}
		return printClusters(stdout, format, list.DBClusters, true)
	}
	// One cluster is still a list, as aws rds describe-db-clusters --db-cluster-identifier.
	d, err := callOneCluster(c, "GET", *name, nil)
	if err != nil {
		return err
	}
	return printClusters(stdout, format, []cluster.Description{d}, true)
}

func clusterList(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("cluster list", stderr)
	cf := addClientFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c, format, err := cf.connect()
	if err != nil {
		return err
	}
	var list api.ClustersBody
	if err := c.call("GET", "/v1/clusters", nil, &list); err != nil {
		return err
	}
	return printClusters(stdout, format, list.DBClusters, false)
}

func clusterModify(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("cluster modify", stderr)
	cf := addClientFlags(fs)
	name := clusterNameFlag(fs, "cluster identifier (required)")
	sf := addScalingFlags(fs)
	paramGroup := fs.String("db-cluster-parameter-group-name", "", "move the cluster to this parameter group")
	ff := addFailoverFlags(fs, false)
	enableLogs := fs.String("enable-log-types", "", "start publishing these log types (comma-separated: error, postgresql)")
	disableLogs := fs.String("disable-log-types", "", "stop publishing these log types")
	idf := addModifyIdentityFlags(fs)
	noAutoPause := fs.Bool("no-auto-pause", false, "turn auto-pause off (as --auto-pause=false; like --no-deletion-protection)")
	if err := nameArg(fs, args, name, true); err != nil {
		return err
	}
	format, err := outputFormat(*cf.output)
	if err != nil {
		return err
	}
	var in cluster.ModifyInput
	var visitErr error
	fs.Visit(func(f *flag.Flag) {
		if err := idf.visit(f.Name, &in); err != nil {
			visitErr = err
		}
		switch f.Name {
		case "min-capacity":
			in.MinCapacity = sf.min
		case "max-capacity":
			in.MaxCapacity = sf.max
		case "auto-pause":
			if *noAutoPause && *sf.autoPause {
				visitErr = usagef("--auto-pause and --no-auto-pause contradict each other")
			}
			in.AutoPause = sf.autoPause
		case "no-auto-pause":
			off := !*noAutoPause
			in.AutoPause = &off
		case "seconds-until-auto-pause":
			in.SecondsUntilAutoPause = sf.secondsUntilPause
		case "seconds-before-timeout":
			in.SecondsBeforeTimeout = sf.secondsBefore
		case "timeout-action":
			in.TimeoutAction = sf.timeoutAction
		case "db-cluster-parameter-group-name":
			in.DBClusterParameterGroupName = paramGroup
		case "enable-log-types", "disable-log-types":
			in.LogsExportConfiguration = &cluster.LogsExportConfiguration{EnableLogTypes: splitList(*enableLogs), DisableLogTypes: splitList(*disableLogs)}
		}
	})
	if visitErr != nil {
		return visitErr
	}
	if err := ff.apply(fs, nil, &in); err != nil {
		return err
	}
	if in == (cluster.ModifyInput{}) {
		return usagef("nothing to modify: give --min-capacity, --max-capacity, --auto-pause or --no-auto-pause, --seconds-until-auto-pause, --seconds-before-timeout, --timeout-action, --db-cluster-parameter-group-name, --durability-mode, --failover-grace-seconds, --synchronous-fallback-seconds, --enable-log-types or --disable-log-types")
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	d, err := callOneCluster(c, "PATCH", *name, in)
	if err != nil {
		return err
	}
	return printCluster(stdout, format, d, false)
}

// clusterModifyCapacity is aws rds modify-current-db-cluster-capacity: change the writer's
// capacity now, in place or at a scaling point (see `borealis events`).
func clusterModifyCapacity(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("cluster modify-current-capacity", stderr)
	cf := addClientFlags(fs)
	name := clusterNameFlag(fs, "cluster identifier (required)")
	capFlag := fs.Float64("capacity", 0, "new capacity in ACUs (0.5-128, steps of 0.5, within the cluster's range; required)")
	secs := fs.Int("seconds-before-timeout", 0, "seconds to look for a scaling point (10-600; default: the cluster's)")
	action := fs.String("timeout-action", "", "RollbackCapacityChange or ForceApplyCapacityChange (default: the cluster's)")
	if err := nameArg(fs, args, name, true); err != nil {
		return err
	}
	format, err := outputFormat(*cf.output)
	if err != nil {
		return err
	}
	if *capFlag == 0 {
		return usagef("--capacity is required")
	}
	if *capFlag < cluster.MinACU || *capFlag > cluster.MaxACU || math.Mod(*capFlag*2, 1) != 0 {
		return usagef("--capacity: %g ACU is not allowed: use a multiple of 0.5 from %g to %d", *capFlag, cluster.MinACU, cluster.MaxACU)
	}
	if *secs != 0 && (*secs < 10 || *secs > 600) {
		return usagef("--seconds-before-timeout: %d is out of range: use 10 to 600", *secs)
	}
	if *action != "" && *action != cluster.RollbackCapacityChange && *action != cluster.ForceApplyCapacityChange {
		return usagef("--timeout-action: %q is not one of %s, %s", *action, cluster.RollbackCapacityChange, cluster.ForceApplyCapacityChange)
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	var out cluster.CapacityOutput
	in := cluster.CapacityInput{Capacity: *capFlag, SecondsBeforeTimeout: *secs, TimeoutAction: *action}
	if err := c.call("POST", "/v1/clusters/"+url.PathEscape(*name)+"/capacity", in, &out); err != nil {
		return err
	}
	if format == "json" {
		return printJSON(stdout, out)
	}
	fmt.Fprintf(stdout, "%s: capacity %g -> %g ACU requested (timeout %d s, then %s); follow it with `borealis events --cluster %s`\n",
		out.DBClusterIdentifier, out.CurrentCapacity, out.PendingCapacity, out.SecondsBeforeTimeout, out.TimeoutAction, out.DBClusterIdentifier)
	return nil
}

func clusterDelete(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("cluster delete", stderr)
	cf := addClientFlags(fs)
	name := clusterNameFlag(fs, "cluster identifier (required)")
	skip := fs.Bool("skip-final-snapshot", false, "confirm: delete the cluster and its data (Borealis keeps no final snapshot)")
	if err := nameArg(fs, args, name, true); err != nil {
		return err
	}
	format, err := outputFormat(*cf.output)
	if err != nil {
		return err
	}
	if !*skip {
		return usagef("deleting cluster %s destroys its data and Borealis keeps no final snapshot: pass --skip-final-snapshot to confirm (use `borealis cluster describe %s` to look)", *name, *name)
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	var body api.ClusterBody
	if err := c.call("DELETE", "/v1/clusters/"+url.PathEscape(*name)+"?SkipFinalSnapshot=true", nil, &body); err != nil {
		return err
	}
	return printCluster(stdout, format, body.DBCluster, false)
}

// printCluster writes the one cluster a create, modify, delete, stop, start, reboot or failover
// answers with: JSON {"DBCluster": {...}}, as aws rds create-db-cluster, stop-db-cluster and the
// rest print it (a script's `jq .DBCluster.Status` works unchanged), or the tables.
func printCluster(w io.Writer, format string, d cluster.Description, withMembers bool) error {
	if format == "json" {
		return printJSON(w, api.ClusterBody{DBCluster: d})
	}
	return printClusters(w, format, []cluster.Description{d}, withMembers)
}

// printClusters writes JSON ({"DBClusters": [...]}, like aws rds describe-db-clusters) or
// tables; members are listed when withMembers.
func printClusters(w io.Writer, format string, cs []cluster.Description, withMembers bool) error {
	if format == "json" {
		if cs == nil {
			cs = []cluster.Description{}
		}
		return printJSON(w, api.ClustersBody{DBClusters: cs})
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLUSTER\tSTATUS\tENDPOINT\tREADER ENDPOINT\tCAPACITY\tMIN\tMAX\tAUTO PAUSE\tMEMBERS")
	for _, d := range cs {
		s := d.ScalingConfigurationInfo
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%g\t%g\t%g\t%v\t%d\n", d.DBClusterIdentifier, d.Status, d.Endpoint,
			d.ReaderEndpoint, d.Capacity, s.MinCapacity, s.MaxCapacity, s.AutoPause, len(d.DBClusterMembers))
	}
	if len(cs) == 0 {
		fmt.Fprintln(tw, "(no clusters)")
	}
	tw.Flush()
	if !withMembers {
		return nil
	}
	for _, d := range cs {
		sc := d.ScalingConfigurationInfo
		pause := "auto-pause off"
		if sc.AutoPause {
			pause = fmt.Sprintf("auto-pause after %d s", sc.SecondsUntilAutoPause)
		}
		fmt.Fprintf(w, "\n%s members (timeout %d s then %s, %s):\n", d.DBClusterIdentifier, sc.SecondsBeforeTimeout, sc.TimeoutAction, pause)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  MEMBER\tROLE\tTIER\tSTATUS\tCAPACITY\tPORT\tPID\tLAG\tSCALING POINT")
		for _, m := range d.DBClusterMembers {
			role, lag := "reader", "-"
			if m.IsClusterWriter {
				role = "writer"
			} else if m.ReplicaLagSeconds != nil && m.ReplicaLagBytes != nil {
				lag = fmt.Sprintf("%.1fs/%dB", *m.ReplicaLagSeconds, *m.ReplicaLagBytes)
			}
			point := "agent unavailable"
			if a := m.Agent; a != nil && a.ScalingPoint != nil {
				point = strconv.FormatBool(*a.ScalingPoint)
				if len(a.Blockers) > 0 {
					point += " (" + strings.Join(a.Blockers, ", ") + ")"
				}
			}
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\t%g\t%d\t%d\t%s\t%s\n", m.DBInstanceIdentifier, role, m.PromotionTier,
				m.Status, m.Capacity, m.Port, m.PID, lag, point)
		}
		tw.Flush()
		printSessions(w, d)
	}
	return nil
}

// printSessions says, under the members, what the router did with client sessions: those moved
// to a new backend (reboots, capacity changes), replayed after a crash, pooled, and those open
// now that cannot move and why; and how a paused or stopped cluster comes back. It prints
// nothing for a cluster with none of these.
func printSessions(w io.Writer, d cluster.Description) {
	switch d.Status {
	case cluster.StatusPaused:
		fmt.Fprintf(w, "  paused at 0 ACU: the next connection to either endpoint resumes it (or `borealis cluster start --name %s`)\n", d.DBClusterIdentifier)
	case cluster.StatusStopped:
		fmt.Fprintf(w, "  stopped: clients are refused until `borealis cluster start --name %s`\n", d.DBClusterIdentifier)
	}
	pool := d.BackendPool
	if pool != nil && pool.IsZero() {
		pool = nil
	}
	if d.MovedSessions > 0 || d.RecoveredSessions > 0 || pool != nil {
		line := fmt.Sprintf("  sessions: %d moved to a new backend, %d replayed after their backend died", d.MovedSessions, d.RecoveredSessions)
		if p := pool; p != nil {
			line += fmt.Sprintf("; backend pool %d idle, %d in use, %d reused, %d opened", p.Idle, p.InUse, p.Reused, p.Opened)
			reasons := make([]string, 0, len(p.Closed))
			for r, n := range p.Closed {
				reasons = append(reasons, fmt.Sprintf("%s %d", r, n))
			}
			if sort.Strings(reasons); len(reasons) > 0 {
				line += ", closed: " + strings.Join(reasons, ", ")
			}
			if p.DDLDrains > 0 || p.SettingsMisses > 0 {
				line += fmt.Sprintf(" (%d DATABASE DDL drains, %d logins under changed role settings)", p.DDLDrains, p.SettingsMisses)
			}
		}
		fmt.Fprintln(w, line)
	}
	if len(d.PinnedSessions) > 0 {
		fmt.Fprintf(w, "  pinned sessions (they cannot move: a restart of their node closes them with a retryable 57P01):\n")
		for _, p := range d.PinnedSessions {
			fmt.Fprintf(w, "    %s endpoint, %s@%s: %s\n", p.Endpoint, p.User, p.Database, strings.Join(p.Reasons, ", "))
		}
	}
}

// callOneCluster sends method to the named cluster's resource and returns the cluster the API
// answers with.
func callOneCluster(c *apiClient, method, name string, in any) (cluster.Description, error) {
	var body api.ClusterBody
	err := c.call(method, "/v1/clusters/"+url.PathEscape(name), in, &body)
	return body.DBCluster, err
}
