package cluster

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/borealisdb/borealis/controlplane/failover"
	"github.com/borealisdb/borealis/controlplane/store"
)

// FailoverInput are the failover settings of `cluster create`.
type FailoverInput struct {
	// PromotionTier is the readers' promotion tier (0-15, 0 promoted first); nil means 1.
	PromotionTier *int `json:"PromotionTier,omitempty"`
	// DurabilityMode is asynchronous (default) or synchronous.
	DurabilityMode string `json:"DurabilityMode,omitempty"`
	// FailoverGraceSeconds is how long a writer may fail its probes, or stay down after
	// exiting, before a reader is promoted (1-300; 0 means 10).
	FailoverGraceSeconds int `json:"FailoverGraceSeconds,omitempty"`
	// SynchronousFallbackSeconds is the synchronous-mode policy when no reader flushes
	// commits: 0 (default, strict) makes commits wait until a reader is back; N (1-3600) falls
	// back to asynchronous commits after they waited N seconds, with automatic promotion off
	// until a reader caught up (failover.SyncGuard).
	SynchronousFallbackSeconds int `json:"SynchronousFallbackSeconds,omitempty"`
}

func (in FailoverInput) readerTier() int {
	if in.PromotionTier == nil {
		return 1
	}
	return *in.PromotionTier
}

func (in FailoverInput) mode() string {
	if in.DurabilityMode == "" {
		return failover.Asynchronous
	}
	return in.DurabilityMode
}

func (in FailoverInput) validate(readers int) error {
	if in.PromotionTier != nil {
		if err := failover.ValidateTier(*in.PromotionTier); err != nil {
			return fieldErr("PromotionTier", "%v", err)
		}
	}
	if err := failover.ValidateMode(in.mode()); err != nil {
		return fieldErr("DurabilityMode", "%v", err)
	}
	if in.mode() == failover.Synchronous && readers == 0 {
		return fieldErr("DurabilityMode", "synchronous mode needs at least one reader (commits wait for a reader to flush them)")
	}
	if err := failover.ValidateSyncFallback(in.SynchronousFallbackSeconds); err != nil {
		return fieldErr("SynchronousFallbackSeconds", "%v", err)
	}
	return validateGrace(in.FailoverGraceSeconds, true)
}

func validateGrace(seconds int, zeroOK bool) error {
	if seconds == 0 && zeroOK {
		return nil
	}
	if d := time.Duration(seconds) * time.Second; d < failover.MinGrace || d > failover.MaxGrace {
		return fieldErr("FailoverGraceSeconds", "%d is out of range: use %d to %d", seconds,
			int(failover.MinGrace/time.Second), int(failover.MaxGrace/time.Second))
	}
	return nil
}

func durability(rec store.Cluster) string {
	if rec.Durability == "" {
		return failover.Asynchronous
	}
	return rec.Durability
}

func grace(rec store.Cluster) time.Duration {
	if rec.FailoverGraceSeconds == 0 {
		return failover.DefaultGrace
	}
	return time.Duration(rec.FailoverGraceSeconds) * time.Second
}

func (in ModifyInput) failoverChanged() bool {
	return in.DurabilityMode != nil || in.FailoverGraceSeconds != nil || in.SynchronousFallbackSeconds != nil
}

// modifyFailover applies the failover settings of in; only reports that in changes nothing
// else. The scaling part is validated first so a bad request changes nothing.
func (c *Cluster) modifyFailover(in ModifyInput) (only bool, err error) {
	if !in.failoverChanged() {
		return false, nil
	}
	c.mu.Lock()
	if in.scalingChanged() {
		if _, err := in.apply(c.rec.Scaling); err != nil {
			c.mu.Unlock()
			return false, err
		}
	}
	readers := 0
	for _, r := range c.rec.Members {
		if !r.Writer {
			readers++
		}
	}
	next := FailoverInput{DurabilityMode: durability(c.rec), FailoverGraceSeconds: c.rec.FailoverGraceSeconds,
		SynchronousFallbackSeconds: c.rec.SynchronousFallbackSeconds}
	if in.SynchronousFallbackSeconds != nil {
		next.SynchronousFallbackSeconds = *in.SynchronousFallbackSeconds
	}
	if in.DurabilityMode != nil {
		next.DurabilityMode = *in.DurabilityMode
	}
	if in.FailoverGraceSeconds != nil {
		if err := validateGrace(*in.FailoverGraceSeconds, false); err != nil {
			c.mu.Unlock()
			return false, err
		}
		next.FailoverGraceSeconds = *in.FailoverGraceSeconds
	}
	if err := next.validate(readers); err != nil {
		c.mu.Unlock()
		return false, err
	}
	c.rec.Durability, c.rec.FailoverGraceSeconds = next.DurabilityMode, next.FailoverGraceSeconds
	c.rec.SynchronousFallbackSeconds = next.SynchronousFallbackSeconds
	err = c.saveLocked()
	only = !in.scalingChanged()
	mode, g := durability(c.rec), grace(c.rec)
	policy := ""
	if mode == failover.Synchronous {
		policy = ", strict (commits wait for a reader)"
		if f := c.rec.SynchronousFallbackSeconds; f > 0 {
			policy = fmt.Sprintf(", falling back to asynchronous commits after %d s without a reader", f)
		}
	}
	c.mu.Unlock()
	if err != nil {
		return false, err
	}
	c.m.event(c.rec.Name, "", "cluster.modified", fmt.Sprintf("durability mode is now %s%s, failover grace period %s", mode, policy, g))
	c.kick()
	return only, nil
}

// ErrMemberNotFound is returned for a DB instance that is not a member of the cluster.
var ErrMemberNotFound = errors.New("not found")

// ModifyMemberInput changes one member (aws rds modify-db-instance).
type ModifyMemberInput struct {
	PromotionTier *int `json:"PromotionTier,omitempty"`
}

// ModifyMember changes a member's promotion tier.
func (m *Manager) ModifyMember(name, id string, in ModifyMemberInput) (Description, error) {
	if in.PromotionTier == nil {
		return Description{}, fieldErr("PromotionTier", "nothing to modify: give PromotionTier")
	}
	if err := failover.ValidateTier(*in.PromotionTier); err != nil {
		return Description{}, fieldErr("PromotionTier", "%v", err)
	}
	c, err := m.get(name)
	if err != nil {
		return Description{}, err
	}
	c.mu.Lock()
	r := c.memberRec(id)
	if r == nil {
		var ids []string
		for _, r := range c.rec.Members {
			ids = append(ids, r.ID)
		}
		c.mu.Unlock()
		return Description{}, fmt.Errorf("DB instance %q: %w in cluster %s (its members: %s)", id, ErrMemberNotFound, name, strings.Join(ids, ", "))
	}
	r.PromotionTier = *in.PromotionTier
	err = c.saveLocked()
	c.mu.Unlock()
	if err != nil {
		return Description{}, err
	}
	m.event(name, id, "member.modified", fmt.Sprintf("promotion tier of %s is now %d", id, *in.PromotionTier))
	return c.Describe(), nil
}
