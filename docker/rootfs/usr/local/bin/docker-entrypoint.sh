#!/bin/sh
# Entrypoint of the borealis image: checks the environment, runs `borealis up` (a writer and
# BOREALIS_READERS readers, endpoints and API on all interfaces, state in /var/lib/borealis),
# applies BOREALIS_MIN_CAPACITY/BOREALIS_MAX_CAPACITY and BOREALIS_SECONDS_UNTIL_AUTO_PAUSE,
# runs /docker-entrypoint-initdb.d/* once when the cluster is first created, and stops the cluster
# cleanly on SIGTERM (docker stop) or SIGINT. BOREALIS_API_TOKEN (32 or more letters, digits,
# - or _) sets the API's bearer token; without it the token is in /var/lib/borealis/api-token.
#
#   docker-entrypoint.sh [borealis up flags...]   the dev cluster (default)
#   docker-entrypoint.sh <command> [args...]       any other command, e.g. bash or borealis
set -eu

HOME_DIR=${BOREALIS_HOME:-/var/lib/borealis}
CLUSTER=borealis
READY=/run/borealis/ready
INIT_DONE="$HOME_DIR/.docker-initdb-done"

pid=""
log() { printf 'borealis-entrypoint: %s\n' "$*"; }
# fail stops the cluster cleanly (when it runs) and exits with the reason.
fail() {
	printf 'borealis-entrypoint: error: %s\n' "$*" >&2
	if [ -n "$pid" ]; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	exit 1
}

if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
	exec "$@"
fi

if [ -z "${BOREALIS_MASTER_PASSWORD:-}" ]; then
	cat >&2 <<'MSG'
borealis-entrypoint: error: BOREALIS_MASTER_PASSWORD is not set.
       The cluster's endpoints listen on every interface and require a password: set one for the
       master user (BOREALIS_MASTER_USER, default admin; 8-128 printable ASCII characters
       but / " @ and space), for example

           docker run -p 5433:5433 -p 5434:5434 -e BOREALIS_MASTER_PASSWORD=change-me-please borealis:dev

       The password is set when the cluster is first created in /var/lib/borealis.
MSG
	exit 1
fi
# `borealis up` reads BOREALIS_MASTER_USER, BOREALIS_MASTER_PASSWORD and BOREALIS_DATABASE itself
# (its defaults: user admin, no extra database); the init scripts connect with the same.
MASTER_USER="${BOREALIS_MASTER_USER:-admin}"
DATABASE="${BOREALIS_DATABASE:-postgres}"
READERS="${BOREALIS_READERS:-1}"
case "$READERS" in
	''|*[!0-9]*) fail "BOREALIS_READERS=$READERS is not a whole number: use 0 to 15 readers" ;;
esac
[ "$READERS" -le 15 ] || fail "BOREALIS_READERS=$READERS is too many: use 0 to 15 readers"

case "${BOREALIS_MIN_CAPACITY:-}${BOREALIS_MAX_CAPACITY:-}${BOREALIS_SECONDS_UNTIL_AUTO_PAUSE:-}" in
	*[!0-9.]*) fail "BOREALIS_MIN_CAPACITY, BOREALIS_MAX_CAPACITY and BOREALIS_SECONDS_UNTIL_AUTO_PAUSE take numbers" ;;
esac

# The serverless configuration, as flags: `borealis up` checks them before it starts anything
# (a bad value used to be found only after the whole cluster was created) and creates the
# cluster with the capacities; the `cluster modify` below applies them all once the cluster is
# available, auto-pause included (not earlier: a short pause must not come before the init
# scripts and the ready line).
upflags=""
modify=""
[ -n "${BOREALIS_MIN_CAPACITY:-}" ] && upflags="$upflags --min-capacity $BOREALIS_MIN_CAPACITY"
[ -n "${BOREALIS_MAX_CAPACITY:-}" ] && upflags="$upflags --max-capacity $BOREALIS_MAX_CAPACITY"
[ -n "${BOREALIS_SECONDS_UNTIL_AUTO_PAUSE:-}" ] && upflags="$upflags --seconds-until-auto-pause $BOREALIS_SECONDS_UNTIL_AUTO_PAUSE"
modify="$upflags"
[ -n "${BOREALIS_SECONDS_UNTIL_AUTO_PAUSE:-}" ] && modify="$modify --auto-pause"

