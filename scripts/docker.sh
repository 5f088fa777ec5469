#!/usr/bin/env bash
# Docker for Borealis's image and its testcontainers suite, on a fresh Debian (bookworm) machine
# as root, idempotently:
#   scripts/docker.sh daemon   installs Debian's docker.io (and debootstrap) when absent and starts
#                              dockerd when none answers, waiting for its socket;
#   scripts/docker.sh base     builds the base image (a debootstrap bookworm rootfs with
#                              PostgreSQL 15, loaded with `docker import`; no registry needed),
#                              cached in $BOREALIS_DOCKER_CACHE (default /var/cache/borealis) and
#                              as the docker image borealis-base:<hash>, whose name it prints.
# `make image` calls both. debootstrap takes a few minutes on a quiet machine (20 on a 2-core
# machine at load 28); later runs reuse the cache.
set -euo pipefail

CACHE=${BOREALIS_DOCKER_CACHE:-/var/cache/borealis}
MIRROR=${BOREALIS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
DOCKERD_LOG=${BOREALIS_DOCKERD_LOG:-/var/log/borealis-dockerd.log}
# Packages of the base rootfs. Change this list and the base is rebuilt: its tag is a hash of the
# suite and the list. The rootfs is imported as debootstrap made it; docker/Dockerfile trims it
# (docker/base-trim.sh) in a build stage, so changing the trim costs seconds, not a debootstrap.
BASE_PACKAGES=postgresql-15,tini,ca-certificates

say() { printf 'docker: %s\n' "$*" >&2; }
die() { printf 'docker: ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root: installing docker.io, starting dockerd and debootstrap need root"

install_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing: ${missing[*]}"
  apt-get update -qq || die "apt-get update failed: check the Debian mirrors in /etc/apt"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed"
}

# The docker.io client, not whatever else is first on PATH: it matches the daemon.
DOCKER=/usr/bin/docker

daemon_up() { "$DOCKER" version --format '{{.Server.Version}}' >/dev/null 2>&1; }

cmd_daemon() {
  install_packages docker.io debootstrap iptables
  if daemon_up; then
    say "dockerd $("$DOCKER" version --format '{{.Server.Version}}') already running"
    return 0
  fi
  # One starter at a time: two `make test` runs must not start two daemons.
  exec 9>/run/borealis-dockerd.lock
  flock 9
  if ! daemon_up; then
    say "starting dockerd (log: $DOCKERD_LOG)"
    # setsid: the daemon outlives this script and the make that called it, and a Ctrl-C to the
    # make does not reach it.
    setsid /usr/sbin/dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
    for _ in $(seq 1 120); do
      daemon_up && break
      sleep 0.5
    done
    daemon_up || { tail -20 "$DOCKERD_LOG" >&2; die "dockerd did not answer within 60 s (log: $DOCKERD_LOG)"; }
  fi
  flock -u 9
  say "dockerd $("$DOCKER" version --format '{{.Server.Version}}') running"
}

cmd_base() {
  cmd_daemon
  local key tag tarball rootfs
  key=$(echo "$SUITE $BASE_PACKAGES" | sha256sum | cut -c1-12)
  tag="borealis-base:$key"
  tarball="$CACHE/base-$SUITE-$key.tar"
  if "$DOCKER" image inspect "$tag" >/dev/null 2>&1; then
    say "base image $tag already loaded"
    echo "$tag"
    return 0
  fi
  mkdir -p "$CACHE"
  exec 8>"$CACHE/base.lock"
  flock 8
  if [ ! -s "$tarball" ]; then
    rootfs=$(mktemp -d "$CACHE/rootfs.XXXXXX")
    say "debootstrap $SUITE with $BASE_PACKAGES into $rootfs (a few minutes the first time; cached as $tarball)"
    debootstrap --variant=minbase --include="$BASE_PACKAGES" "$SUITE" "$rootfs" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
      || { tail -20 "$CACHE/debootstrap.log" >&2; rm -rf "$rootfs"; die "debootstrap failed (log: $CACHE/debootstrap.log)"; }
    tar -C "$rootfs" --numeric-owner -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$rootfs"
  else
    say "using cached base rootfs $tarball"
  fi
  say "docker import $tarball as $tag"
  "$DOCKER" import "$tarball" "$tag" >/dev/null || die "docker import $tarball failed"
  echo "$tag"
}

case "${1:-}" in
  daemon) cmd_daemon ;;
  base) cmd_base ;;
  *) die "usage: $0 daemon|base" ;;
esac
