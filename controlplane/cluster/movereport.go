package cluster

import (
	"fmt"
	"strings"

	"github.com/borealisdb/borealis/controlplane/router"
)

// movedMessage is the text of a member.sessions-moved event: how many sessions moved to where,
// and, for those that could not, how many were closed with a retryable error and why (pinned,
// naming each session and what pins it; or not at a transaction boundary in time) and how many
// failed and why. It always starts "N session(s) moved to <where>".
func movedMessage(rep router.MoveReport, where string) string {
	msg := fmt.Sprintf("%d session(s) moved to %s", rep.Moved, where)
	if rep.Closed > 0 {
		msg += fmt.Sprintf("; %d closed with a retryable error (57P01)", rep.Closed)
		var why []string
		if len(rep.Pinned) > 0 {
			pins := make([]string, 0, len(rep.Pinned))
			for _, p := range rep.Pinned {
				pins = append(pins, fmt.Sprintf("%s@%s: %s", p.User, p.Database, strings.Join(p.Reasons, ", ")))
			}
			why = append(why, fmt.Sprintf("%d pinned, %s", len(rep.Pinned), strings.Join(pins, "; ")))
		}
		if other := rep.Closed - len(rep.Pinned); other > 0 {
			why = append(why, fmt.Sprintf("%d in a transaction or not at a message boundary in time", other))
		}
		msg += " (" + strings.Join(why, "; ") + ")"
	}
	if rep.Failed > 0 {
		msg += fmt.Sprintf("; %d failed: %s", rep.Failed, strings.Join(rep.Errors, "; "))
	}
	return msg
}
