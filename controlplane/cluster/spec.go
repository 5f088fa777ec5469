package cluster

import (
	"fmt"
	"math"
	"regexp"

	"github.com/borealisdb/borealis/controlplane/store"
)

// Limits of the serverless configuration, as Aurora Serverless documents them.
const (
	MinACU                       = 0.5
	MaxACU                       = 128
	MaxReaders                   = 15
	DefaultMinCapacity           = 1
	DefaultMaxCapacity           = 8
	DefaultSecondsUntilAutoPause = 300
	DefaultSecondsBeforeTimeout  = 300
	RollbackCapacityChange       = "RollbackCapacityChange"
	ForceApplyCapacityChange     = "ForceApplyCapacityChange"
)

// FieldError is a request that is wrong in one named field.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// CreateInput is what `cluster create` asks for. Zero values take the defaults.
type CreateInput struct {
	Name                  string  `json:"Name"`
	Readers               int     `json:"Readers"`
	MinCapacity           float64 `json:"MinCapacity,omitempty"`
	MaxCapacity           float64 `json:"MaxCapacity,omitempty"`
	AutoPause             bool    `json:"AutoPause,omitempty"`
	SecondsUntilAutoPause int     `json:"SecondsUntilAutoPause,omitempty"`
	SecondsBeforeTimeout  int     `json:"SecondsBeforeTimeout,omitempty"`
	TimeoutAction         string  `json:"TimeoutAction,omitempty"`
	Port                  int     `json:"Port,omitempty"`
	ReaderPort            int     `json:"ReaderPort,omitempty"`
	// DBClusterParameterGroupName is the cluster parameter group; empty means the default.
	DBClusterParameterGroupName string `json:"DBClusterParameterGroupName,omitempty"`
	FailoverInput
	// EnableLogsExports are the log types published to log groups; nil means error only.
	EnableLogsExports []string `json:"EnableLogsExports,omitempty"`
	// The master user, its database and deletion protection (master.go).
	MasterUserInput
}

// ModifyInput changes a cluster's serverless configuration; nil fields stay as they are.
type ModifyInput struct {
	MinCapacity           *float64 `json:"MinCapacity,omitempty"`
	MaxCapacity           *float64 `json:"MaxCapacity,omitempty"`
	AutoPause             *bool    `json:"AutoPause,omitempty"`
	SecondsUntilAutoPause *int     `json:"SecondsUntilAutoPause,omitempty"`
	SecondsBeforeTimeout  *int     `json:"SecondsBeforeTimeout,omitempty"`
	TimeoutAction         *string  `json:"TimeoutAction,omitempty"`
	// DBClusterParameterGroupName moves the cluster to another parameter group.
	DBClusterParameterGroupName *string `json:"DBClusterParameterGroupName,omitempty"`
	// DurabilityMode and FailoverGraceSeconds: see FailoverInput.
	DurabilityMode       *string `json:"DurabilityMode,omitempty"`
	FailoverGraceSeconds *int    `json:"FailoverGraceSeconds,omitempty"`
	// SynchronousFallbackSeconds: see FailoverInput.
	SynchronousFallbackSeconds *int `json:"SynchronousFallbackSeconds,omitempty"`
	// LogsExportConfiguration turns log types' publishing on or off.
	LogsExportConfiguration *LogsExportConfiguration `json:"LogsExportConfiguration,omitempty"`
	// The master user's password and deletion protection (master.go).
	MasterUserModify
}

// LogsExportConfiguration is Aurora's CloudwatchLogsExportConfiguration.
type LogsExportConfiguration struct {
	EnableLogTypes  []string `json:"EnableLogTypes,omitempty"`
	DisableLogTypes []string `json:"DisableLogTypes,omitempty"`
}

