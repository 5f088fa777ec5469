package pgproc

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Ports for servers that bind them later.
//
// A port the kernel hands out for 127.0.0.1:0 is in its ephemeral range
// (net.ipv4.ip_local_port_range), the range it also takes the source port of every outgoing
// connection from, and every other process's :0 listener: between the moment a port is chosen
// and the moment a server binds it (for a cluster's later members, tens of seconds), any client
// connection on the machine may take it. On a machine running several test binaries at once,
// one did: a reader's postgres failed "could not create any TCP/IP sockets" at every start for
// 4 minutes. So FreePort chooses below the ephemeral range, where nothing is handed out
// implicitly, and reserves what it hands out for portHold across processes (a file per port in
// portDir), so that two processes choosing at once never get the same port; a port still has
// to be free (bindable) when chosen. A caller that chose a port should still be ready to choose
// another when its bind fails (ErrPortInUse): another program may bind any port at any time.

// portHold is how long a handed-out port is not handed out again, by any process.
const portHold = 15 * time.Minute

// portSpan is how many ports below the ephemeral range FreePort chooses from.
const portSpan = 12288

var (
	portMu   sync.Mutex
	portDir  = filepath.Join(os.TempDir(), "borealis-ports")
	portLow  = func() int { lo, _ := ephemeralRange(); return lo }
	handedAt = map[int]time.Time{} // this process's own reservations
)

// FreePort returns a TCP port free on 127.0.0.1 now, below the kernel's ephemeral range and
// reserved for portHold against other callers of FreePort, in this process or another. Where
// the range below the ephemeral one is too small, it asks the kernel (127.0.0.1:0).
func FreePort() (int, error) {
	portMu.Lock()
	defer portMu.Unlock()
	hi := portLow()
	lo := max(1024, hi-portSpan)
	if hi-lo < 1024 {
		return kernelPort()
	}
	now := time.Now()
	for range 200 {
		port := lo + rand.IntN(hi-lo)
		if t, ok := handedAt[port]; ok && now.Sub(t) < portHold {
			continue
		}
		if !reserve(port, now) || !bindable(port) {
			continue
		}
		handedAt[port] = now
		return port, nil
	}
	return kernelPort()
}

// kernelPort asks the kernel for a TCP port that is free on 127.0.0.1 right now.
func kernelPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// bindable reports whether a listener can bind 127.0.0.1:port now.
func bindable(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// reserve claims port for portHold across processes: it creates portDir/<port>, or takes over
// one older than portHold. Where the directory cannot be used (not a real directory, not
// writable), reservations are skipped and only bindable guards the choice.
func reserve(port int, now time.Time) bool {
	if err := os.MkdirAll(portDir, 0o777); err == nil {
		fi, err := os.Lstat(portDir)
		mine := err == nil && fi.IsDir() && fi.Sys().(*syscall.Stat_t).Uid == uint32(os.Geteuid())
		if mine && fi.Mode()&(os.ModePerm|os.ModeSticky) != 0o777|os.ModeSticky {
			// Everyone's test processes share it; sticky, so none removes another's entries
			// except through the age rule below, which only the owner or root can apply.
			_ = os.Chmod(portDir, 0o777|os.ModeSticky)
		}
	}
	if fi, err := os.Lstat(portDir); err != nil || !fi.IsDir() {
		return true
	}
	name := filepath.Join(portDir, strconv.Itoa(port))
	for range 2 {
		f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY|syscall.O_NOFOLLOW, 0o644)
		if err == nil {
			f.Close()
			return true
		}
		if !errors.Is(err, os.ErrExist) {
			return true // not writable here: the bind check alone guards
		}
		fi, err := os.Lstat(name)
		if err != nil || now.Sub(fi.ModTime()) < portHold {
			return false
		}
		_ = os.Remove(name) // an expired reservation
	}
	return false
}

// ephemeralRange is the kernel's range for ports it hands out by itself.
func ephemeralRange() (lo, hi int) {
	lo, hi = 32768, 60999
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return lo, hi
	}
	f := strings.Fields(string(data))
	if len(f) == 2 {
		a, err1 := strconv.Atoi(f[0])
		b, err2 := strconv.Atoi(f[1])
		if err1 == nil && err2 == nil && a > 0 && a <= b {
			return a, b
		}
	}
	return lo, hi
}
