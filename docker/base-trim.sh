#!/bin/sh
# Runs in the first stage of docker/Dockerfile, on the debootstrap rootfs: removes what a Borealis
# dev container never uses. The final stage copies the result as one layer, so what is removed
# here is really gone from the image.
set -eu
test -x /usr/lib/postgresql/15/bin/postgres || { echo "base-trim: no PostgreSQL 15 in the base" >&2; exit 1; }

# JIT: LLVM and its solver are 128 MB. PostgreSQL loads llvmjit.so only when jit is on and runs
# without JIT when the provider is absent (pg_jit_available() is false).
rm -rf /usr/lib/postgresql/15/lib/llvmjit.so /usr/lib/postgresql/15/lib/llvmjit_types.bc \
       /usr/lib/postgresql/15/lib/bitcode
rm -f /usr/lib/x86_64-linux-gnu/libLLVM-14.so* /usr/lib/llvm-14/lib/libLLVM-14.so* \
      /usr/lib/x86_64-linux-gnu/libz3.so*

# Full Perl serves only Debian's wrapper scripts (pg_ctlcluster, the psql wrapper in /usr/bin);
# the image runs the binaries in /usr/lib/postgresql/15/bin, first on PATH. perl-base stays.
rm -rf /usr/share/perl/5.36* /usr/lib/x86_64-linux-gnu/perl/5.36* /usr/lib/x86_64-linux-gnu/libperl.so*

# Debian's packaged cluster: Borealis creates its own data directories.
rm -rf /var/lib/postgresql/15/main /etc/postgresql/15/main

# Documentation, translations, locale sources (C.UTF-8 is built into glibc), package caches.
rm -rf /usr/share/doc/* /usr/share/man/* /usr/share/info/* /usr/share/locale/* /usr/share/i18n \
       /usr/share/postgresql/15/man /var/cache/apt/* /var/lib/apt/lists/* /var/cache/debconf/*-old \
       /var/log/apt/* /var/log/*.log
