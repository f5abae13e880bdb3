#!/bin/sh
# SPDX-License-Identifier: MIT
# Extract the kselftest harness headers (GPL-2.0, never committed) from the
# Debian linux-source tarball into the build folder given as $1.
set -e
out=$1
[ -n "$out" ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }

tarball=""
for t in /usr/src/linux-source-6.1.tar.xz /usr/src/linux-source-6.12.tar.xz \
	 /usr/src/linux-source-*.tar.xz; do
	if [ -f "$t" ]; then tarball=$t; break; fi
done
if [ -z "$tarball" ]; then
	echo "kselftest: no /usr/src/linux-source-*.tar.xz; run 'make deps'" >&2
	exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tar -xJf "$tarball" -C "$tmp" --wildcards \
	'*/tools/testing/selftests/kselftest_harness.h' \
	'*/tools/testing/selftests/kselftest.h'
mkdir -p "$out"
cp "$tmp"/*/tools/testing/selftests/kselftest.h "$out/kselftest.h"
# Last, so a failed extraction leaves no target behind.
cp "$tmp"/*/tools/testing/selftests/kselftest_harness.h "$out/kselftest_harness.h"
