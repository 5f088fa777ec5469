// Package router is the PostgreSQL wire-protocol proxy behind a cluster's endpoints: the
// cluster endpoint goes to the writer, the reader endpoint to the available reader with the
// fewest router connections (the writer when no reader is available).
//
// It handles the start-up phase itself — SSLRequest and GSSENCRequest (answered 'N', or TLS
// termination when a certificate is configured), CancelRequest, the StartupMessage — and then
// relays bytes. Authentication is relayed untouched, so trust, md5 and SCRAM work and the router
// never sees a password. The router hands clients its own BackendKeyData and maps it to the
// backend's, so cancels reach the right backend. From the backend's messages it tracks each
// session's transaction state (ReadyForQuery I/T/E) without copying message bodies. New clients
// can be held at connect time (pause, failover) until released or a timeout; HoldAndWake calls
// back on the first held client (resume on connect), Fail answers the held clients with an
// error and keeps holding, Refuse turns clients away at once (a stopped cluster).
//
// It owns sockets and sessions only: it never starts servers, reads the control plane's store,
// or parses client traffic after start-up (the backend validates that).
package router
