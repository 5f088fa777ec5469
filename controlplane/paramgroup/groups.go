package paramgroup

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/borealisdb/borealis/controlplane/store"
)

// Group is DescribeDBClusterParameterGroups' shape.
type Group struct {
	DBClusterParameterGroupName string    `json:"DBClusterParameterGroupName"`
	DBParameterGroupFamily      string    `json:"DBParameterGroupFamily"`
	Description                 string    `json:"Description"`
	CreatedTime                 time.Time `json:"CreatedTime,omitzero"`
}

// Parameter is DescribeDBClusterParameters' shape.
type Parameter struct {
	ParameterName        string   `json:"ParameterName"`
	ParameterValue       string   `json:"ParameterValue,omitempty"`
	Description          string   `json:"Description"`
	Source               string   `json:"Source"` // engine-default, system or user
	ApplyType            string   `json:"ApplyType"`
	DataType             string   `json:"DataType"`
	AllowedValues        string   `json:"AllowedValues,omitempty"`
	IsModifiable         bool     `json:"IsModifiable"`
	Owner                string   `json:"Owner,omitempty"`
	ApplyMethod          string   `json:"ApplyMethod,omitempty"`
	MinimumEngineVersion string   `json:"MinimumEngineVersion"`
	SupportedEngineModes []string `json:"SupportedEngineModes"`
}

// Change is one parameter to set (ModifyDBClusterParameterGroup's Parameters).
type Change struct {
	ParameterName  string `json:"ParameterName"`
	ParameterValue string `json:"ParameterValue"`
}

// Typed failures, for the API's status codes.
var (
	ErrNotFound = store.ErrNotFound
	// ErrReadOnly: the default group cannot be changed or deleted.
	ErrReadOnly = errors.New("read-only")
)

// StateError is a request refused because of the group's state (read-only, in use, exists).
type StateError struct{ Message string }

func (e *StateError) Error() string { return e.Message }

var groupNameRE = regexp.MustCompile(`^[a-z][a-z0-9]*(-[a-z0-9]+)*$`)

// ValidateName checks a custom group name (Aurora's rules: a letter first, letters, digits and
// single hyphens, at most 255), lower-cased by the caller.
func ValidateName(name string) error {
	if name == "" {
		return invalid("", "a parameter group name is required")
	}
	if name == DefaultGroup {
		return nil
	}
	if len(name) > 255 || !groupNameRE.MatchString(name) {
		return invalid("", "parameter group name %q must be lower-case letters, digits and single hyphens, starting with a letter", name)
	}
	if strings.HasPrefix(name, "default") {
		return invalid("", "parameter group name %q: names starting with \"default\" are reserved", name)
	}
	return nil
}

// Groups is the parameter groups kept in the control plane's store.
type Groups struct{ Store *store.Store }

func toGroup(g store.ParameterGroup) Group {
	return Group{DBClusterParameterGroupName: g.Name, DBParameterGroupFamily: g.Family, Description: g.Description, CreatedTime: g.CreatedAt}
}

func defaultGroup() Group {
	return Group{DBClusterParameterGroupName: DefaultGroup, DBParameterGroupFamily: Family, Description: "Default cluster parameter group for " + Family}
}

// Create adds an empty custom group.
func (gs Groups) Create(name, family, description string) (Group, error) {
	if err := ValidateName(name); err != nil {
		return Group{}, err
	}
	if name == DefaultGroup {
		return Group{}, &StateError{fmt.Sprintf("parameter group %s already exists (it is the default group)", name)}
	}
	if family == "" {
		family = Family
	}
	if family != Family {
		return Group{}, invalid("", "unknown parameter group family %q: the only family is %s", family, Family)
	}
	if description == "" {
		description = name
	}
	g := store.ParameterGroup{Name: name, Family: family, Description: description, CreatedAt: time.Now().UTC(), Parameters: map[string]string{}}
	if err := gs.Store.CreateParamGroup(g); err != nil {
		var ex store.ErrExists
		if errors.As(err, &ex) {
			return Group{}, &StateError{err.Error()}
		}
		return Group{}, err
	}
	return toGroup(g), nil
}

// List returns the default group then the custom ones.
func (gs Groups) List() ([]Group, error) {
	stored, err := gs.Store.ParamGroups()
	if err != nil {
		return nil, err
	}
	out := []Group{defaultGroup()}
	for _, g := range stored {
		out = append(out, toGroup(g))
	}
	return out, nil
}

// Get returns one group, the default included.
func (gs Groups) Get(name string) (Group, error) {
	if name == DefaultGroup || name == "" {
		return defaultGroup(), nil
	}
	g, err := gs.Store.ParamGroup(name)
	if err != nil {
		return Group{}, err
	}
	return toGroup(g), nil
}

// UserValues are the values a group sets (none for the default group).
func (gs Groups) UserValues(name string) (map[string]string, error) {
	if name == DefaultGroup || name == "" {
		return map[string]string{}, nil
	}
	g, err := gs.Store.ParamGroup(name)
	if err != nil {
		return nil, err
	}
	return g.Parameters, nil
}

