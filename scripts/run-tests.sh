#!/bin/sh
# SPDX-License-Identifier: MIT
# Run kselftest programs, show their TAP, and end with one summary line:
#   check: N passed, N failed, N skipped
# A program that dies without its "# Totals" line counts as one failure.
# IPCX_TEST_TIMEOUT (seconds, default 300) bounds each program.
pass=0 fail=0 skip=0 broken=""
limit=${IPCX_TEST_TIMEOUT:-300}

for t in "$@"; do
	echo "# ---- $t"
	out=$(mktemp)
	timeout -k 10 "$limit" "$t" 2>&1 | tee "$out"
	rc=$(sed -n 's/^# Totals: pass:\([0-9]*\) fail:\([0-9]*\) xfail:\([0-9]*\) xpass:\([0-9]*\) skip:\([0-9]*\) error:\([0-9]*\).*/\1 \2 \3 \4 \5 \6/p' "$out" | tail -n 1)
	if [ -z "$rc" ]; then
		echo "# $t: no totals line (crashed or timed out)"
		fail=$((fail + 1))
		broken="$broken $t"
	else
		# The for list was expanded already: reusing $1.. is safe.
		set -- $rc
		pass=$((pass + $1 + $3))
		fail=$((fail + $2 + $4 + $6))
		skip=$((skip + $5))
		[ "$2" != 0 ] || [ "$4" != 0 ] || [ "$6" != 0 ] && broken="$broken $t"
	fi
	rm -f "$out"
done

[ -n "$broken" ] && echo "# failing:$broken"
echo "check: $pass passed, $fail failed, $skip skipped"
[ "$fail" = 0 ]
