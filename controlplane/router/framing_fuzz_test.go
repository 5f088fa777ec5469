package router

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// frame is one protocol message: type byte, length (itself included), body.
func frame(typ byte, body []byte) []byte {
	b := []byte{typ}
	b = binary.BigEndian.AppendUint32(b, uint32(4+len(body)))
	return append(b, body...)
}

type msg struct {
	typ  byte
	body []byte
}

// frames splits b into its complete messages (stopping at the first bad length or short one).
func frames(b []byte) []msg {
	var out []msg
	for len(b) >= 5 {
		n := int(int32(binary.BigEndian.Uint32(b[1:5])))
		if n < 4 || len(b) < 1+n {
			break
		}
		out = append(out, msg{b[0], b[5 : 1+n]})
		b = b[1+n:]
	}
	return out
}

// FuzzRelayFraming drives a session's relay after start-up with arbitrary client and backend
// byte streams over in-memory connections. The router must never panic or allocate on a
// declared length, must pass the client's bytes to the backend unchanged (a prefix of them),
// and must pass the backend's messages to the client in order, unchanged but for the
// BackendKeyData it replaces with its own key.
func FuzzRelayFraming(f *testing.F) {
	q := frame('Q', []byte("SELECT 1\x00"))
	f.Add(q, append(append(frame('K', []byte{0, 0, 0, 7, 1, 2, 3, 4}), frame('Z', []byte{'I'})...), frame('C', []byte("SELECT 1\x00"))...))
	f.Add(append(frame('P', []byte("\x00SELECT $1\x00\x00\x00")), frame('S', nil)...), frame('Z', []byte{'T'}))
	f.Add([]byte{'Q', 0x7f, 0xff, 0xff, 0xff}, []byte{'K', 0x7f, 0xff, 0xff, 0xff})
	f.Add([]byte{'Q', 0, 0, 0, 2}, []byte{'Z', 0, 0, 0, 6, 'I', 'I'})
	f.Add([]byte{}, []byte{'D', 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, fromClient, fromBackend []byte) {
		r := New(Config{Name: "fuzz", Backends: &staticBackends{}})
		clientEnd, routerClient := net.Pipe()
		backendEnd, routerBackend := net.Pipe()
		s := &session{r: r, client: routerClient, backend: routerBackend, started: time.Now()}
		deadline := time.Now().Add(10 * time.Second)
		for _, c := range []net.Conn{clientEnd, backendEnd, routerClient, routerBackend} {
			c.SetDeadline(deadline)
		}
		var wg sync.WaitGroup
		var toBackend, toClient bytes.Buffer
		wg.Add(4)
		go func() { defer wg.Done(); clientEnd.Write(fromClient) }()
		go func() {
			defer wg.Done()
			backendEnd.Write(fromBackend)
			time.Sleep(time.Millisecond)
			backendEnd.Close()
		}()
		go func() { defer wg.Done(); io.Copy(&toBackend, backendEnd) }()
		go func() { defer wg.Done(); io.Copy(&toClient, clientEnd) }()
		s.relay()
		s.close()
		clientEnd.Close()
		wg.Wait()
		if !bytes.HasPrefix(fromClient, toBackend.Bytes()) {
			t.Fatalf("the backend got %q, not a prefix of the client's %q", toBackend.Bytes(), fromClient)
		}
		want, got := frames(fromBackend), frames(toClient.Bytes())
		if n := len(got); n > 0 && got[n-1].typ == 'E' && bytes.Contains(got[n-1].body, []byte("C08006\x00")) &&
			(n > len(want) || want[n-1].typ != 'E') {
			// The backend's stream ended between messages without an error of its own: the
			// router tells the client (backendLost).
			got = got[:n-1]
		}
		if len(got) > len(want) {
			t.Fatalf("the client got %d messages from %d", len(got), len(want))
		}
		for i, m := range got {
			if m.typ != want[i].typ || (m.typ != 'K' && !bytes.Equal(m.body, want[i].body)) {
				t.Fatalf("message %d: got %c %q, want %c %q", i, m.typ, m.body, want[i].typ, want[i].body)
			}
			if m.typ == 'K' && (len(m.body) != 8 || bytes.Equal(m.body, want[i].body)) {
				t.Fatalf("BackendKeyData passed through or malformed: %x", m.body)
			}
		}
	})
}
