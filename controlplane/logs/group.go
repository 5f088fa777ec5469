package logs

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
)

// Log types a cluster can export, and the groups they go to.
const (
	TypeError      = "error"      // the error log: WARNING and above
	TypePostgreSQL = "postgresql" // the full PostgreSQL log
)

// LogTypes are the exportable log types.
var LogTypes = []string{TypeError, TypePostgreSQL}

// DefaultLogTypes are exported when a cluster does not say (the error log is on by default).
var DefaultLogTypes = []string{TypeError}

// GroupName is Aurora's naming of a cluster's log group.
func GroupName(cluster, typ string) string { return "/borealis/cluster/" + cluster + "/" + typ }

var groupNameRE = regexp.MustCompile(`^/borealis/cluster/([a-z][a-z0-9]*(?:-[a-z0-9]+)*)/(error|postgresql)$`)

// ParseGroupName returns the cluster and log type of a group name, or an error naming the form.
func ParseGroupName(name string) (cluster, typ string, err error) {
	m := groupNameRE.FindStringSubmatch(name)
	if m == nil {
		return "", "", fmt.Errorf("log group %q: names are /borealis/cluster/<cluster>/error or /borealis/cluster/<cluster>/postgresql", name)
	}
	return m[1], m[2], nil
}

// ValidateLogTypes checks a list of log types.
func ValidateLogTypes(types []string) error {
	for _, t := range types {
		if t != TypeError && t != TypePostgreSQL {
			return fmt.Errorf("unknown log type %q: use %s", t, strings.Join(LogTypes, " or "))
		}
	}
	return nil
}

// groupMeta is <group dir>/group.json.
type groupMeta struct {
	Name            string `json:"name"`
	CreationTime    int64  `json:"creation_time"`
	RetentionInDays int    `json:"retention_in_days,omitempty"` // 0: never expire
}

// Group is one log group: its streams, one per instance.
type Group struct {
	dir string

	mu      sync.Mutex
	meta    groupMeta
	streams map[string]*stream
	deleted bool
}

func groupDir(root, name string) string { return filepath.Join(root, strings.TrimPrefix(name, "/")) }

func writeMeta(dir string, m groupMeta) error {
	data, _ := json.Marshal(m)
	tmp := filepath.Join(dir, "group.json.tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	f, err := os.Open(tmp)
	if err == nil {
		f.Sync()
		f.Close()
	}
	if err := os.Rename(tmp, filepath.Join(dir, "group.json")); err != nil {
		return err
	}
	return syncDir(dir)
}

// openGroup opens a group directory, creating it (and its metadata) when create is set.
func openGroup(root, name string, create bool) (*Group, error) {
	dir := groupDir(root, name)
	g := &Group{dir: dir, streams: map[string]*stream{}}
	data, err := os.ReadFile(filepath.Join(dir, "group.json"))
	switch {
	case err == nil:
		if err := json.Unmarshal(data, &g.meta); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "group.json"), err)
		}
	case os.IsNotExist(err) && create:
		if err := os.MkdirAll(filepath.Join(dir, "streams"), 0o700); err != nil {
			return nil, err
		}
		g.meta = groupMeta{Name: name, CreationTime: time.Now().UnixMilli()}
		if err := writeMeta(dir, g.meta); err != nil {
			return nil, err
		}
	default:
		return nil, err
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "streams"))
	for _, e := range ents {
		if e.IsDir() {
			s, err := openStream(filepath.Join(dir, "streams", e.Name()), e.Name())
			if err != nil {
				return nil, err
			}
			g.streams[e.Name()] = s
		}
	}
	return g, nil
}

// Name is the group's name.
func (g *Group) Name() string { return g.meta.Name }

func (g *Group) stream(name string) (*stream, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if s, ok := g.streams[name]; ok {
		return s, nil
	}
	s, err := openStream(filepath.Join(g.dir, "streams", name), name)
	if err != nil {
		return nil, err
	}
	g.streams[name] = s
	return s, nil
}

func (g *Group) streamList() []*stream {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]*stream, 0, len(g.streams))
	for _, s := range g.streams {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// Description is DescribeLogGroups' shape.
type Description struct {
	LogGroupName    string `json:"logGroupName"`
	CreationTime    int64  `json:"creationTime"`
	RetentionInDays int    `json:"retentionInDays,omitempty"`
	StoredBytes     int64  `json:"storedBytes"`
	LogStreams      int    `json:"logStreams"`
}

func (g *Group) describe() Description {
	g.mu.Lock()
	meta := g.meta
	g.mu.Unlock()
	d := Description{LogGroupName: meta.Name, CreationTime: meta.CreationTime, RetentionInDays: meta.RetentionInDays}
	for _, s := range g.streamList() {
		n, _ := s.usage()
		d.StoredBytes += n
		d.LogStreams++
	}
	return d
}
