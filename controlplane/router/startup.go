package router

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5/pgproto3"
)

// Start-up packet codes (PostgreSQL's pqcomm.h).
const (
	codeSSLRequest    = 80877103
	codeGSSENCRequest = 80877104
	codeCancelRequest = 80877102
	// maxStartupPacket is PostgreSQL's MAX_STARTUP_PACKET_LENGTH.
	maxStartupPacket = 10000
)

// errStartup marks a malformed start-up packet: the client gets a protocol_violation error.
var errStartup = errors.New("malformed start-up packet")

// readStartup reads exactly one start-up packet from r (no read-ahead, so nothing the client
// sends next is swallowed) and decodes it with pgproto3. It returns *pgproto3.StartupMessage,
// *pgproto3.SSLRequest, *pgproto3.GSSEncRequest or *pgproto3.CancelRequest.
func readStartup(r io.Reader) (pgproto3.FrontendMessage, error) {
	var hdr [8]byte
	if _, err := io.ReadFull(r, hdr[:4]); err != nil {
		return nil, err
	}
	length := int64(int32(binary.BigEndian.Uint32(hdr[:4])))
	if length < 8 || length > maxStartupPacket {
		return nil, fmt.Errorf("%w: length %d is outside 8..%d", errStartup, length, maxStartupPacket)
	}
	body := make([]byte, length-4)
	if _, err := io.ReadFull(r, body); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("%w: %v", errStartup, err)
	}
	code := binary.BigEndian.Uint32(body)
	var msg interface {
		pgproto3.FrontendMessage
		Decode([]byte) error
	}
	switch {
	case code == codeSSLRequest:
		msg = &pgproto3.SSLRequest{}
	case code == codeGSSENCRequest:
		msg = &pgproto3.GSSEncRequest{}
	case code == codeCancelRequest:
		msg = &pgproto3.CancelRequest{}
	case code>>16 == 3:
		msg = &pgproto3.StartupMessage{}
	default:
		return nil, fmt.Errorf("%w: unsupported protocol version or request code %d.%d (this router speaks protocol 3)",
			errStartup, code>>16, code&0xffff)
	}
	if err := msg.Decode(body); err != nil {
		return nil, fmt.Errorf("%w: %v", errStartup, err)
	}
	if sm, ok := msg.(*pgproto3.StartupMessage); ok && sm.Parameters["user"] == "" {
		return nil, fmt.Errorf("%w: no user name in the start-up packet", errStartup)
	}
	return msg, nil
}

// writeError sends a FATAL ErrorResponse; the caller closes the socket after it.
func writeError(w io.Writer, code, message, hint string) {
	buf, err := (&pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL",
		Code: code, Message: message, Hint: hint}).Encode(nil)
	if err == nil {
		_, _ = w.Write(buf)
	}
}
