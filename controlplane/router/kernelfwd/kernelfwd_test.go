package kernelfwd

import (
	"encoding/binary"
	"os"
	"testing"
	"unsafe"
)

// TestStateLayout: the offsets the programs use are State's fields, and the map value is
// the struct's size.
func TestStateLayout(t *testing.T) {
	var s State
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"Left", unsafe.Offsetof(s.Left), 8},
		{"Status", unsafe.Offsetof(s.Status), 12},
		{"Pos", unsafe.Offsetof(s.Pos), offPos},
		{"Active", unsafe.Offsetof(s.Active), offActive},
		{"Redirected", unsafe.Offsetof(s.Redirected), offRedirected},
		{"HdrLen", unsafe.Offsetof(s.HdrLen), offHdrLen},
		{"Hdr", unsafe.Offsetof(s.Hdr), offHdr},
		{"Count", unsafe.Offsetof(s.Count), offCount},
	} {
		if c.got != c.want {
			t.Errorf("State.%s at %d, the programs use %d", c.name, c.got, c.want)
		}
	}
	if n := binary.Size(State{}); n != 48 || uintptr(n) != unsafe.Sizeof(s) {
		t.Errorf("State is %d bytes (binary) and %d (memory), want 48", n, unsafe.Sizeof(s))
	}
}

// TestProbe: as root (CI) this kernel must load and attach the scan verdict; without the
// privilege the probe must say why rather than succeed. Its answer is kept.
func TestProbe(t *testing.T) {
	err := Probe()
	if os.Geteuid() == 0 && err != nil {
		t.Fatalf("as root: %v", err)
	}
	if os.Geteuid() != 0 && err == nil {
		t.Fatal("without root the probe loaded a BPF program")
	}
	if again := Probe(); again != err {
		t.Fatalf("a second probe answered %v after %v", again, err)
	}
}
