#!/bin/sh
# SPDX-License-Identifier: MIT
#
# bench.sh — end-to-end tests of `strata bench`: usage errors, a small real
# comparison (two workloads, one run) with its table, JSON and SVG, an
# --alloc that is missing or is not a library (reported, the others still
# measured, exit 1), a workload that crashes (a FAILED row, exit 1), and
# --list. The workload programs are the bench-wl_* beside the strata
# program.
#
# Preloading a malloc library into the workload programs does not work in a
# sanitizer build (the sanitizer's runtime must come first); the test then
# compares glibc alone and says why it skipped the rest.
#
# usage: sh tests/tools/bench.sh PATH-TO-STRATA SOURCE-DIR
# Prints one line per check and "N passed, M failed"; exits 1 on a failure.

STRATA=$1
SRC=$2
if [ -z "$STRATA" ] || [ -z "$SRC" ] || [ ! -x "$STRATA" ]; then
    echo "usage: sh bench.sh PATH-TO-STRATA SOURCE-DIR" >&2
    exit 2
fi
BIN=$(dirname "$STRATA")
TMP=$(mktemp -d "${TMPDIR:-/tmp}/strata-bench-test.XXXXXX") || exit 2
trap '[ -n "$KEEP" ] || rm -rf "$TMP"' EXIT INT TERM
PASSED=0
FAILED=0
HAVE_PYTHON=0
command -v python3 >/dev/null 2>&1 && HAVE_PYTHON=1

pass() { PASSED=$((PASSED + 1)); echo "ok: $1"; }
fail() { FAILED=$((FAILED + 1)); echo "FAILED: $1"; }

# run NAME ARGS...: run strata with ARGS, keeping stdout, stderr and status.
run() {
    name=$1
    shift
    "$STRATA" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"
    echo $? >"$TMP/$name.rc"
}

expect_rc() {
    got=$(cat "$TMP/$1.rc")
    if [ "$got" = "$2" ]; then pass "$1: exit status $2"; else fail "$1: exit status $got, expected $2"; fi
}

# expect_in NAME out|err TEXT: a fixed string must appear.
expect_in() {
    if grep -qF -- "$3" "$TMP/$1.$2"; then pass "$1: $2 has '$3'"; else fail "$1: $2 lacks '$3'"; fi
}

expect_not_in() {
    if grep -qF -- "$3" "$TMP/$1.$2"; then fail "$1: $2 has '$3'"; else pass "$1: $2 has no '$3'"; fi
}

# ---- usage ----

run help bench --help
expect_rc help 0
expect_in help out "usage: strata bench"
run badopt bench --no-such-option
expect_rc badopt 2
expect_in badopt err "unknown option '--no-such-option'"
run badruns bench --runs 0
expect_rc badruns 2
expect_in badruns err "--runs wants 1..1000"
run badonly bench --only churn,nosuch
expect_rc badonly 2
expect_in badonly err "unknown workload 'nosuch'"
run badalloc bench --alloc nopath
expect_rc badalloc 2
expect_in badalloc err "--alloc wants NAME=PATH"
run list bench --list
expect_rc list 0
expect_in list out "alloc-free-simple"
expect_in list out "glibc"

# ---- can a malloc library be preloaded into the workload programs here? ----

PEER=""
for lib in /usr/lib/*-linux-gnu/libjemalloc.so.2 /usr/lib/*-linux-gnu/libmimalloc.so.2 \
    /usr/lib/*-linux-gnu/libtcmalloc_minimal.so.4; do
    if [ -f "$lib" ]; then PEER=$lib; break; fi
done
PRELOAD_OK=0
if [ -z "$PEER" ]; then
    echo "note: no peer allocator installed; comparing glibc alone"
elif LD_PRELOAD=$PEER "$BIN/bench-wl_alloc_free_simple" --iters 10 2>"$TMP/probe.err" |
    grep -qF "malloc_from=$PEER"; then
    PRELOAD_OK=1
else
    echo "note: preloading $PEER into the workload programs does not work in this build"
    echo "      (a sanitizer build: its runtime must be loaded first); comparing glibc alone:"
    head -n 2 "$TMP/probe.err" | sed 's/^/      /'
fi
if [ $PRELOAD_OK = 1 ]; then
    PEERNAME=$(basename "$PEER" | sed 's/^lib//; s/\.so.*//; s/_minimal//')
    ALLOCS="glibc,$PEERNAME"
else
    ALLOCS=glibc
fi

# ---- a small real comparison ----

