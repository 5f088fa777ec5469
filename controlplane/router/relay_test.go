package router

import (
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"
)

// TestConnReaderSeesEndAfterData: a peer that sends a last message and closes at once (a
// backend's notice before it exits in a crash restart; a client's Terminate) must end the
// goroutine relay's read with io.EOF. The read loop used to park as soon as a read came back
// short, and the runtime poller, which is edge-triggered, had merged the close's edge into the
// data's: most such readers then waited for ever on a dead socket (265 of 300 here).
func TestConnReaderSeesEndAfterData(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s")
	for _, network := range []string{"unix", "tcp"} {
		t.Run(network, func(t *testing.T) {
			addr := sock
			if network == "tcp" {
				addr = "127.0.0.1:0"
			}
			l, err := net.Listen(network, addr)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			for i := range 40 {
				c, err := net.Dial(network, l.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				peer, err := l.Accept()
				if err != nil {
					t.Fatal(err)
				}
				cr := newConnReader(c)
				if cr.rc == nil {
					t.Fatal("no raw connection: the poller's read path is not under test")
				}
				got := 0
				done := make(chan error, 1)
				go func() {
					done <- cr.run(func(b []byte) (int, bool, error) { got += len(b); return len(b), false, nil })
				}()
				time.Sleep(5 * time.Millisecond) // the reader parks in the poller
				msg := []byte("N\x00\x00\x00\x10last words\x00")
				if _, err := peer.Write(msg); err != nil {
					t.Fatal(err)
				}
				peer.Close()
				select {
				case err := <-done:
					if err != io.EOF || got != len(msg) {
						t.Fatalf("round %d: read %d bytes, ended with %v; want %d and io.EOF", i, got, err, len(msg))
					}
				case <-time.After(10 * time.Second):
					c.Close()
					<-done
					t.Fatalf("round %d: the reader missed the end of the stream after the peer's last message", i)
				}
				c.Close()
			}
		})
	}
}
