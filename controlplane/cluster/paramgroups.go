package cluster

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/borealisdb/borealis/controlplane/paramgroup"
)

// Parameter groups on running nodes.
//
// A cluster's nodes carry every modifiable parameter of its group, and the fixed logging
// rules, in postgresql.auto.conf (ALTER SYSTEM over the control plane's own connection), so a
// reader's base backup inherits them and a restart keeps them. The cluster's paramGen counts
// changes to what its nodes must carry; the run goroutine brings each available member to the
// current generation: ALTER SYSTEM, pg_reload_conf(), then a wait until pg_settings shows each
// dynamic value. A static one pending is applied by a forced capacity change at the member's
// current capacity (the scaling machinery's restart, with session moves), and the member reaches
// the generation after it. A paused cluster is resumed first; a stopped member is brought up to
// date when it runs again.

// ParamGroups is the store of parameter groups.
func (m *Manager) ParamGroups() paramgroup.Groups { return paramgroup.Groups{Store: m.opts.Store} }

// ModifyParamGroup sets parameters of a custom group and applies them to every cluster using it.
func (m *Manager) ModifyParamGroup(name string, changes []paramgroup.Change) ([]paramgroup.Change, error) {
	done, err := m.ParamGroups().Modify(name, changes)
	if err != nil {
		return nil, err
	}
	parts := make([]string, len(done))
	for i, c := range done {
		parts[i] = c.ParameterName + "=" + c.ParameterValue
	}
	m.event("", "", "parameter-group.modified", fmt.Sprintf("parameter group %s: set %s", name, strings.Join(parts, ", ")))
	m.paramGroupChanged(name)
	return done, nil
}

// ResetParamGroup returns parameters of a custom group to the defaults and applies that.
func (m *Manager) ResetParamGroup(name string, names []string, all bool) ([]string, error) {
	reset, err := m.ParamGroups().Reset(name, names, all)
	if err != nil {
		return nil, err
	}
	m.event("", "", "parameter-group.reset", fmt.Sprintf("parameter group %s: reset %s to the engine defaults", name, orNone(reset)))
	m.paramGroupChanged(name)
	return reset, nil
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "nothing (no parameter was set)"
	}
	return strings.Join(names, ", ")
}

// paramGroupChanged makes every cluster using group apply it again.
func (m *Manager) paramGroupChanged(group string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.clusters {
		c.mu.Lock()
		uses := c.rec.ParameterGroup == group
		c.mu.Unlock()
		if uses {
			c.paramGen.Add(1)
			m.event(c.rec.Name, "", "cluster.parameters-pending", fmt.Sprintf("applying parameter group %s to cluster %s", group, c.rec.Name))
			c.resumeForParams()
		}
	}
}

// setParamGroup moves a cluster to another group (empty or the default's name: the default).
func (c *Cluster) setParamGroup(group string) error {
	if group == paramgroup.DefaultGroup {
		group = ""
	}
	if group != "" {
		if _, err := c.m.opts.Store.ParamGroup(group); err != nil {
			return fieldErr("DBClusterParameterGroupName", "parameter group %q does not exist (create it with `borealis parameter-group create`)", group)
		}
	}
	c.mu.Lock()
	if c.rec.ParameterGroup == group {
		c.mu.Unlock()
		return nil
	}
	c.rec.ParameterGroup = group
	err := c.saveLocked()
	c.mu.Unlock()
	if err != nil {
		return err
	}
	c.paramGen.Add(1)
	c.m.event(c.rec.Name, "", "cluster.parameter-group-changed", fmt.Sprintf("cluster %s now uses parameter group %s", c.rec.Name, groupName(group)))
	c.resumeForParams()
	return nil
}

// resumeForParams resumes a paused cluster so the change applies now, as the seed says a
// parameter group change does. A stopped cluster applies it when started.
func (c *Cluster) resumeForParams() {
	if paused, _ := c.flags(); paused {
		c.m.event(c.rec.Name, "", "cluster.resuming-for-parameters", fmt.Sprintf("resuming cluster %s to apply its parameter group", c.rec.Name))
		c.requestResume()
	}
}

