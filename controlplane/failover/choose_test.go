package failover

import (
	"errors"
	"strings"
	"testing"
)

func TestChoose(t *testing.T) {
	r := func(id string, tier int, acu float64, recv, replay uint64) Candidate {
		return Candidate{ID: id, Tier: tier, Capacity: acu, Reachable: true, Received: recv, Replayed: replay}
	}
	down := func(c Candidate) Candidate { c.Reachable = false; return c }
	cases := []struct {
		name    string
		cands   []Candidate
		mode    string
		target  string
		want    string
		wantErr string
	}{
		{"lowest tier wins over capacity and lag", []Candidate{r("a", 2, 8, 100, 100), r("b", 1, 1, 50, 10)}, Asynchronous, "", "b", ""},
		{"same tier: largest capacity", []Candidate{r("a", 1, 2, 100, 100), r("b", 1, 4, 50, 50)}, Asynchronous, "", "b", ""},
		{"same tier and capacity: least replay lag", []Candidate{r("a", 1, 2, 100, 60), r("b", 1, 2, 100, 90)}, Asynchronous, "", "b", ""},
		{"all equal: identifier", []Candidate{r("b", 1, 2, 100, 100), r("a", 1, 2, 100, 100)}, Asynchronous, "", "a", ""},
		{"unreachable skipped", []Candidate{down(r("a", 0, 8, 100, 100)), r("b", 5, 1, 10, 10)}, Asynchronous, "", "b", ""},
		{"none reachable", []Candidate{down(r("a", 0, 8, 100, 100))}, Asynchronous, "", "", "a (unreachable)"},
		{"no readers", nil, Asynchronous, "", "", "no reader to promote"},
		{"sync: tier loses to missing WAL", []Candidate{r("a", 0, 8, 90, 90), r("b", 3, 1, 100, 95)}, Synchronous, "", "b", ""},
		{"sync: equal WAL, tier decides", []Candidate{r("a", 0, 1, 100, 80), r("b", 3, 8, 100, 100)}, Synchronous, "", "a", ""},
		{"sync: an unreachable reader blocks", []Candidate{r("a", 0, 1, 100, 100), down(r("b", 1, 1, 0, 0))}, Synchronous, "", "", "may hold the last acknowledged commits"},
		{"async: behind reader still eligible", []Candidate{r("a", 0, 1, 90, 90), r("b", 3, 1, 100, 100)}, Asynchronous, "", "a", ""},
		{"target honoured over tier", []Candidate{r("a", 0, 8, 100, 100), r("b", 9, 1, 100, 100)}, Asynchronous, "b", "b", ""},
		{"unknown target", []Candidate{r("a", 0, 8, 100, 100)}, Asynchronous, "zzz", "", "zzz is not a reader"},
		{"unreachable target", []Candidate{r("a", 0, 8, 100, 100), down(r("b", 1, 1, 0, 0))}, Asynchronous, "b", "", "b (unreachable)"},
		{"sync: behind target refused", []Candidate{r("a", 0, 8, 100, 100), r("b", 1, 1, 80, 80)}, Synchronous, "b", "", "may miss an acknowledged commit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Choose(tc.cands, tc.mode, tc.target, Timelines{})
			if tc.wantErr != "" {
				var ce *ChoiceError
				if err == nil || !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %+v, %v; want error containing %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got.ID != tc.want {
				t.Fatalf("got %+v, %v; want %s", got, err, tc.want)
			}
			if got.Reason == "" {
				t.Fatal("no reason given")
			}
		})
	}
}

