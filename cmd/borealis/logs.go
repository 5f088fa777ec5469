package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/borealisdb/borealis/controlplane/api"
	"github.com/borealisdb/borealis/controlplane/logs"
)

func init() {
	commands["logs"] = command{summary: "log groups: describe-log-groups, tail, put-retention-policy, delete-log-group (like aws logs)", run: runLogs}
}

var logsSubcommands = map[string]func(args []string, stdout, stderr io.Writer) error{
	"describe-log-groups":  logsDescribe,
	"tail":                 logsTail,
	"put-retention-policy": logsRetention,
	"delete-log-group":     logsDelete,
}

func runLogs(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(stdout, "Usage: borealis logs <command> [flags]\n\n"+
			"  describe-log-groups  [--log-group-name-prefix P]\n"+
			"  tail                 GROUP [--follow] [--since 10m] [--filter-pattern TEXT] [--format detailed|short] [--output json]\n"+
			"  put-retention-policy GROUP --retention-in-days N   (0: keep until the group is deleted)\n"+
			"  delete-log-group     GROUP\n\n"+
			"Groups: /borealis/cluster/<cluster>/error (published by default) and /borealis/cluster/<cluster>/postgresql\n"+
			"(`borealis cluster modify --name C --enable-log-types postgresql`). One stream per instance.")
		if len(args) == 0 {
			return usagef("which logs command? describe-log-groups, tail, put-retention-policy or delete-log-group")
		}
		return nil
	}
	sub, ok := logsSubcommands[args[0]]
	if !ok {
		return usagef("unknown logs command %q: use describe-log-groups, tail, put-retention-policy or delete-log-group", args[0])
	}
	return sub(args[1:], stdout, stderr)
}

// logGroupArg takes the group from --log-group-name or the one positional argument.
func logGroupArg(fs *flag.FlagSet, args []string, name *string) error {
	positional, err := onePositional(fs, args)
	if err != nil {
		return err
	}
	if positional != "" {
		*name = positional
	}
	if *name == "" {
		return usagef("a log group name is required, e.g. /borealis/cluster/<cluster>/error")
	}
	if _, _, err := logs.ParseGroupName(*name); err != nil {
		return usagef("%v", err)
	}
	return nil
}

func logsDescribe(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("logs describe-log-groups", stderr)
	cf := addClientFlags(fs)
	prefix := fs.String("log-group-name-prefix", "", "only groups whose names start with this")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c, format, err := cf.connect()
	if err != nil {
		return err
	}
	var body api.LogGroupsBody
	if err := c.call("GET", "/v1/log-groups?logGroupNamePrefix="+url.QueryEscape(*prefix), nil, &body); err != nil {
		return err
	}
	if format == "json" {
		if body.LogGroups == nil {
			body.LogGroups = []logs.Description{}
		}
		return printJSON(stdout, body)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LOG GROUP\tCREATED\tRETENTION\tSTREAMS\tSTORED BYTES")
	for _, g := range body.LogGroups {
		ret := "never expire"
		if g.RetentionInDays > 0 {
			ret = fmt.Sprintf("%d days", g.RetentionInDays)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\n", g.LogGroupName, time.UnixMilli(g.CreationTime).Local().Format("2006-01-02 15:04:05"), ret, g.LogStreams, g.StoredBytes)
	}
	if len(body.LogGroups) == 0 {
		fmt.Fprintln(tw, "(no log groups)")
	}
	return tw.Flush()
}

// parseSince reads aws logs tail's --since: 30s, 10m, 2h, 1d, 1w, or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	units := map[byte]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour, 'w': 7 * 24 * time.Hour}
	if len(s) >= 2 {
		if u, ok := units[s[len(s)-1]]; ok {
			if n, err := strconv.Atoi(s[:len(s)-1]); err == nil && n >= 0 {
				return now.Add(-time.Duration(n) * u), nil
			}
		}
	}
	return time.Time{}, usagef("--since %q: use a number and a unit (s, m, h, d, w), e.g. 10m, or an RFC 3339 time", s)
}

func logsTail(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("logs tail", stderr)
	cf := addClientFlags(fs)
	name := fs.String("log-group-name", "", "log group (or the first argument)")
	follow := fs.Bool("follow", false, "keep printing new events until interrupted")
	since := fs.String("since", "10m", "from how long ago: 30s, 10m, 2h, 1d, 1w, or an RFC 3339 time")
	pattern := fs.String("filter-pattern", "", "only events containing every term (\"quoted phrases\" allowed)")
	style := fs.String("format", "detailed", "detailed (time, stream, message) or short (time, message)")
	if err := logGroupArg(fs, args, name); err != nil {
		return err
	}
	format, err := outputFormat(*cf.output)
	if err != nil {
		return err
	}
	if *style != "detailed" && *style != "short" {
		return usagef("--format must be detailed or short, got %q", *style)
	}
	start, err := parseSince(*since, time.Now())
	if err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	q := url.Values{"logGroupName": {*name}, "startTime": {strconv.FormatInt(start.UnixMilli(), 10)}, "limit": {"10000"}}
	if *pattern != "" {
		q.Set("filterPattern", *pattern)
	}
	var interrupted chan os.Signal
	if *follow {
		interrupted = make(chan os.Signal, 1)
		signal.Notify(interrupted, os.Interrupt)
		defer signal.Stop(interrupted)
	}
	enc := json.NewEncoder(stdout)
	for {
		var body logs.FilterOutput
		if err := c.call("GET", "/v1/log-events?"+q.Encode(), nil, &body); err != nil {
			return err
		}
		for _, e := range body.Events {
			switch {
			case format == "json":
				if err := enc.Encode(e); err != nil {
					return err
				}
			case *style == "short":
				fmt.Fprintf(stdout, "%s %s\n", time.UnixMilli(e.Timestamp).UTC().Format("2006-01-02T15:04:05.000"), e.Message)
			default:
				fmt.Fprintf(stdout, "%s %s %s\n", time.UnixMilli(e.Timestamp).UTC().Format("2006-01-02T15:04:05.000000-07:00"), e.LogStreamName, e.Message)
			}
		}
		if !*follow {
			return nil
		}
		if f, ok := stdout.(*os.File); ok {
			f.Sync()
		}
		q.Set("nextToken", body.NextToken)
		if len(body.Events) == 10000 {
			continue // more is waiting
		}
		select {
		case <-interrupted:
			return nil
		case <-time.After(time.Second):
		}
	}
}

func logsRetention(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("logs put-retention-policy", stderr)
	cf := addClientFlags(fs)
	name := fs.String("log-group-name", "", "log group (or the first argument)")
	days := fs.Int("retention-in-days", -1, "days to keep events (1-3653), 0 to keep them until the group is deleted")
	if err := logGroupArg(fs, args, name); err != nil {
		return err
	}
	if *days < 0 || *days > 3653 {
		return usagef("--retention-in-days is required: 1 to 3653, or 0 to keep events until the group is deleted")
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	if err := c.call("PUT", "/v1/log-groups/retention", api.RetentionInput{LogGroupName: *name, RetentionInDays: *days}, nil); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "log group %s: retention %d days\n", *name, *days)
	return nil
}

func logsDelete(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("logs delete-log-group", stderr)
	cf := addClientFlags(fs)
	name := fs.String("log-group-name", "", "log group (or the first argument)")
	if err := logGroupArg(fs, args, name); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	if err := c.call("DELETE", "/v1/log-groups?logGroupName="+url.QueryEscape(*name), nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "deleted log group %s\n", *name)
	return nil
}

// splitList splits a comma-separated flag value.
func splitList(s string) []string {
	out := []string{}
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
