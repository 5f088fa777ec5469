package main

import (
	"flag"
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/borealisdb/borealis/controlplane/api"
	"github.com/borealisdb/borealis/controlplane/cluster"
	"github.com/borealisdb/borealis/controlplane/failover"
)

func init() {
	clusterSubcommands["failover"] = clusterFailover
	clusterSubcommands["modify-instance"] = clusterModifyInstance
	flagForField["PromotionTier"] = "--promotion-tier"
	flagForField["DurabilityMode"] = "--durability-mode"
	flagForField["FailoverGraceSeconds"] = "--failover-grace-seconds"
	flagForField["SynchronousFallbackSeconds"] = "--synchronous-fallback-seconds"
	flagForField["TargetDBInstanceIdentifier"] = "--target-db-instance-identifier"
}

// failoverFlags are the failover settings of create (all) and modify (mode and grace).
type failoverFlags struct {
	tier     *int
	mode     *string
	grace    *int
	fallback *int
}

func addFailoverFlags(fs *flag.FlagSet, withTier bool) failoverFlags {
	f := failoverFlags{
		mode:     fs.String("durability-mode", failover.Asynchronous, "asynchronous or synchronous (commits wait for a reader)"),
		grace:    fs.Int("failover-grace-seconds", int(failover.DefaultGrace.Seconds()), "seconds a writer may fail before a reader is promoted (1-300)"),
		fallback: fs.Int("synchronous-fallback-seconds", 0, "synchronous mode without a reader: 0 = commits wait (strict); N = fall back to asynchronous commits after N seconds (1-3600), no automatic promotion until a reader caught up"),
	}
	if withTier {
		f.tier = fs.Int("promotion-tier", 1, "the readers' promotion tier (0-15, 0 promoted first)")
	}
	return f
}

// apply sets the flags that were given on the command line.
func (f failoverFlags) apply(fs *flag.FlagSet, create *cluster.FailoverInput, modify *cluster.ModifyInput) error {
	var err error
	fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "promotion-tier":
			if create != nil {
				create.PromotionTier = f.tier
			}
		case "durability-mode":
			if create != nil {
				create.DurabilityMode = *f.mode
			} else {
				modify.DurabilityMode = f.mode
			}
		case "synchronous-fallback-seconds":
			if e := failover.ValidateSyncFallback(*f.fallback); e != nil {
				err = usagef("--synchronous-fallback-seconds: %v", e)
			}
			if create != nil {
				create.SynchronousFallbackSeconds = *f.fallback
			} else {
				modify.SynchronousFallbackSeconds = f.fallback
			}
		case "failover-grace-seconds":
			if g := time.Duration(*f.grace) * time.Second; g < failover.MinGrace || g > failover.MaxGrace {
				err = usagef("--failover-grace-seconds: %d is out of range: use %d to %d", *f.grace, int(failover.MinGrace.Seconds()), int(failover.MaxGrace.Seconds()))
			}
			if create != nil {
				create.FailoverGraceSeconds = *f.grace
			} else {
				modify.FailoverGraceSeconds = f.grace
			}
		}
	})
	return err
}

// clusterFailover is aws rds failover-db-cluster: a clean switchover to a reader.
func clusterFailover(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("cluster failover", stderr)
	cf := addClientFlags(fs)
	name := clusterNameFlag(fs, "cluster identifier (required)")
	target := fs.String("target-db-instance-identifier", "", "the reader to promote (default: lowest promotion tier, then largest capacity, then least lag)")
	if err := nameArg(fs, args, name, true); err != nil {
		return err
	}
	c, format, err := cf.connect()
	if err != nil {
		return err
	}
	var body api.ClusterBody
	if err := c.call("POST", "/v1/clusters/"+url.PathEscape(*name)+"/failover",
		api.FailoverInput{TargetDBInstanceIdentifier: *target}, &body); err != nil {
		return err
	}
	if format != "json" && body.DBCluster.LastFailover != nil {
		lf := body.DBCluster.LastFailover
		fmt.Fprintf(stdout, "failed over from %s to %s in %.1f s\n", lf.From, lf.To, lf.DowntimeSeconds)
	}
	return printCluster(stdout, format, body.DBCluster, true)
}

// clusterModifyInstance is aws rds modify-db-instance --promotion-tier.
func clusterModifyInstance(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("cluster modify-instance", stderr)
	cf := addClientFlags(fs)
	name := clusterNameFlag(fs, "cluster identifier (required)")
	id := fs.String("db-instance-identifier", "", "the member to change (required)")
	tier := fs.Int("promotion-tier", 1, "promotion tier (0-15, 0 promoted first)")
	if err := nameArg(fs, args, name, true); err != nil {
		return err
	}
	if *id == "" {
		return usagef("--db-instance-identifier is required")
	}
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "promotion-tier" })
	if !given {
		return usagef("nothing to modify: give --promotion-tier")
	}
	if err := failover.ValidateTier(*tier); err != nil {
		return usagef("--promotion-tier: %v", err)
	}
	c, format, err := cf.connect()
	if err != nil {
		return err
	}
	var body api.ClusterBody
	if err := c.call("PATCH", "/v1/clusters/"+url.PathEscape(*name)+"/members/"+url.PathEscape(*id),
		cluster.ModifyMemberInput{PromotionTier: tier}, &body); err != nil {
		return err
	}
	return printCluster(stdout, format, body.DBCluster, true)
}
