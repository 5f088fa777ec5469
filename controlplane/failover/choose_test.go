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
			got, err := Choose(tc.cands, tc.mode, tc.target)
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

func TestChooseReportsLag(t *testing.T) {
	got, err := Choose([]Candidate{{ID: "a", Reachable: true, Received: 1000, Replayed: 400}, {ID: "b", Tier: 1, Reachable: true, Received: 1500, Replayed: 1500}}, Asynchronous, "")
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