func groupName(g string) string {
	if g == "" {
		return paramgroup.DefaultGroup
	}
	return g
}

// ParameterGroup is the name of the cluster's parameter group.
func (c *Cluster) ParameterGroup() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return groupName(c.rec.ParameterGroup)
}

// syncParams brings the member's node to the cluster's parameter generation (run goroutine).
func (mb *member) syncParams() {
	if mb.node == nil || !mb.node.Running() || mb.status() != StatusAvailable {
		return
	}
	gen := mb.c.paramGen.Load()
	if mb.paramsApplied.Load() == gen || time.Now().Before(mb.paramsNextTry) {
		return
	}
	if mb.pending != nil {
		return // a capacity change's restart is coming: look again after it
	}
	group := mb.c.ParameterGroup()
	done, err := mb.applyParams(group)
	if err != nil {
		if mb.c.ctx.Err() != nil {
			return
		}
		mb.paramsNextTry = time.Now().Add(5 * time.Second)
		mb.event("member.parameters-failed", "applying parameter group %s to %s: %v (retrying in 5s)", group, mb.id, err)
		return
	}
	if done {
		mb.paramsApplied.Store(gen)
	}
}

type settingState struct {
	setting        string
	pendingRestart bool
}

func readSettings(ctx context.Context, conn *pgx.Conn, names []string) (map[string]settingState, error) {
	rows, err := conn.Query(ctx, "SELECT name, setting, pending_restart FROM pg_settings WHERE name = ANY($1)", names)
	if err != nil {
		return nil, err
	}
	out := map[string]settingState{}
	for rows.Next() {
		var n string
		var s settingState
		if err := rows.Scan(&n, &s.setting, &s.pendingRestart); err != nil {
			rows.Close()
			return nil, err
		}
		out[n] = s
	}
	rows.Close()
	return out, rows.Err()
}

