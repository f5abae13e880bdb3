#!/bin/sh
# SPDX-License-Identifier: MIT
# Install the Debian packages ipcx needs, by name, when run as root;
# otherwise print the exact command and fail.
#
#   liburing-dev      io_uring in tests and examples (the library itself
#                     fills SQEs without linking liburing)
#   linux-source-6.1  carries tools/testing/selftests/kselftest_harness.h
#   libboost-dev      Boost.Interprocess peers in tools/bench (C++ only)
#   gnuplot-nox       latency plots of make bench
#   g++               builds the Boost peers
set -e
PKGS="liburing-dev linux-source-6.1 libboost-dev gnuplot-nox g++ make"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

cmd="apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" != 0 ]; then
	echo "deps: missing Debian packages:$missing" >&2
	echo "deps: run as root:  apt-get update && $cmd" >&2
	exit 1
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
# A fresh machine has no package lists; update once, then install.
apt-get update -qq
$cmd
