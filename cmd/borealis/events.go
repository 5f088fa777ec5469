package main

import (
	"fmt"
	"io"
	"net/url"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/borealisdb/borealis/controlplane/api"
	"github.com/borealisdb/borealis/controlplane/cluster"
	"github.com/borealisdb/borealis/controlplane/store"
)

func init() {
	commands["events"] = command{summary: "show the control plane's events, oldest first", run: runEvents}
}

func runEvents(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("events", stderr)
	cf := addClientFlags(fs)
	name := fs.String("cluster", "", "only this cluster's events")
	limit := fs.Int("limit", 100, "at most this many of the newest events (1-10000)")
	since := fs.String("since", "", "only events this recent: 10m, 2h, 1d (s, m, h, d, w) or an RFC 3339 time (of the newest --limit)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var from time.Time
	if *since != "" {
		var err error
		if from, err = parseSince(*since, time.Now()); err != nil {
			return err
		}
	}
	format, err := outputFormat(*cf.output)
	if err != nil {
		return err
	}
	if *limit < 1 || *limit > 10000 {
		return usagef("--limit must be from 1 to 10000, got %d", *limit)
	}
	q := url.Values{"limit": {strconv.Itoa(*limit)}}
	if *name != "" {
		if err := cluster.ValidateName(*name); err != nil {
			return usagef("--cluster: %v", err)
		}
		q.Set("cluster", *name)
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	var body api.EventsBody
	if err := c.call("GET", "/v1/events?"+q.Encode(), nil, &body); err != nil {
		return err
	}
	if len(body.Events) == 0 && *name != "" {
		// A mistyped name would list nothing and succeed; a deleted cluster's events stay
		// listed, so only a name with no events and no cluster is an error.
		if err := c.call("GET", "/v1/clusters/"+url.PathEscape(*name), nil, &api.ClusterBody{}); err != nil {
			return err
		}
	}
	recent := body.Events[:0]
	for _, e := range body.Events {
		if !e.Time.Before(from) {
			recent = append(recent, e)
		}
	}
	body.Events = recent
	if format == "json" {
		out := eventsJSON{Events: make([]eventJSON, 0, len(body.Events))}
		for _, e := range body.Events {
			out.Events = append(out.Events, awsEvent(e))
		}
		return printJSON(stdout, out)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tTYPE\tCLUSTER\tMEMBER\tMESSAGE")
	for _, e := range body.Events {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Time.Local().Format("2006-01-02 15:04:05"), e.Type, dash(e.Cluster), dash(e.Member), e.Message)
	}
	return tw.Flush()
}

// eventsJSON is `events --output json`, in the shape `aws rds describe-events` prints, so a
// script's `jq '.Events[] | .Date, .SourceIdentifier, .Message'` works unchanged.
type eventsJSON struct {
	Events []eventJSON `json:"Events"`
}

// eventJSON is one event: aws rds's fields (SourceIdentifier is the member for an instance's
// event, else the cluster; SourceType db-instance, db-cluster or, for the control plane's own,
// control-plane) and Borealis's event type (cluster.paused, member.sessions-moved, ...) with the
// cluster it belongs to and its sequence number.
type eventJSON struct {
	SourceIdentifier    string    `json:"SourceIdentifier"`
	SourceType          string    `json:"SourceType"`
	Message             string    `json:"Message"`
	Date                time.Time `json:"Date"`
	EventType           string    `json:"EventType"`
	DBClusterIdentifier string    `json:"DBClusterIdentifier,omitempty"`
	Seq                 uint64    `json:"Seq"`
}

func awsEvent(e store.Event) eventJSON {
	out := eventJSON{SourceIdentifier: e.Cluster, SourceType: "db-cluster", Message: e.Message, Date: e.Time,
		EventType: e.Type, DBClusterIdentifier: e.Cluster, Seq: e.Seq}
	switch {
	case e.Member != "":
		out.SourceIdentifier, out.SourceType = e.Member, "db-instance"
	case e.Cluster == "":
		out.SourceType = "control-plane"
	}
	return out
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
