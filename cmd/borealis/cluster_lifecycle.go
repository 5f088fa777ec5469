package main

import (
	"io"
	"net/url"

	"github.com/borealisdb/borealis/controlplane/api"
	"github.com/borealisdb/borealis/controlplane/cluster"
)

// stop, start and reboot: like aws rds stop-db-cluster, start-db-cluster and
// reboot-db-instance, they print the cluster in its transitional status and return; with
// --wait they show each change of status until the cluster (and every member) is stopped or
// available, as `aws rds wait` would, and exit 1 if it fails or times out.
func init() {
	clusterSubcommands["stop"] = func(args []string, stdout, stderr io.Writer) error {
		return clusterLifecycle("stop", args, stdout, stderr)
	}
	clusterSubcommands["start"] = func(args []string, stdout, stderr io.Writer) error {
		return clusterLifecycle("start", args, stdout, stderr)
	}
	clusterSubcommands["reboot"] = func(args []string, stdout, stderr io.Writer) error {
		return clusterLifecycle("reboot", args, stdout, stderr)
	}
}

func clusterLifecycle(op string, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("cluster "+op, stderr)
	cf := addClientFlags(fs)
	name := clusterNameFlag(fs, "cluster identifier (required)")
	var instance *string
	if op == "reboot" {
		instance = aliasedString(fs, []string{"instance", "db-instance-identifier"}, "DB instance `identifier` to restart (default: the writer)")
	}
	want := map[string]string{"stop": cluster.StatusStopped, "start": cluster.StatusAvailable, "reboot": cluster.StatusAvailable}[op]
	wait := fs.Bool("wait", false, "wait until the cluster and its members are "+want+", showing each change of status on stderr")
	if err := nameArg(fs, args, name, true); err != nil {
		return err
	}
	format, err := outputFormat(*cf.output)
	if err != nil {
		return err
	}
	var in any
	if instance != nil && *instance != "" {
		in = api.RebootInput{DBInstanceIdentifier: *instance}
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	var body api.ClusterBody
	if err := c.call("POST", "/v1/clusters/"+url.PathEscape(*name)+"/"+op, in, &body); err != nil {
		return err
	}
	if *wait {
		if err := waitStatus(c, *name, want, &body, stderr, waitTimeout); err != nil {
			return err
		}
	}
	return printCluster(stdout, format, body.DBCluster, true)
}
