// Package pgproc runs PostgreSQL server processes on this machine: initdb, configuration,
// start, clean stop, kill -9, pg_basebackup and standbys.
//
// It is shared by the test harness (internal/pgtest), the dev node of `make up` and the control
// plane's node supervisor. PostgreSQL refuses to run as root, so when the caller is root every
// PostgreSQL program is started as the "postgres" user and the directories it needs are handed
// to that user.
//
// It owns processes and directories only. It never loads the Borealis engine or index code and
// never holds a database connection longer than a readiness probe.
package pgproc
