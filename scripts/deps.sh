#!/usr/bin/env bash
# Installs everything Borealis needs on a fresh Debian (bookworm) machine, idempotently:
#   - PostgreSQL 15 server and its server headers (PGXS),
#   - build tools and qemu-user-static (the arm64 SIMD tests run under it),
#   - pgvector 0.8.0, built from Debian's *source* package against PostgreSQL 15.
#   - python3-psycopg2, the client the seed-code test (cmd/borealis) runs as a user would.
# Each step says what it did. A step that cannot be done stops the script with the reason.
set -euo pipefail

PG_MAJOR=15
PGVECTOR_VERSION=0.8.0
PG_CONFIG=/usr/lib/postgresql/${PG_MAJOR}/bin/pg_config
SRC_LIST=/etc/apt/sources.list.d/borealis-pgvector-src.sources
BUILD_DIR=${BOREALIS_DEPS_DIR:-/var/cache/borealis-deps}

say() { printf 'deps: %s\n' "$*"; }
die() { printf 'deps: ERROR: %s\n' "$*" >&2; exit 1; }

SUDO=
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || die "run as root or install sudo: installing packages needs root"
  SUDO=sudo
fi

apt_updated=0
apt_update_once() {
  if [ "$apt_updated" -eq 0 ]; then
    say "apt-get update"
    $SUDO apt-get update -qq || die "apt-get update failed: check the Debian mirrors in /etc/apt"
    apt_updated=1
  fi
}

# Packages, installed only when missing.
want=(postgresql-${PG_MAJOR} postgresql-server-dev-${PG_MAJOR} postgresql-contrib build-essential
      dpkg-dev pkg-config ca-certificates git procps qemu-user-static binfmt-support
      python3 python3-psycopg2)
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt_update_once
  say "installing: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    || die "apt-get install ${missing[*]} failed"
else
  say "Debian packages already installed"
fi
[ -x "$PG_CONFIG" ] || die "$PG_CONFIG not found after installing postgresql-server-dev-${PG_MAJOR}"

# Debian may start a packaged cluster on 5432; Borealis runs its own clusters, so leave it alone
# but make sure the socket directory exists for our servers.
$SUDO install -d -o postgres -g postgres -m 2775 /var/run/postgresql

# pgvector from Debian's source package. Only a deb-src entry is added: no binary package source
# from trixie is ever used, so nothing else on the machine moves to trixie.
installed_pgvector() {
  local ctl
  ctl="$($PG_CONFIG --sharedir)/extension/vector.control"
  [ -f "$ctl" ] && [ -f "$($PG_CONFIG --pkglibdir)/vector.so" ] &&
    grep -q "default_version = '${PGVECTOR_VERSION}'" "$ctl"
}
if installed_pgvector; then
  say "pgvector ${PGVECTOR_VERSION} already installed for PostgreSQL ${PG_MAJOR}"
else
  if [ ! -f "$SRC_LIST" ]; then
    say "adding deb-src entry for trixie (source packages only) in $SRC_LIST"
    $SUDO tee "$SRC_LIST" >/dev/null <<EOF
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    apt_updated=0
  fi
  apt_update_once
  $SUDO mkdir -p "$BUILD_DIR"
  cd "$BUILD_DIR"
  srcver=$(apt-cache showsrc pgvector 2>/dev/null | awk '/^Version:/{print $2}' | grep "^${PGVECTOR_VERSION}" | head -n1 || true)
  [ -n "$srcver" ] || die "Debian source package pgvector ${PGVECTOR_VERSION} not found (apt-cache showsrc pgvector); check $SRC_LIST"
  say "fetching source package pgvector=${srcver}"
  rm -rf "$BUILD_DIR"/pgvector-*
  $SUDO apt-get source -qq --download-only "pgvector=${srcver}" >/dev/null || die "apt-get source pgvector=${srcver} failed"
  dsc=$(ls pgvector_*.dsc | head -n1)
  dpkg-source -x "$dsc" pgvector-src >/dev/null || die "dpkg-source -x $dsc failed"
  say "building pgvector against $($PG_CONFIG --version)"
  make -s -C pgvector-src PG_CONFIG="$PG_CONFIG" >/dev/null 2>build.log || { tail -20 build.log; die "pgvector build failed (log: $BUILD_DIR/build.log)"; }
  make -s -C pgvector-src PG_CONFIG="$PG_CONFIG" install >/dev/null || die "pgvector install failed"
  installed_pgvector || die "pgvector install finished but vector.control does not say ${PGVECTOR_VERSION}"
  say "pgvector ${PGVECTOR_VERSION} installed"
fi

# Go is on the machine image; say so plainly if it is not.
command -v go >/dev/null || [ -x /usr/local/go/bin/go ] || die "Go 1.26 not found: install it in /usr/local/go"

say "all dependencies present"
