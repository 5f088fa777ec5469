package main

import (
	"bytes"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// TestSockmapProxyForwards runs the experiment's proxy in each measured mode against a fake
// backend that answers the start-up with ReadyForQuery and echoes the rest: several messages
// in one write must come back whole and in order through the kernel's redirect, and the scan
// mode must have recorded the backend's ReadyForQuery status in its map.
func TestSockmapProxyForwards(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("loading BPF programs needs root (CI runs as root)")
	}
	for _, mode := range []string{"verdict", "scan", "half"} {
		t.Run(mode, func(t *testing.T) {
			bl, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer bl.Close()
			go func() {
				for {
					c, err := bl.Accept()
					if err != nil {
						return
					}
					go func() {
						defer c.Close()
						buf := make([]byte, 8)
						if _, err := io.ReadFull(c, buf); err != nil {
							return
						}
						c.Write([]byte{'Z', 0, 0, 0, 5, 'T'})
						io.Copy(struct{ io.Writer }{c}, struct{ io.Reader }{c})
					}()
				}
			}()
			p, err := newSockmapProxy(bl.Addr().String(), mode)
			if err != nil {
				t.Fatalf("the kernel refused the sockmap proxy: %v", err)
			}
			defer p.Close()
			c, err := net.Dial("tcp", p.l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.Write([]byte{0, 0, 0, 8, 0, 3, 0, 0})
			z := make([]byte, 6)
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.ReadFull(c, z); err != nil || z[0] != 'Z' {
				t.Fatalf("start-up: %q %v", z, err)
			}
			// Three messages in one write, the backend's ReadyForQuery 'I' among them.
			msg := []byte{'Q', 0, 0, 0, 8, 'a', 'b', 'c', 0, 'Z', 0, 0, 0, 5, 'I', 'Q', 0, 0, 0, 5, 'x'}
			for round := range 3 {
				c.Write(msg)
				got := make([]byte, len(msg))
				if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
					t.Fatalf("round %d: echo %q, %v; want %q", round, got, err, msg)
				}
			}
			if mode == "scan" {
				var key uint64
				var st sockState
				found := false
				it := p.peer.Iterate()
				for it.Next(&key, &st) {
					if st.Status == 'I' {
						found = true
					}
				}
				if !found {
					t.Fatal("no socket's state recorded the echoed ReadyForQuery 'I'")
				}
			}
		})
	}
}