// TestChooseOnTimelines: positions count on the cluster's history. Timeline 1 ended at 1000
// where timeline 2 began (a promotion).
func TestChooseOnTimelines(t *testing.T) {
	on := func(id string, tier int, tli uint32, recv, replay uint64) Candidate {
		return Candidate{ID: id, Tier: tier, Capacity: 1, Reachable: true, Timeline: tli, Received: recv, Replayed: replay}
	}
	tl2 := Timelines{Current: 2, SwitchPoints: map[uint32]uint64{1: 1000}}
	cases := []struct {
		name    string
		cands   []Candidate
		mode    string
		tl      Timelines
		want    string
		wantErr string
	}{
		// The risk this guards against: a reader stuck on timeline 1 past the switch point
		// has the larger LSN, but none of timeline 2's commits.
		{"sync: old timeline past the switch point is not ahead", []Candidate{on("stuck", 0, 1, 1500, 1500), on("new", 1, 2, 1200, 1200)}, Synchronous, tl2, "new", ""},
		{"async: diverged reader never chosen, even at tier 0", []Candidate{on("stuck", 0, 1, 1500, 1500), on("new", 5, 2, 1200, 1100)}, Asynchronous, tl2, "new", ""},
		{"diverged reason named", []Candidate{on("stuck", 0, 1, 1500, 1500)}, Asynchronous, tl2, "", "diverged from the cluster's history"},
		{"sync: ancestor up to the switch point is behind the current timeline", []Candidate{on("old", 0, 1, 900, 900), on("new", 1, 2, 1001, 1001)}, Synchronous, tl2, "new", ""},
		{"async: ancestor prefix eligible, tier first", []Candidate{on("old", 0, 1, 1000, 900), on("new", 1, 2, 1200, 1200)}, Asynchronous, tl2, "old", ""},
		{"sync: ancestor prefix alone holds everything", []Candidate{on("old", 0, 1, 1000, 1000)}, Synchronous, tl2, "old", ""},
		{"unknown switch point: not placed", []Candidate{on("old", 0, 2, 500, 500), on("new", 1, 3, 600, 600)}, Asynchronous, tl2, "new", ""},
		{"unknown switch point alone: refused", []Candidate{on("old", 0, 1, 500, 500)}, Synchronous, Timelines{Current: 3}, "", "where timeline 1 ended is unknown"},
		{"unknown timeline while others known: refused", []Candidate{on("x", 0, 0, 500, 500), on("y", 1, 2, 100, 100)}, Synchronous, tl2, "y", ""},
		{"current raised by a reader on a newer timeline", []Candidate{on("a", 0, 2, 1500, 1500), on("b", 1, 3, 1100, 1100)}, Synchronous,
			Timelines{Current: 2, SwitchPoints: map[uint32]uint64{1: 1000, 2: 1050}}, "b", ""},
		{"same timeline: plain LSN order", []Candidate{on("a", 0, 2, 1100, 1100), on("b", 1, 2, 1200, 1200)}, Synchronous, tl2, "b", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Choose(tc.cands, tc.mode, "", tc.tl)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %+v, %v; want error containing %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got.ID != tc.want {
				t.Fatalf("got %+v, %v; want %s", got, err, tc.want)
			}
		})
	}
}

func TestParseHistory(t *testing.T) {
	h, err := ParseHistory("1\t0/3000158\tno recovery target specified\n\n2\t1/A0000000\tno recovery target specified\n")
	if err != nil || len(h) != 2 || h[1] != 0x3000158 || h[2] != 0x1A0000000 {
		t.Fatalf("%v %v", h, err)
	}
	for _, bad := range []string{"1", "x 0/1 r", "1 zz r"} {
		if _, err := ParseHistory(bad); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if got := FormatLSN(0x1A0000000); got != "1/A0000000" {
		t.Errorf("FormatLSN: %s", got)
	}
}

func TestChooseReportsLag(t *testing.T) {
	got, err := Choose([]Candidate{{ID: "a", Reachable: true, Received: 1000, Replayed: 400}, {ID: "b", Tier: 1, Reachable: true, Received: 1500, Replayed: 1500}}, Asynchronous, "", Timelines{})
	if err != nil || got.ID != "a" || got.LagBytes != 1100 || !strings.Contains(got.Reason, "replay lag 1100 bytes") {
		t.Fatalf("%+v %v", got, err)
	}
}

func TestValidateTierAndMode(t *testing.T) {
	for _, tier := range []int{0, 1, 15} {
		if err := ValidateTier(tier); err != nil {
			t.Errorf("tier %d: %v", tier, err)
		}
	}
	for _, tier := range []int{-1, 16, 100} {
		if err := ValidateTier(tier); err == nil || !strings.Contains(err.Error(), "use 0") {
			t.Errorf("tier %d accepted: %v", tier, err)
		}
	}
	if ValidateMode(Asynchronous) != nil || ValidateMode(Synchronous) != nil {
		t.Error("valid modes refused")
	}
	if err := ValidateMode("sync"); err == nil || !strings.Contains(err.Error(), "asynchronous or synchronous") {
		t.Errorf("bad mode: %v", err)
	}
}

func TestTimelineAt(t *testing.T) {
	const seg = 16 << 20
	files := []string{"000000010000000000000003", "000000010000000000000004", "000000020000000000000004", "000000020000000000000005",
		"000000030000000100000000", "00000002.history", "000000010000000000000004.partial"}
	cases := []struct {
		pos  uint64
		want uint32
	}{
		{0x3000100, 1},   // only timeline 1 has segment 3
		{0x4000100, 2},   // the switch segment exists on both: the newer one
		{0x5000000, 2},   // the byte before a segment boundary is in the previous segment
		{0x6000001, 0},   // segment 6: no file
		{0x100000010, 3}, // segment 0x100 of 16 MB = 1/00000000
		{0, 0},
	}
	for _, c := range cases {
		if got := TimelineAt(files, c.pos, seg); got != c.want {
			t.Errorf("TimelineAt(%s) = %d, want %d", FormatLSN(c.pos), got, c.want)
		}
	}
	if HistoryTimeline("0000000A.history") != 10 || HistoryTimeline("000000010000000000000003") != 0 || HistoryTimeline("zz.history") != 0 {
		t.Error("HistoryTimeline")
	}
}
