package store

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

var bucketParamGroups = []byte("parameter_groups")

// ParameterGroup is a custom cluster parameter group (the default group is not stored).
type ParameterGroup struct {
	Name        string    `json:"name"`
	Family      string    `json:"family"`
	Description string    `json:"description"`
	CreatedAt   time.Time `json:"created_at"`
	// Parameters are the values set by the user, canonical, by name.
	Parameters map[string]string `json:"parameters"`
}

// ErrExists is returned when creating a record whose name is taken.
type ErrExists struct{ What string }

func (e ErrExists) Error() string { return e.What + " already exists" }

// ErrInUse is returned when deleting a parameter group that clusters use.
type ErrInUse struct {
	Group    string
	Clusters []string
}

func (e ErrInUse) Error() string {
	return fmt.Sprintf("parameter group %s is used by cluster(s) %v: move them to another group (`borealis cluster modify --db-cluster-parameter-group-name`) first", e.Group, e.Clusters)
}

// CreateParamGroup stores g only if no group of that name exists.
func (s *Store) CreateParamGroup(g ParameterGroup) error {
	data, err := json.Marshal(g)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketParamGroups)
		if err != nil {
			return err
		}
		if b.Get([]byte(g.Name)) != nil {
			return ErrExists{What: fmt.Sprintf("parameter group %q", g.Name)}
		}
		return b.Put([]byte(g.Name), data)
	})
}

// UpdateParamGroup changes a stored group in one transaction: f sees the current record and
// returns an error to change nothing.
func (s *Store) UpdateParamGroup(name string, f func(g *ParameterGroup) error) (ParameterGroup, error) {
	var g ParameterGroup
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketParamGroups)
		if err != nil {
			return err
		}
		data := b.Get([]byte(name))
		if data == nil {
			return fmt.Errorf("parameter group %q: %w", name, ErrNotFound)
		}
		if err := json.Unmarshal(data, &g); err != nil {
			return err
		}
		if err := f(&g); err != nil {
			return err
		}
		out, err := json.Marshal(g)
		if err != nil {
			return err
		}
		return b.Put([]byte(name), out)
	})
	return g, err
}

// ParamGroup returns one stored group, or ErrNotFound.
func (s *Store) ParamGroup(name string) (ParameterGroup, error) {
	var g ParameterGroup
	err := s.db.View(func(tx *bolt.Tx) error {
		var data []byte
		if b := tx.Bucket(bucketParamGroups); b != nil {
			data = b.Get([]byte(name))
		}
		if data == nil {
			return fmt.Errorf("parameter group %q: %w", name, ErrNotFound)
		}
		return json.Unmarshal(data, &g)
	})
	return g, err
}

// ParamGroups returns every stored group, by name.
func (s *Store) ParamGroups() ([]ParameterGroup, error) {
	var out []ParameterGroup
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketParamGroups)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var g ParameterGroup
			if err := json.Unmarshal(v, &g); err != nil {
				return fmt.Errorf("parameter group record %q: %w", k, err)
			}
			out = append(out, g)
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

// DeleteParamGroup removes a group, refusing (ErrInUse) while a stored cluster names it; the
// check and the delete are one transaction.
func (s *Store) DeleteParamGroup(name string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketParamGroups)
		if b == nil || b.Get([]byte(name)) == nil {
			return fmt.Errorf("parameter group %q: %w", name, ErrNotFound)
		}
		var users []string
		err := tx.Bucket(bucketClusters).ForEach(func(k, v []byte) error {
			var c Cluster
			if err := json.Unmarshal(v, &c); err != nil {
				return err
			}
			if c.ParameterGroup == name {
				users = append(users, c.Name)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(users) > 0 {
			return ErrInUse{Group: name, Clusters: users}
		}
		return b.Delete([]byte(name))
	})
}

// paramGroupExists is for checks inside another transaction: "" (the default) always exists.
func paramGroupExists(tx *bolt.Tx, name string) bool {
	if name == "" {
		return true
	}
	b := tx.Bucket(bucketParamGroups)
	return b != nil && b.Get([]byte(name)) != nil
}
