package router

import "testing"

func TestHBAMethod(t *testing.T) {
	const tcp, unix = "127.0.0.1:5432", "/tmp/dir/.s.PGSQL.5432"
	initdb := []hbaRule{ // what `initdb --auth-local=trust --auth-host=scram-sha-256` writes
		{Type: "local", Database: []string{"all"}, User: []string{"all"}, Method: "trust"},
		{Type: "host", Database: []string{"all"}, User: []string{"all"}, Address: "127.0.0.1", Netmask: "255.255.255.255", Method: "scram-sha-256"},
		{Type: "host", Database: []string{"all"}, User: []string{"all"}, Address: "::1", Netmask: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Method: "scram-sha-256"},
		{Type: "local", Database: []string{"replication"}, User: []string{"all"}, Method: "trust"},
		{Type: "host", Database: []string{"replication"}, User: []string{"all"}, Address: "127.0.0.1", Netmask: "255.255.255.255", Method: "scram-sha-256"},
	}
	with := func(first ...hbaRule) []hbaRule { return append(first, initdb...) }
	for _, tc := range []struct {
		name       string
		rules      []hbaRule
		addr, user string
		db         string
		method     string
		known      bool
	}{
		{"initdb's rules over TCP", initdb, tcp, "alice", "app", "scram-sha-256", true},
		{"initdb's rules over ::1", initdb, "[::1]:5432", "alice", "app", "scram-sha-256", true},
		{"initdb's rules over the socket", initdb, unix, "alice", "app", "trust", true},
		{"a role rejected first", with(hbaRule{Type: "host", Database: []string{"all"}, User: []string{"bob"}, Address: "all", Method: "reject"}), tcp, "bob", "app", "reject", true},
		{"another role is not", with(hbaRule{Type: "host", Database: []string{"all"}, User: []string{"bob"}, Address: "all", Method: "reject"}), tcp, "alice", "app", "scram-sha-256", true},
		{"trust for one database", with(hbaRule{Type: "hostnossl", Database: []string{"dev", "app"}, User: []string{"all"}, Address: "127.0.0.0", Netmask: "255.0.0.0", Method: "trust"}), tcp, "alice", "app", "trust", true},
		{"a network the router is not in", with(hbaRule{Type: "host", Database: []string{"all"}, User: []string{"all"}, Address: "10.0.0.0", Netmask: "255.0.0.0", Method: "trust"}), tcp, "alice", "app", "scram-sha-256", true},
		{"an IPv6 rule for an IPv4 client", with(hbaRule{Type: "host", Database: []string{"all"}, User: []string{"all"}, Address: "::", Netmask: "::", Method: "trust"}), tcp, "alice", "app", "scram-sha-256", true},
		{"hostssl never matches", with(hbaRule{Type: "hostssl", Database: []string{"all"}, User: []string{"all"}, Address: "all", Method: "trust"}), tcp, "alice", "app", "scram-sha-256", true},
		{"sameuser", with(hbaRule{Type: "host", Database: []string{"sameuser"}, User: []string{"all"}, Address: "samehost", Method: "md5"}), tcp, "alice", "alice", "md5", true},
		{"sameuser, other database", with(hbaRule{Type: "host", Database: []string{"sameuser"}, User: []string{"all"}, Address: "samehost", Method: "md5"}), tcp, "alice", "app", "scram-sha-256", true},
		{"replication rules skip normal logins", []hbaRule{initdb[4], initdb[1]}, tcp, "alice", "replication", "scram-sha-256", true},
		{"a host name", with(hbaRule{Type: "host", Database: []string{"all"}, User: []string{"all"}, Address: "localhost", Method: "trust"}), tcp, "alice", "app", "", false},
		{"a group", with(hbaRule{Type: "host", Database: []string{"all"}, User: []string{"+admins"}, Address: "all", Method: "trust"}), tcp, "alice", "app", "", false},
		{"samerole", with(hbaRule{Type: "host", Database: []string{"samerole"}, User: []string{"all"}, Address: "all", Method: "trust"}), tcp, "alice", "app", "", false},
		{"a line in error", with(hbaRule{Type: "host", Error: "invalid authentication method"}), tcp, "alice", "app", "", false},
		{"a backend that is not on loopback", initdb, "192.0.2.1:5432", "alice", "app", "", false},
		{"no rule", initdb[:1], tcp, "alice", "app", "", true},
	} {
		method, known := hbaMethod(tc.rules, tc.addr, tc.user, tc.db)
		if method != tc.method || known != tc.known {
			t.Errorf("%s: got %q known=%v, want %q known=%v", tc.name, method, known, tc.method, tc.known)
		}
	}
}
