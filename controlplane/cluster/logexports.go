package cluster

import (
	"fmt"
	"sort"
	"strings"

	"github.com/borealisdb/borealis/controlplane/logs"
)

// Which log types a cluster publishes to log groups. The logs service reads this from the
// cluster's record; the nodes always write every line (logging_collector, jsonlog).

func validateLogTypes(field string, types []string) error {
	if err := logs.ValidateLogTypes(types); err != nil {
		return fieldErr(field, "%v", err)
	}
	return nil
}

// enabledLogTypes is the record's list with the default filled in, sorted.
func enabledLogTypes(rec []string) []string {
	if rec == nil {
		return append([]string(nil), logs.DefaultLogTypes...)
	}
	out := append([]string{}, rec...)
	sort.Strings(out)
	return out
}

// setLogExports applies a LogsExportConfiguration; it validates before changing anything.
func (c *Cluster) setLogExports(cfg LogsExportConfiguration) error {
	if len(cfg.EnableLogTypes) == 0 && len(cfg.DisableLogTypes) == 0 {
		return fieldErr("LogsExportConfiguration", "give EnableLogTypes or DisableLogTypes")
	}
	if err := validateLogTypes("LogsExportConfiguration", append(append([]string{}, cfg.EnableLogTypes...), cfg.DisableLogTypes...)); err != nil {
		return err
	}
	for _, e := range cfg.EnableLogTypes {
		for _, d := range cfg.DisableLogTypes {
			if e == d {
				return fieldErr("LogsExportConfiguration", "%s is both enabled and disabled", e)
			}
		}
	}
	c.mu.Lock()
	set := map[string]bool{}
	for _, t := range enabledLogTypes(c.rec.LogExports) {
		set[t] = true
	}
	for _, t := range cfg.EnableLogTypes {
		set[t] = true
	}
	for _, t := range cfg.DisableLogTypes {
		delete(set, t)
	}
	types := []string{}
	for t := range set {
		types = append(types, t)
	}
	sort.Strings(types)
	c.rec.LogExports = types
	err := c.saveLocked()
	c.mu.Unlock()
	if err != nil {
		return err
	}
	c.m.event(c.rec.Name, "", "cluster.log-exports-changed", fmt.Sprintf("cluster %s publishes log types: %s", c.rec.Name, orNoneList(types)))
	return nil
}

func orNoneList(types []string) string {
	if len(types) == 0 {
		return "none"
	}
	return strings.Join(types, ", ")
}