mkdir -p /run/borealis "$HOME_DIR"
rm -f "$READY"
log "starting cluster $CLUSTER ($READERS reader(s)) in $HOME_DIR"
if [ -n "${BOREALIS_API_TOKEN:-}" ]; then
	case "$BOREALIS_API_TOKEN" in
		*[!A-Za-z0-9_-]*) fail "BOREALIS_API_TOKEN may hold only letters, digits, - and _" ;;
	esac
	[ "${#BOREALIS_API_TOKEN}" -ge 32 ] || fail "BOREALIS_API_TOKEN is ${#BOREALIS_API_TOKEN} characters: use 32 or more"
	(umask 077 && printf '%s\n' "$BOREALIS_API_TOKEN" >"$HOME_DIR/api-token")
fi

# shellcheck disable=SC2086 # $upflags splits into flags on purpose
borealis up --home "$HOME_DIR" --name "$CLUSTER" --readers "$READERS" \
	--port 5433 --reader-port 5434 --listen-address 0.0.0.0 --api-address 0.0.0.0:8433 $upflags "$@" &
pid=$!
# docker stop sends SIGTERM to tini, tini to this shell: hand it to `borealis up`, which stops
# the routers and the nodes (fast shutdown) and exits.
trap 'kill -TERM "$pid" 2>/dev/null || true' TERM INT

cluster_status() {
	borealis cluster describe "$CLUSTER" --home "$HOME_DIR" --output json 2>/dev/null |
		sed -n 's/^ *"Status": "\([a-z-]*\)",*$/\1/p' | head -n 1
}

# Wait for the cluster, then run the init scripts once, as the postgres image does.
while :; do
	if ! kill -0 "$pid" 2>/dev/null; then
		status=0
		wait "$pid" || status=$?
		# 2: `borealis up` refused a flag (its message is above); name the variable it came from.
		[ "$status" -ne 2 ] || printf 'borealis-entrypoint: error: %s\n' \
			"check the environment: --master-user-password is BOREALIS_MASTER_PASSWORD, --min-capacity BOREALIS_MIN_CAPACITY, --max-capacity BOREALIS_MAX_CAPACITY, --seconds-until-auto-pause BOREALIS_SECONDS_UNTIL_AUTO_PAUSE" >&2
		exit "$status"
	fi
	# A restarted cluster keeps its auto-pause: it may pause before this loop looks (the init
	# scripts' and clients' logins resume it).
	case "$(cluster_status)" in available | paused) break ;; esac
	sleep 0.5
done

# The serverless configuration, on every start: a cluster created by an earlier start keeps
# its own otherwise (the API validates it; a refusal stops here).
if [ -n "$modify" ]; then
	# shellcheck disable=SC2086 # the flags split on purpose
	if ! out=$(borealis cluster modify "$CLUSTER" --home "$HOME_DIR" $modify 2>&1); then
		fail "applying the serverless configuration ($modify): $out"
	fi
	log "serverless configuration:$modify"
fi

if [ ! -e "$INIT_DONE" ]; then
	export PGHOST=127.0.0.1 PGPORT=5433 PGUSER="$MASTER_USER" PGDATABASE="$DATABASE" \
		PGPASSWORD="$BOREALIS_MASTER_PASSWORD" PGSSLMODE=disable
	for f in /docker-entrypoint-initdb.d/*; do
		[ -e "$f" ] || continue
		case "$f" in
			*.sh) log "running $f"; sh "$f" || fail "init script $f failed" ;;
			*.sql) log "running $f"; psql -v ON_ERROR_STOP=1 -q -f "$f" || fail "init script $f failed" ;;
			*.sql.gz) log "running $f"; gunzip -c "$f" | psql -v ON_ERROR_STOP=1 -q || fail "init script $f failed" ;;
			*) log "ignoring $f (not .sh, .sql or .sql.gz)" ;;
		esac
	done
	unset PGPASSWORD
	touch "$INIT_DONE"
fi
touch "$READY"
log "container ready: cluster $CLUSTER is available"

# A trapped signal (docker stop) interrupts wait with 128+15 while borealis up is still stopping
# the cluster: wait again, and exit with borealis up's own status (0 after a clean stop).
while :; do
	status=0
	wait "$pid" || status=$?
	[ "$status" -gt 128 ] || break
	kill -0 "$pid" 2>/dev/null && continue
	# It exited after the interrupted wait: its status is still to be collected.
	again=0
	wait "$pid" 2>/dev/null || again=$?
	[ "$again" -eq 127 ] || status=$again
	break
done
exit "$status"
