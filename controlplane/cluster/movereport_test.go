package cluster

import (
	"testing"

	"github.com/borealisdb/borealis/controlplane/router"
)

func TestMovedMessage(t *testing.T) {
	for _, c := range []struct {
		rep  router.MoveReport
		want string
	}{
		{router.MoveReport{Moved: 3}, "3 session(s) moved to the restarted node"},
		{router.MoveReport{Moved: 1, Closed: 3, Pinned: []router.PinnedSession{
			{User: "app", Database: "db", Reasons: []string{"temp_tables"}},
			{User: "admin", Database: "postgres", Reasons: []string{"listen", "advisory_locks"}},
		}}, "1 session(s) moved to the restarted node; 3 closed with a retryable error (57P01) (2 pinned, app@db: temp_tables; " +
			"admin@postgres: listen, advisory_locks; 1 in a transaction or not at a message boundary in time)"},
		{router.MoveReport{Closed: 2}, "0 session(s) moved to the restarted node; 2 closed with a retryable error (57P01) (2 in a transaction or not at a message boundary in time)"},
		{router.MoveReport{Moved: 2, Failed: 1, Errors: []string{"dial tcp: refused"}}, "2 session(s) moved to the restarted node; 1 failed: dial tcp: refused"},
	} {
		if got := movedMessage(c.rep, "the restarted node"); got != c.want {
			t.Errorf("movedMessage(%+v)\n got %q\nwant %q", c.rep, got, c.want)
		}
	}
}
