package router

// pg_hba for logins the router authenticates itself (auth.go). A pooled session never meets
// the node's pg_hba, so the router applies it: it reads the node's rules (pg_hba_file_rules,
// at most once a second per node) and authenticates a login itself only when the first rule
// that matches the connection the relayed path would make — the router's own connection to
// the node — says scram-sha-256 (or md5, which PostgreSQL runs as SCRAM for a role whose
// password is a SCRAM verifier). Any other method (trust, reject, password, cert, ...), no
// matching rule, or a rule before the match that cannot be judged here (a host name, samerole,
// +group, a line in error) hands the login to a backend, which applies pg_hba itself.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// hbaCacheFor bounds how stale the router's copy of a node's pg_hba rules may be: an edit of
// pg_hba.conf (and its reload) reaches pooled logins within this time.
const hbaCacheFor = time.Second

// hbaRule is one row of pg_hba_file_rules (PostgreSQL 15).
type hbaRule struct {
	Type     string   `json:"type"`
	Database []string `json:"database"`
	User     []string `json:"user_name"`
	Address  string   `json:"address"`
	Netmask  string   `json:"netmask"`
	Method   string   `json:"auth_method"`
	Error    string   `json:"error"`
}

const hbaSQL = `SELECT COALESCE(pg_catalog.json_agg(pg_catalog.json_build_object('type', type, 'database', database,
  'user_name', user_name, 'address', address, 'netmask', netmask, 'auth_method', auth_method, 'error', error)
  ORDER BY line_number), '[]') FROM pg_catalog.pg_hba_file_rules`

func queryHBA(ctx context.Context, conn *pgconn.PgConn) ([]hbaRule, error) {
	res := conn.ExecParams(ctx, hbaSQL, nil, nil, nil, nil).Read()
	if res.Err != nil {
		return nil, res.Err
	}
	if len(res.Rows) != 1 || len(res.Rows[0]) != 1 {
		return nil, fmt.Errorf("pg_hba_file_rules returned %d rows", len(res.Rows))
	}
	var rules []hbaRule
	if err := json.Unmarshal(res.Rows[0][0], &rules); err != nil {
		return nil, fmt.Errorf("decoding pg_hba_file_rules: %w", err)
	}
	return rules, nil
}

// hbaMethod returns the method of the first rule matching a non-replication login of user to
// db arriving as the router's connection to addr arrives at the node: over the Unix socket
// (local) when addr is a path, else over TCP without SSL or GSS encryption from the loopback
// address of addr's family. ok is false when that cannot be decided here.
func hbaMethod(rules []hbaRule, addr, user, db string) (method string, ok bool) {
	local := strings.HasPrefix(addr, "/")
	var from net.IP
	if !local {
		host, _, err := net.SplitHostPort(addr)
		ip := net.ParseIP(host)
		switch {
		case err != nil || ip == nil || !ip.IsLoopback():
			return "", false // the source address the node sees is not known here
		case ip.To4() != nil:
			from = net.IPv4(127, 0, 0, 1)
		default:
			from = net.IPv6loopback
		}
	}
	for _, rule := range rules {
		if rule.Error != "" {
			return "", false
		}
		switch rule.Type {
		case "local":
			if !local {
				continue
			}
		case "host", "hostnossl", "hostnogssenc":
			if local {
				continue
			}
			match, known := hbaAddressMatches(rule, from)
			if !known {
				return "", false
			}
			if !match {
				continue
			}
		default: // hostssl, hostgssenc: the router's connection to the node is neither
			continue
		}
		match, known := hbaListMatches(rule.Database, db, user, true)
		if !known {
			return "", false
		}
		if !match {
			continue
		}
		if match, known = hbaListMatches(rule.User, user, user, false); !known {
			return "", false
		}
		if match {
			return rule.Method, true
		}
	}
	return "", true // no rule: the backend refuses the login
}

// hbaAddressMatches checks a host rule's address against from; known is false for a host name.
func hbaAddressMatches(rule hbaRule, from net.IP) (match, known bool) {
	switch rule.Address {
	case "all", "samehost", "samenet": // loopback is the host's own address and network
		return true, true
	}
	ip, mask := net.ParseIP(rule.Address), net.ParseIP(rule.Netmask)
	if ip == nil {
		return false, false
	}
	if (ip.To4() == nil) != (from.To4() == nil) {
		return false, true // PostgreSQL matches addresses of the client's family only
	}
	if mask == nil {
		return false, false
	}
	if v4 := ip.To4(); v4 != nil {
		ip, mask, from = v4, mask.To4(), from.To4()
		if mask == nil {
			return false, false
		}
	} else {
		ip, mask, from = ip.To16(), mask.To16(), from.To16()
	}
	for i := range ip {
		if ip[i]&mask[i] != from[i]&mask[i] {
			return false, true
		}
	}
	return true, true
}

// hbaListMatches checks a rule's database (isDB) or user list; known is false for what needs
// role membership (samerole, +group) or a file.
func hbaListMatches(list []string, name, user string, isDB bool) (match, known bool) {
	for _, item := range list {
		switch {
		case item == "all":
			return true, true
		case isDB && item == "sameuser":
			if name == user {
				return true, true
			}
		case isDB && (item == "samerole" || item == "samegroup"):
			return false, false
		case isDB && item == "replication":
			// matches replication connections only, which the router never authenticates
		case strings.HasPrefix(item, "+") || strings.HasPrefix(item, "@"):
			return false, false
		case item == name:
			return true, true
		}
	}
	return false, true
}