// applyParams writes the group's values with ALTER SYSTEM and reloads; done is false when
// static parameters wait for the forced capacity change it started.
func (mb *member) applyParams(group string) (done bool, err error) {
	user, err := mb.c.m.ParamGroups().UserValues(group)
	if err != nil {
		return false, err
	}
	want := paramgroup.Effective(user)
	for k, v := range paramgroup.FixedLogging() {
		want[k] = v
	}
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	ctx, cancel := context.WithTimeout(mb.c.ctx, 60*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, mb.node.DSN("postgres"))
	if err != nil {
		return false, err
	}
	defer conn.Close(context.Background())
	before, err := readSettings(ctx, conn, names)
	if err != nil {
		return false, err
	}
	for _, n := range names {
		// Names come from the catalogue; values are validated, and quoted as a literal.
		if _, err := conn.Exec(ctx, fmt.Sprintf("ALTER SYSTEM SET %s = '%s'", n, strings.ReplaceAll(want[n], "'", "''"))); err != nil {
			return false, fmt.Errorf("ALTER SYSTEM SET %s: %w", n, err)
		}
	}
	if _, err := conn.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		return false, err
	}
	// The reload is asynchronous: wait until this backend sees every dynamic value.
	var after map[string]settingState
	var static []string
	for {
		if after, err = readSettings(ctx, conn, names); err != nil {
			return false, err
		}
		static = static[:0]
		settled := true
		for _, n := range names {
			p, _ := paramgroup.Lookup(n)
			if after[n].setting == want[n] {
				continue
			}
			if p.ApplyType == paramgroup.Static {
				if after[n].pendingRestart {
					static = append(static, n)
					continue
				}
			}
			settled = false
		}
		if settled {
			break
		}
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("the node did not take the new settings after a reload: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	var applied []string
	for _, n := range names {
		if before[n].setting != want[n] && !contains(static, n) {
			applied = append(applied, fmt.Sprintf("%s=%s (dynamic, reloaded)", n, want[n]))
		}
	}
	if len(applied) > 0 {
		// This backend sees the values, so the postmaster has reloaded and is signalling the
		// others; it forks a new backend only once every older one is signalled (reloadOn), so
		// after that, any session's next command sees them too, as the event says.
		extra, err := pgx.Connect(ctx, mb.node.DSN("postgres"))
		if err != nil {
			return false, err
		}
		extra.Close(context.Background())
		mb.event("member.parameters-applied", "applied parameter group %s to %s: %s", group, mb.id, strings.Join(applied, ", "))
	}
	if len(static) == 0 {
		return true, nil
	}
	conn.Close(context.Background())
	var parts []string
	for _, n := range static {
		parts = append(parts, fmt.Sprintf("%s=%s", n, want[n]))
	}
	mb.forceCapacityChangeForParams(group, parts)
	return false, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// forceCapacityChangeForParams applies static parameters (already in postgresql.auto.conf)
// through the scaling machinery, as Aurora applies a parameter group change: a capacity change
// to the member's current capacity that needs a restart, whose timeout action is always
// ForceApplyCapacityChange. It looks for a scaling point like any other (the router parks
// idle sessions at a transaction boundary and moves them to the restarted node); at the
// cluster's SecondsBeforeTimeout it forces the restart, ending sessions still in a
// transaction with a retryable error. The change's end reports the parameters it applied.
func (mb *member) forceCapacityChangeForParams(group string, params []string) {
	rec := mb.record()
	mb.c.mu.Lock()
	timeout := time.Duration(mb.c.rec.Scaling.SecondsBeforeTimeout) * time.Second
	mb.c.mu.Unlock()
	if o := mb.c.m.opts.ScalingTimeout; o > 0 {
		timeout = o
	}
	now := time.Now()
	acu := fmtACU(rec.Capacity)
	mb.event("capacity.scaling", "Scaling DB cluster from %s capacity units to %s capacity units for this reason: a forced capacity change applies static parameters of parameter group %s on %s: %s",
		acu, acu, group, mb.id, strings.Join(params, ", "))
	mb.pending = &capacityChange{from: rec.Capacity, to: rec.Capacity, reason: "parameter group " + group, started: now,
		deadline: now.Add(timeout), timeout: timeout, timeoutAction: ForceApplyCapacityChange,
		restartFor: params, paramGroup: group, params: params}
	mb.scaleMu.Lock()
	mb.pendingView = mb.pending
	mb.scaleMu.Unlock()
	mb.event("capacity.waiting", "%s needs a restart for static parameters of group %s (%s): looking for a scaling point for up to %s, then %s",
		mb.id, group, strings.Join(params, ", "), timeout, ForceApplyCapacityChange)
	mb.progress(mb.record())
}

// paramsAppliedByRestart reports the static parameters a capacity change's restart applied.
func (mb *member) paramsAppliedByRestart(p *capacityChange, result string) {
	if len(p.params) == 0 {
		return
	}
	how := "at a scaling point"
	if result == ResultForced {
		how = "forced after " + p.timeout.String() + " without a scaling point"
	}
	parts := make([]string, len(p.params))
	for i, s := range p.params {
		parts[i] = s + " (static, forced capacity change at " + fmtACU(p.to) + " ACU, " + how + ")"
	}
	mb.event("member.parameters-applied", "applied parameter group %s to %s: %s", p.paramGroup, mb.id, strings.Join(parts, ", "))
}

// paramsSettled is for tests: whether every member carries the current generation.
func (c *Cluster) paramsSettled() bool {
	gen := c.paramGen.Load()
	for _, mb := range c.members {
		if mb.paramsApplied.Load() != gen {
			return false
		}
	}
	return true
}

// DeleteParamGroup deletes a custom group that no cluster uses.
func (m *Manager) DeleteParamGroup(name string) error {
	if err := m.ParamGroups().Delete(name); err != nil {
		return err
	}
	m.event("", "", "parameter-group.deleted", "deleted parameter group "+name)
	return nil
}
