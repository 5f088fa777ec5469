package main

import (
	"io"
	"net/url"

	"github.com/borealisdb/borealis/controlplane/api"
	"github.com/borealisdb/borealis/controlplane/cluster"
)

// stop, start and reboot: like aws rds stop-db-cluster, start-db-cluster and
// reboot-db-instance, they print the cluster in its transitional status and return.
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
	name := fs.String("name", "", "cluster identifier (required)")
	var instance *string
	if op == "reboot" {
		instance = fs.String("instance", "", "DB instance identifier to restart (default: the writer)")
	}
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
	return printClusters(stdout, format, []cluster.Description{body.DBCluster}, true)
}
