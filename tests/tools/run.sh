#!/bin/sh
# SPDX-License-Identifier: MIT
#
# run.sh — end-to-end tests of `strata run`: the program's output and exit
# status pass through, a program killed by a signal gives 128+N, a missing
# program gives 127, no command gives 2, --stats prints strata's report
# (figures, slabinfo lines, buddyinfo lines) and a summary line, and
# --stats-file keeps one report per process that allocated.
#
# In a sanitizer build libstrata.so carries the sanitizer's runtime and
# cannot be preloaded into a plain program; the test then checks only the
# usage errors and says why.
#
# usage: sh tests/tools/run.sh PATH-TO-STRATA SOURCE-DIR

STRATA=$1
if [ -z "$STRATA" ] || [ ! -x "$STRATA" ]; then
    echo "usage: sh run.sh PATH-TO-STRATA SOURCE-DIR" >&2
    exit 2
fi
LIB=$(dirname "$STRATA")/libstrata.so
TMP=$(mktemp -d "${TMPDIR:-/tmp}/strata-run-test.XXXXXX") || exit 2
trap 'rm -rf "$TMP"' EXIT INT TERM
PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); echo "ok: $1"; }
fail() { FAILED=$((FAILED + 1)); echo "FAILED: $1"; }
check() { if eval "$2"; then pass "$1"; else fail "$1"; fi; }

"$STRATA" run >"$TMP/none.out" 2>"$TMP/none.err"
check "no command: exit 2 and a message" '[ $? -eq 2 ] && grep -q "no command" "$TMP/none.err"'
"$STRATA" run --frobnicate -- true >/dev/null 2>"$TMP/bad.err"
check "unknown option: exit 2" '[ $? -eq 2 ] && [ -s "$TMP/bad.err" ]'

if nm -D "$LIB" 2>/dev/null | grep -q "__asan_init\|__tsan_init" ||
    ! LD_PRELOAD="$LIB" /bin/true 2>/dev/null; then
    echo "skipped the runs: $LIB is a sanitizer build, which cannot be preloaded into a plain program"
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
    exit
fi

out=$("$STRATA" run -- /bin/echo hello 2>"$TMP/echo.err")
check "the program's output passes through" '[ "$out" = hello ]'
"$STRATA" run -- sh -c 'exit 3' 2>/dev/null
check "the exit status passes through" '[ $? -eq 3 ]'
"$STRATA" run -- sh -c 'kill -TERM $$' 2>"$TMP/sig.err"
check "a signal gives 128+N and is named" '[ $? -eq 143 ] && [ -s "$TMP/sig.err" ]'
"$STRATA" run -- "$TMP/no-such-program" 2>"$TMP/missing.err"
check "a missing program gives 127 and a message" '[ $? -eq 127 ] && grep -q "no-such-program" "$TMP/missing.err"'

out=$("$STRATA" run --stats -- /bin/echo hello 2>"$TMP/stats.err")
check "--stats: the output still passes through" '[ "$out" = hello ]'
check "--stats: the report names the process" 'grep -q "^strata stats: pid [0-9]" "$TMP/stats.err"'
check "--stats: live, resident and mapped bytes" \
    'grep -q "^live " "$TMP/stats.err" && grep -q "^resident " "$TMP/stats.err" && grep -q "^mapped " "$TMP/stats.err"'
check "--stats: a /proc/slabinfo 2.1 header and a line per class in use" \
    'grep -q "^slabinfo - version: 2.1" "$TMP/stats.err" && grep -Eq "^strata-[0-9]+ +[0-9]+ +[0-9]+ .*: tunables .*: slabdata" "$TMP/stats.err"'
check "--stats: a /proc/buddyinfo line per segment" 'grep -Eq "^Node 0, zone +seg0( +[0-9]+){11}" "$TMP/stats.err"'

"$STRATA" run --stats-file "$TMP/reports" -- sh -c '/bin/echo a >/dev/null; /bin/echo b >/dev/null; exit 0' 2>/dev/null
n=$(grep -c "^strata stats: pid" "$TMP/reports" 2>/dev/null)
# the two programs report; the shell too if it allocates (dash does not)
check "--stats-file: one report per process (two programs and the shell: $n)" '[ "$n" -ge 2 ]'

STRATA_DECAY_MS=nonsense "$STRATA" run -- /bin/echo x >/dev/null 2>"$TMP/opt.err"
check "a bad option value is reported once" '[ "$(grep -c "STRATA_DECAY_MS=nonsense" "$TMP/opt.err")" -ge 1 ]'

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