// Parameters lists every parameter with the value the group gives it; source filters
// ("user", "engine-default", "system") when not empty.
func (gs Groups) Parameters(name, source string) ([]Parameter, error) {
	user, err := gs.UserValues(name)
	if err != nil {
		return nil, err
	}
	switch source {
	case "", "user", "engine-default", "system":
	default:
		return nil, invalid("", "source %q: use user, engine-default or system", source)
	}
	var out []Parameter
	for _, p := range Catalog() {
		d := describe(p)
		if v, ok := user[p.Name]; ok {
			d.ParameterValue, d.Source = v, "user"
			d.ApplyMethod = "immediate"
			if p.ApplyType == Static {
				d.ApplyMethod = "pending-reboot"
			}
		}
		if source == "" || source == d.Source {
			out = append(out, d)
		}
	}
	return out, nil
}

// EngineDefaults lists the family's parameters as the default group has them.
func EngineDefaults() []Parameter {
	var out []Parameter
	for _, p := range Catalog() {
		out = append(out, describe(p))
	}
	return out
}

func describe(p Param) Parameter {
	d := Parameter{ParameterName: p.Name, ParameterValue: p.Default, Description: p.Description, Source: "engine-default",
		ApplyType: p.ApplyType, DataType: p.DataType, AllowedValues: p.AllowedValues(), IsModifiable: p.Modifiable(),
		Owner: p.Owner, MinimumEngineVersion: "15", SupportedEngineModes: []string{"serverless"}}
	if !p.Modifiable() {
		d.Source = "system"
		d.Description += " Not modifiable: " + p.Reason + "."
	}
	return d
}

// Modify sets parameters of a custom group: all are validated first, and any failure
// changes nothing. It returns the changes as stored (canonical values).
func (gs Groups) Modify(name string, changes []Change) ([]Change, error) {
	if name == DefaultGroup {
		return nil, &StateError{fmt.Sprintf("%s is the default parameter group and is read-only: create your own with `borealis parameter-group create` and set the cluster's --db-cluster-parameter-group-name", DefaultGroup)}
	}
	if len(changes) == 0 {
		return nil, invalid("", "no parameters to modify: give at least one name=value")
	}
	if len(changes) > 20 {
		return nil, invalid("", "%d parameters in one request: at most 20, as in Aurora", len(changes))
	}
	seen := map[string]bool{}
	canon := make([]Change, 0, len(changes))
	for _, c := range changes {
		v, err := Validate(c.ParameterName, c.ParameterValue)
		if err != nil {
			return nil, err
		}
		n := strings.ToLower(strings.TrimSpace(c.ParameterName))
		if seen[n] {
			return nil, invalid(n, "%s is given twice", n)
		}
		seen[n] = true
		canon = append(canon, Change{ParameterName: n, ParameterValue: v})
	}
	_, err := gs.Store.UpdateParamGroup(name, func(g *store.ParameterGroup) error {
		if g.Parameters == nil {
			g.Parameters = map[string]string{}
		}
		for _, c := range canon {
			g.Parameters[c.ParameterName] = c.ParameterValue
		}
		return nil
	})
	return canon, err
}

// Reset returns parameters of a custom group (all of them when names is empty) to the
// engine defaults; it returns the names reset.
func (gs Groups) Reset(name string, names []string, all bool) ([]string, error) {
	if name == DefaultGroup {
		return nil, &StateError{fmt.Sprintf("%s is the default parameter group and is read-only", DefaultGroup)}
	}
	if all == (len(names) > 0) {
		return nil, invalid("", "give either parameter names or ResetAllParameters, not both or neither")
	}
	for i, n := range names {
		n = strings.ToLower(strings.TrimSpace(n))
		p, ok := catalog[n]
		if !ok {
			return nil, invalid(n, "unknown parameter %q in family %s", n, Family)
		}
		if !p.Modifiable() {
			return nil, invalid(n, "%s is not modifiable: it %s (owner: %s)", n, p.Reason, p.Owner)
		}
		names[i] = n
	}
	var reset []string
	_, err := gs.Store.UpdateParamGroup(name, func(g *store.ParameterGroup) error {
		if all {
			for n := range g.Parameters {
				reset = append(reset, n)
			}
			g.Parameters = map[string]string{}
			return nil
		}
		for _, n := range names {
			if _, ok := g.Parameters[n]; ok {
				reset = append(reset, n)
				delete(g.Parameters, n)
			}
		}
		return nil
	})
	sort.Strings(reset)
	return reset, err
}

// Delete removes a custom group that no cluster uses.
func (gs Groups) Delete(name string) error {
	if name == DefaultGroup {
		return &StateError{fmt.Sprintf("%s is the default parameter group and cannot be deleted", DefaultGroup)}
	}
	err := gs.Store.DeleteParamGroup(name)
	var inUse store.ErrInUse
	if errors.As(err, &inUse) {
		return &StateError{err.Error()}
	}
	return err
}