run small bench --allocs "$ALLOCS" --only alloc-free-simple,churn --runs 1 --quick \
    --json "$TMP/small.json" --svg "$TMP/small.svg"
expect_rc small 0
expect_in small out "allocator"
expect_in small out "wall s"
expect_in small out "max RSS"
expect_in small out "churn: "
expect_in small out "alloc-free-simple: "
expect_in small out "summary: geometric mean"
expect_in small err "run 1 of 1"
if grep -E '^  glibc +[0-9]+\.[0-9]{3} ' "$TMP/small.out" >/dev/null; then
    pass "small: a glibc row with a wall time"
else
    fail "small: a glibc row with a wall time"
fi
if [ $PRELOAD_OK = 1 ]; then
    if [ "$(grep -cE "^  $PEERNAME +[0-9]+\\.[0-9]{3} +[0-9.]+%" "$TMP/small.out")" = 2 ]; then
        pass "small: two $PEERNAME rows"
    else
        fail "small: two $PEERNAME rows"
    fi
fi
if [ $HAVE_PYTHON = 1 ]; then
    if python3 - "$TMP/small.json" "$ALLOCS" <<'EOF'; then
import json, sys
d = json.load(open(sys.argv[1]))
allocs = sys.argv[2].split(",")
names = [w["name"] for w in d["workloads"]]
assert names == ["churn", "alloc-free-simple"], names
for w in d["workloads"]:
    assert len(w["runs"]) == len(allocs), w["runs"]
    for r in w["runs"]:
        assert r["ok"] and r["wall_s"] > 0 and r["maxrss_kib"] > 0, r
        assert r["figures"]["ops_per_s"] > 0, r
assert [s["allocator"] for s in d["summary"]] == allocs
EOF
        pass "small: JSON well-formed, one run per allocator and workload"
    else
        fail "small: JSON well-formed, one run per allocator and workload"
    fi
    if python3 -c 'import sys, xml.dom.minidom as m; d = m.parse(sys.argv[1]); assert len(d.getElementsByTagName("rect")) > 4' "$TMP/small.svg"; then
        pass "small: SVG well-formed, with bars"
    else
        fail "small: SVG well-formed, with bars"
    fi
else
    if grep -q '"workloads"' "$TMP/small.json" && tail -n 1 "$TMP/small.json" | grep -q '^}$'; then
        pass "small: JSON written"
    else
        fail "small: JSON written"
    fi
    if grep -q '</svg>' "$TMP/small.svg"; then pass "small: SVG written"; else fail "small: SVG written"; fi
fi

# ---- allocators that do not load ----

run missing bench --allocs glibc --alloc gone=/nonexistent/libgone.so --only alloc-free-simple \
    --runs 1 --quick
expect_rc missing 1
expect_in missing err "gone: /nonexistent/libgone.so: no such file"
expect_in missing out "not compared: gone"
if grep -E '^  glibc +[0-9]' "$TMP/missing.out" >/dev/null; then
    pass "missing: glibc still measured"
else
    fail "missing: glibc still measured"
fi

echo "not a library" >"$TMP/notalib.so"
run notalib bench --allocs glibc --alloc junk="$TMP/notalib.so" --only alloc-free-simple \
    --runs 1 --quick
expect_rc notalib 1
expect_in notalib err "junk: $TMP/notalib.so does not load"
expect_not_in notalib out "  junk "

# ---- a workload that crashes ----

mkdir "$TMP/fake"
cat >"$TMP/fake/bench-wl_alloc_free_simple" <<'EOF'
#!/bin/sh
echo "workload=alloc-free-simple time_s=0.1 ops_per_s=1000 ns_per_pair=1 malloc_from=libc"
EOF
cat >"$TMP/fake/bench-wl_churn" <<'EOF'
#!/bin/sh
echo "about to crash" >&2
kill -SEGV $$
EOF
chmod +x "$TMP/fake/bench-wl_alloc_free_simple" "$TMP/fake/bench-wl_churn"
run crash bench --bench-dir "$TMP/fake" --allocs glibc --only churn,alloc-free-simple --runs 2
expect_rc crash 1
expect_in crash out "FAILED in 2 of 2 runs: killed by signal 11"
expect_in crash err "churn on glibc, run 1: killed by signal 11"
expect_in crash out "summary: geometric mean"
if grep -E '^  glibc +[0-9.]+ .* 1\.00$' "$TMP/crash.out" >/dev/null; then
    pass "crash: the other workload still reported"
else
    fail "crash: the other workload still reported"
fi

echo "$PASSED passed, $FAILED failed"
[ $FAILED = 0 ]
