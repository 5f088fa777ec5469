// Package router is the PostgreSQL wire-protocol proxy behind a cluster's endpoints: the
// cluster endpoint goes to the writer, the reader endpoint to the available reader with the
// fewest router connections (the writer when no reader is available).
//
// It handles the start-up phase itself — SSLRequest and GSSENCRequest (answered 'N', or TLS
// termination when a certificate is configured), CancelRequest, the StartupMessage — and then
// relays bytes. Authentication is relayed untouched, so trust, md5 and SCRAM work and the router
// never sees a password. For a backend that is already open (a pool), authenticateInRouter
// (auth.go) runs SCRAM-SHA-256 with the client itself, against the role's verifier read over
// the node's private path, and makes PostgreSQL's post-login checks; it hands roles it cannot
// verify (md5, no password) back to a backend. The router hands clients its own
// BackendKeyData and maps it to the backend's, so cancels reach the right backend. From the backend's messages it tracks each
// session's transaction state (ReadyForQuery I/T/E) without copying message bodies. New clients
// can be held at connect time (pause, failover) until released or a timeout; HoldAndWake calls
// back on the first held client (resume on connect), Fail answers the held clients with an
// error and keeps holding, Refuse turns clients away at once (a stopped cluster). Limits
// (limits.go) bound what clients can make it hold: sessions per endpoint (53300), sessions in
// start-up (the oldest dropped, so idle sockets cannot lock real clients out), the start-up and
// authentication time, and held clients.
//
// Sessions outlive their backend (move.go). The API for the cluster manager:
//
//	p := r.Park(ctx, addr, MoveOptions{Reason: "node restart", ClosePinned: true})
//	// ... restart the node, or pick another one ...
//	report := p.Resume(ctx, newAddr) // or p.Cancel() to stay on the old backend
//
// Park holds every session of backend addr at its next transaction boundary (ReadyForQuery
// 'I' with nothing in flight): the client's next messages wait unforwarded, which is how new
// queries are held while a node restarts. Sessions still in a transaction after
// BoundaryTimeout get FATAL 57P01 "terminating connection for a <Reason>; retry" and a clean
// close; pinned sessions (temp tables, session advisory locks, LISTEN, WITH HOLD cursors) are
// reported in Parked.Pinned and closed the same way with ClosePinned. Resume opens a backend at
// newAddr with the client's StartupMessage over Config.PrivateAddr, replays the session's
// settings and named prepared statements, and lets the session continue; Sessions() shows the
// pins found, MovedSessions() counts moves. Hold/Release gate new connections meanwhile.
//
// Sessions also outlive a crash of their backend (recover.go), when Config.IdleSnapshotAfter is
// set (the control plane sets 1 s). A session idle at a transaction boundary for that long gets
// a snapshot of its state, read from its backend with the same query a move uses; any message
// from the client makes it stale. If the backend then dies (kill -9, a crash restart of the
// node, the postmaster gone, a failover), the session's reader holds the client's next messages,
// asks Backends again for its endpoint's node (the writer for the cluster endpoint: after a
// failover that is the promoted node) every 250 ms up to HoldTimeout, opens a backend there on
// the trusted path, replays the snapshot and carries on; the FATAL (57P0x) a dying backend sends
// an idle session is held back and only forwarded if that fails. Nothing to call: a failover only
// has to make Backends name the new writer. Sessions() marks the sessions that would survive
// (Replayable), RecoveredSessions() counts them. Not replayed, so the client sees the error:
// sessions in a transaction, pinned ones, ones that sent anything since their snapshot (a query
// racing the crash), and ones idle for less than IdleSnapshotAfter. While Refuse is in force
// (a stopped cluster) nothing is waited for. A backend that ends between two messages without
// saying why (killed, or fenced by a failover: no FATAL of its own) leaves such a client a
// FATAL 08006 from the router saying its state is gone and a transaction in progress has an
// unknown outcome, rather than a bare end of stream (session.go, backendLost).
//
// The relay (relay.go) moves each direction a 64 kB read at a time with one write, following
// message boundaries in place; a move or a snapshot stops the backend direction only at a
// message boundary, and asynchronous messages (NOTIFY, ParameterStatus, notices) that arrive
// while a session is inspected are passed on to its client.
//
// In the steady state a session's sockets are not served by goroutines at all but by the
// router's event loop (eventloop.go): one goroutine in epoll_wait over every session, one read
// and one write per ready socket, PgBouncer's model; where the kernel allows, the same loop
// runs on io_uring (eventloop_uring.go: receives armed in a ring, each forward a send linked to
// the receive that re-arms its source, one io_uring_enter to submit and wait). A session leaves the loop, with its
// buffers, for whatever needs the goroutine relay (a move, a snapshot, a crash, a busy forward
// lock) and comes back after. Config.GoroutineRelay turns the loop off.
//
// It owns sockets and sessions only: it never starts servers or reads the control plane's
// store. After start-up it frames client messages to count requests in flight, and looks into
// Query, Parse and Bind only to find DATABASE DDL, which drains the warm pool's idle backends in
// its way (pooldrain.go); their contents are the backend's to validate.
package router
