package store

import "time"

// Cluster is the persisted definition of one cluster.
type Cluster struct {
	Name string `json:"name"`
	// Rev is the record's revision, bumped by each write (the record journal keeps the newest).
	Rev       uint64    `json:"rev,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// Status is the cluster's last recorded status (creating, available, failed, deleting).
	Status string `json:"status"`
	// Port and ReaderPort are the cluster (writer) endpoint and the reader endpoint, on 127.0.0.1.
	Port       int     `json:"port"`
	ReaderPort int     `json:"reader_port"`
	Scaling    Scaling `json:"scaling"`
	// ParameterGroup is the cluster parameter group's name; empty means the default group.
	ParameterGroup string `json:"parameter_group,omitempty"`
	// LogExports are the log types published to log groups (error, postgresql); nil means the
	// default (error only), empty means none.
	LogExports []string `json:"log_exports"`
	// MasterUsername is the clients' login role (not a superuser); MasterUserVerifier its
	// SCRAM-SHA-256 verifier (the password itself is never stored); MasterUserSecretFile the
	// 0600 file holding a managed password. DatabaseName is the database made for it.
	MasterUsername       string `json:"master_username,omitempty"`
	MasterUserVerifier   string `json:"master_user_verifier,omitempty"`
	MasterUserSecretFile string `json:"master_user_secret_file,omitempty"`
	DatabaseName         string `json:"database_name,omitempty"`
	DeletionProtection   bool   `json:"deletion_protection,omitempty"`
	// NextMember numbers members; ids are never reused within a cluster.
	NextMember int      `json:"next_member"`
	Members    []Member `json:"members"`
	// Paused is set while auto-pause has stopped the nodes (a client connection resumes it);
	// Stopped while stopped by the user (start-db-cluster starts it). Both survive a restart
	// of the control plane.
	Paused  bool `json:"paused,omitempty"`
	Stopped bool `json:"stopped,omitempty"`
	// Durability is "asynchronous" (empty in older records) or "synchronous".
	Durability string `json:"durability,omitempty"`
	// FailoverGraceSeconds is how long a writer may fail before a reader is promoted; 0 means
	// the default.
	FailoverGraceSeconds int `json:"failover_grace_seconds,omitempty"`
	// SynchronousFallbackSeconds: in synchronous mode, how long commits may wait for a reader
	// before the writer falls back to asynchronous commits; 0 means never (strict).
	SynchronousFallbackSeconds int `json:"synchronous_fallback_seconds,omitempty"`
	// SyncDegradedAt is set while a synchronous cluster runs degraded to asynchronous commits
	// (or is catching up after it): no reader is promoted automatically meanwhile.
	SyncDegradedAt *time.Time `json:"sync_degraded_at,omitempty"`
}

// Scaling is the serverless configuration, validated and stored now, acted on by later issues.
type Scaling struct {
	MinCapacity           float64 `json:"min_capacity"`
	MaxCapacity           float64 `json:"max_capacity"`
	AutoPause             bool    `json:"auto_pause"`
	SecondsUntilAutoPause int     `json:"seconds_until_auto_pause"`
	SecondsBeforeTimeout  int     `json:"seconds_before_timeout"`
	TimeoutAction         string  `json:"timeout_action"`
}

// Member is one node of a cluster.
type Member struct {
	ID            string  `json:"id"`
	Writer        bool    `json:"writer"`
	PromotionTier int     `json:"promotion_tier"`
	Status        string  `json:"status"`
	Capacity      float64 `json:"capacity"`
	Port          int     `json:"port"`
	DataDir       string  `json:"data_dir"`
	// Created is set once the data directory is complete (initdb and extension, or base
	// backup); a member without it is rebuilt from scratch after a restart.
	Created bool `json:"created"`
	// Fenced is set, before any promotion is announced, on a writer that was failed over: its
	// processes are killed and its data may never again run as a writer. It is cleared once the
	// member has rejoined as a reader of the new timeline.
	Fenced bool `json:"fenced,omitempty"`
}

// Event is one entry of the event log.
type Event struct {
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Cluster string    `json:"cluster,omitempty"`
	Member  string    `json:"member,omitempty"`
	Type    string    `json:"type"`
	Message string    `json:"message"`
}
