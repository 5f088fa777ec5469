package router

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
)

func startupPacket(code uint32, body []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(8+len(body)))
	b = binary.BigEndian.AppendUint32(b, code)
	return append(b, body...)
}

func TestReadStartupAcceptsEachKind(t *testing.T) {
	sm, _ := (&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30,
		Parameters: map[string]string{"user": "alice", "database": "db"}}).Encode(nil)
	cancel, _ := (&pgproto3.CancelRequest{ProcessID: 7, SecretKey: []byte{1, 2, 3, 4}}).Encode(nil)
	for _, tc := range []struct {
		in   []byte
		want string
	}{
		{sm, "*pgproto3.StartupMessage"},
		{startupPacket(codeSSLRequest, nil), "*pgproto3.SSLRequest"},
		{startupPacket(codeGSSENCRequest, nil), "*pgproto3.GSSEncRequest"},
		{cancel, "*pgproto3.CancelRequest"},
	} {
		msg, err := readStartup(bytes.NewReader(tc.in))
		if err != nil {
			t.Fatalf("%s: %v", tc.want, err)
		}
		if got := typeName(msg); got != tc.want {
			t.Fatalf("got %s, want %s", got, tc.want)
		}
	}
}

func typeName(v any) string {
	switch v.(type) {
	case *pgproto3.StartupMessage:
		return "*pgproto3.StartupMessage"
	case *pgproto3.SSLRequest:
		return "*pgproto3.SSLRequest"
	case *pgproto3.GSSEncRequest:
		return "*pgproto3.GSSEncRequest"
	case *pgproto3.CancelRequest:
		return "*pgproto3.CancelRequest"
	}
	return "?"
}

func TestReadStartupRejectsMalformedPackets(t *testing.T) {
	huge := binary.BigEndian.AppendUint32(nil, 1<<20)
	for name, in := range map[string][]byte{
		"oversized":       huge,
		"too short":       binary.BigEndian.AppendUint32(nil, 3),
		"negative":        binary.BigEndian.AppendUint32(nil, 0xffffffff),
		"protocol 2":      startupPacket(2<<16, []byte("user\x00a\x00\x00")),
		"truncated":       startupPacket(3<<16, []byte("user\x00a\x00\x00"))[:10],
		"no user":         startupPacket(3<<16, []byte("database\x00a\x00\x00")),
		"unterminated":    startupPacket(3<<16, []byte("user\x00alice")),
		"short cancel":    startupPacket(codeCancelRequest, []byte{1}),
		"unknown request": startupPacket(1234<<16|5678, nil),
	} {
		if _, err := readStartup(bytes.NewReader(in)); !errors.Is(err, errStartup) {
			t.Errorf("%s: got %v, want a start-up error", name, err)
		}
	}
}

// FuzzReadStartup: any bytes give a message or an error, never a panic or a huge allocation.
func FuzzReadStartup(f *testing.F) {
	sm, _ := (&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30,
		Parameters: map[string]string{"user": "u"}}).Encode(nil)
	f.Add(sm)
	f.Add(startupPacket(codeSSLRequest, nil))
	f.Add(startupPacket(codeCancelRequest, []byte{0, 0, 0, 1, 1, 2, 3, 4}))
	f.Add(binary.BigEndian.AppendUint32(nil, 1<<30))
	f.Add([]byte{0, 0, 0, 8, 0, 3, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		msg, err := readStartup(bytes.NewReader(in))
		if err == nil && msg == nil {
			t.Fatal("no message and no error")
		}
		if sm, ok := msg.(*pgproto3.StartupMessage); ok && sm.Parameters["user"] == "" {
			t.Fatal("accepted a start-up message without a user")
		}
	})
}