// scalingChanged reports whether in changes the serverless configuration.
func (in ModifyInput) scalingChanged() bool {
	in.DBClusterParameterGroupName = nil
	in.DurabilityMode, in.FailoverGraceSeconds, in.SynchronousFallbackSeconds = nil, nil, nil
	in.LogsExportConfiguration = nil
	return in != (ModifyInput{})
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9]*(-[a-z0-9]+)*$`)

// ValidateName checks a cluster identifier: Aurora's rules (a letter first, then letters,
// digits and single hyphens, no trailing hyphen), lower case, at most 40 characters so paths
// and socket names stay short.
func ValidateName(name string) error {
	if name == "" {
		return fieldErr("Name", "is required")
	}
	if len(name) > 40 || !nameRE.MatchString(name) {
		return fieldErr("Name", "%q must be 1-40 lower-case letters, digits and single hyphens, starting with a letter", name)
	}
	return nil
}

// scaling turns the input into a validated configuration with defaults filled.
func (in CreateInput) scaling() (store.Scaling, error) {
	s := store.Scaling{MinCapacity: in.MinCapacity, MaxCapacity: in.MaxCapacity, AutoPause: in.AutoPause,
		SecondsUntilAutoPause: in.SecondsUntilAutoPause, SecondsBeforeTimeout: in.SecondsBeforeTimeout,
		TimeoutAction: in.TimeoutAction}
	if s.MinCapacity == 0 {
		s.MinCapacity = DefaultMinCapacity
	}
	if s.MaxCapacity == 0 {
		s.MaxCapacity = math.Max(DefaultMaxCapacity, s.MinCapacity)
	}
	if s.SecondsUntilAutoPause == 0 {
		s.SecondsUntilAutoPause = DefaultSecondsUntilAutoPause
	}
	if s.SecondsBeforeTimeout == 0 {
		s.SecondsBeforeTimeout = DefaultSecondsBeforeTimeout
	}
	if s.TimeoutAction == "" {
		s.TimeoutAction = RollbackCapacityChange
	}
	return s, validateScaling(s)
}

func validateScaling(s store.Scaling) error {
	for _, c := range []struct {
		field string
		v     float64
	}{{"MinCapacity", s.MinCapacity}, {"MaxCapacity", s.MaxCapacity}} {
		if c.v < MinACU || c.v > MaxACU || math.Mod(c.v*2, 1) != 0 {
			return fieldErr(c.field, "%g ACU is not allowed: use a multiple of 0.5 from %g to %d", c.v, MinACU, MaxACU)
		}
	}
	if s.MinCapacity > s.MaxCapacity {
		return fieldErr("MinCapacity", "%g ACU is above MaxCapacity (%g ACU)", s.MinCapacity, s.MaxCapacity)
	}
	if floor := AutoPauseFloorSeconds(); s.SecondsUntilAutoPause < floor || s.SecondsUntilAutoPause > 86400 {
		if v := s.SecondsUntilAutoPause; v >= 1 && v < floor {
			// A user following the README's demo set the floor for the CLI but not for the
			// control plane, which is the one that decides: say so.
			return fieldErr("SecondsUntilAutoPause", "%d is out of range: use %d to 86400 (for tests and demos, a control plane started with %s=%d accepts %d)",
				v, floor, AutoPauseFloorEnv, v, v)
		}
		return fieldErr("SecondsUntilAutoPause", "%d is out of range: use %d to 86400", s.SecondsUntilAutoPause, floor)
	}
	if s.SecondsBeforeTimeout < 60 || s.SecondsBeforeTimeout > 600 {
		return fieldErr("SecondsBeforeTimeout", "%d is out of range: use 60 to 600", s.SecondsBeforeTimeout)
	}
	if s.TimeoutAction != RollbackCapacityChange && s.TimeoutAction != ForceApplyCapacityChange {
		return fieldErr("TimeoutAction", "%q is not one of %s, %s", s.TimeoutAction, RollbackCapacityChange, ForceApplyCapacityChange)
	}
	return nil
}

// Validate checks everything but the ports' availability.
func (in CreateInput) Validate() error {
	if err := ValidateName(in.Name); err != nil {
		return err
	}
	if err := in.MasterUserInput.validate(); err != nil {
		return err
	}
	if in.Readers < 0 || in.Readers > MaxReaders {
		return fieldErr("Readers", "%d is out of range: use 0 to %d", in.Readers, MaxReaders)
	}
	for _, p := range []struct {
		field string
		v     int
	}{{"Port", in.Port}, {"ReaderPort", in.ReaderPort}} {
		if p.v < 0 || p.v > 65535 || (p.v > 0 && p.v < 1024) {
			return fieldErr(p.field, "%d is not a usable port: use 1024-65535, or 0 to pick a free one", p.v)
		}
	}
	if in.Port != 0 && in.Port == in.ReaderPort {
		return fieldErr("ReaderPort", "%d is also the cluster endpoint's port", in.ReaderPort)
	}
	if err := in.FailoverInput.validate(in.Readers); err != nil {
		return err
	}
	if err := validateLogTypes("EnableLogsExports", in.EnableLogsExports); err != nil {
		return err
	}
	_, err := in.scaling()
	return err
}

// apply returns s changed by in, validated.
func (in ModifyInput) apply(s store.Scaling) (store.Scaling, error) {
	if !in.scalingChanged() {
		return s, fieldErr("ScalingConfiguration", "nothing to modify: give at least one setting")
	}
	if in.MinCapacity != nil {
		s.MinCapacity = *in.MinCapacity
	}
	if in.MaxCapacity != nil {
		s.MaxCapacity = *in.MaxCapacity
	}
	if in.AutoPause != nil {
		s.AutoPause = *in.AutoPause
	}
	if in.SecondsUntilAutoPause != nil {
		s.SecondsUntilAutoPause = *in.SecondsUntilAutoPause
	}
	if in.SecondsBeforeTimeout != nil {
		s.SecondsBeforeTimeout = *in.SecondsBeforeTimeout
	}
	if in.TimeoutAction != nil {
		s.TimeoutAction = *in.TimeoutAction
	}
	return s, validateScaling(s)
}
