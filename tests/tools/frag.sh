#!/bin/sh
# SPDX-License-Identifier: MIT
#
# frag.sh — end-to-end tests of `strata frag`: the text, JSON, kernel-format
# and SVG outputs on the fixture snapshots in tests/fixtures/frag/, the exit
# status on malformed and missing input, --watch, snapshot, and one run on
# this machine's real /proc whose total free memory must agree with the
# kernel's own count.
#
# usage: sh tests/tools/frag.sh PATH-TO-STRATA SOURCE-DIR
# Prints one line per check and "N passed, M failed"; exits 1 on a failure.

STRATA=$1
SRC=$2
if [ -z "$STRATA" ] || [ -z "$SRC" ] || [ ! -x "$STRATA" ]; then
    echo "usage: sh frag.sh PATH-TO-STRATA SOURCE-DIR" >&2
    exit 2
fi
FIX=$SRC/tests/fixtures/frag
TMP=$(mktemp -d "${TMPDIR:-/tmp}/strata-frag.XXXXXX") || exit 2
trap 'rm -rf "$TMP"' EXIT INT TERM
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

# expect_rc NAME RC
expect_rc() {
    got=$(cat "$TMP/$1.rc")
    if [ "$got" = "$2" ]; then pass "$1: exit status $2"; else fail "$1: exit status $got, expected $2"; fi
}

# expect_out NAME FILE(out|err) TEXT: a fixed string must appear.
expect_in() {
    if grep -qF -- "$3" "$TMP/$1.$2"; then pass "$1: $2 has '$3'"; else fail "$1: $2 lacks '$3'"; fi
}

# ---- text reports on the fixtures ----

run healthy frag --root "$FIX/healthy"
expect_rc healthy 0
expect_in healthy out "Overall, 2 MiB (order 9): can be allocated now"
expect_in healthy out "strata frag: web-healthy, 2024-05-01 10:00:00 UTC"
expect_in healthy out "nothing to change"

run fragmented frag --root "$FIX/fragmented"
expect_rc fragmented 0
expect_in fragmented out "Overall, 2 MiB (order 9): fails now from fragmentation; compaction would help"
expect_in fragmented out "fragmentation index 0.995 > extfrag_threshold 500"
expect_in fragmented out "[vm.compaction_proactiveness]"
expect_in fragmented out "[/sys/kernel/mm/transparent_hugepage/defrag]"
# no slabinfo in this snapshot: say so and what is lost
expect_in fragmented out "Slab caches: no slabinfo"
expect_in fragmented out "What is lost"
# the order-9 row of the Normal zone: 0 blocks, unusable 1.000, index 0.995
if grep -E '^  >    9 +2M +0 +0 B +1\.000 +0\.995$' "$TMP/fragmented.out" >/dev/null; then
    pass "fragmented: order-9 row of Normal"
else
    fail "fragmented: order-9 row of Normal"
fi

run numa frag --root "$FIX/pcp-numa" --kernel-format=extfrag
expect_rc numa 0
expect_in numa out "Node 1, zone   Normal -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 -1.000  0.993  0.997  0.999 "

run order10 frag --root "$FIX/pcp-numa" --order 10
expect_rc order10 0
expect_in order10 out "Node 1, zone Normal"
expect_in order10 out "verdict for 4 MiB (order 10): fails now from fragmentation"

run o13 frag --root "$FIX/orders13" --kernel-format=unusable
expect_rc o13 0
if awk 'NF != 17 { bad = 1 } END { exit bad }' "$TMP/o13.out"; then
    pass "orders13: 13 values per zone line"
else
    fail "orders13: 13 values per zone line"
fi

run gig frag --root "$FIX/orders13" --size 1G
expect_rc gig 0
expect_in gig out "impossible from the buddy allocator"
expect_in gig out "hugepagesz=1G"

run odd frag --root "$FIX/odd-zones"
expect_rc odd 0
expect_in odd out "Node 0, zone Quirky"
expect_in odd out "watermarks: unknown"

run kvm frag --root "$FIX/hotsos-kvm"
expect_rc kvm 0
expect_in kvm out "below its low watermark 5162"
expect_in kvm out "free blocks per migrate type"

# ---- bad input: exit 2, errors naming file and line, report still there ----

run malformed frag --root "$FIX/malformed"
expect_rc malformed 2
expect_in malformed err "malformed/proc/buddyinfo:3: a free block count is not a number"
expect_in malformed err "malformed/proc/vmstat:11:"
expect_in malformed out "Node 0, zone DMA32"
expect_in malformed out "Overall, 2 MiB (order 9)"

run truncated frag --root "$FIX/truncated"
expect_rc truncated 2
expect_in truncated err "truncated/proc/buddyinfo:3: line cut short"
expect_in truncated err "zone Normal has no 'high' line"
expect_in truncated out "Overall, 2 MiB (order 9)"

run nobuddy frag --root "$TMP/nonexistent"
expect_rc nobuddy 1
expect_in nobuddy err "cannot read proc/buddyinfo"

run badopt frag --order x
expect_rc badopt 2
run unknownopt frag --frobnicate
expect_rc unknownopt 2

# ---- JSON ----

if [ "$HAVE_PYTHON" = 1 ]; then
    for d in "$FIX"/*/; do
        n=$(basename "$d")
        "$STRATA" frag --root "$d" --json 2>/dev/null | python3 -m json.tool >/dev/null 2>&1
        if [ $? = 0 ]; then pass "json $n: valid"; else fail "json $n: not valid JSON"; fi
    done
    "$STRATA" frag --root "$FIX/fragmented" --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
z = [z for z in d["zones"] if z["zone"] == "Normal"][0]
assert z["fragmentation_index"][9] == 995, z["fragmentation_index"]
assert z["unusable_index"][1] == 144, z["unusable_index"]
assert z["verdict"]["fit"] == "compact"
assert d["overall"]["fit"] == "compact"
assert d["total_free_pages"] == 331970
assert d["slab"]["readable"] is False
' && pass "json fragmented: figures" || fail "json fragmented: figures"
else
    echo "skipped: JSON validation (python3 not found)"
fi

# ---- kernel format against the kernel's own debugfs files ----

run kfu frag --root "$FIX/vm-debugfs" --kernel-format=unusable
run kfe frag --root "$FIX/vm-debugfs" --kernel-format=extfrag
if cmp -s "$TMP/kfu.out" "$FIX/vm-debugfs/sys/kernel/debug/extfrag/unusable_index"; then
    pass "kernel format: unusable_index identical to the kernel's"
else
    fail "kernel format: unusable_index differs from the kernel's"
fi
if cmp -s "$TMP/kfe.out" "$FIX/vm-debugfs/sys/kernel/debug/extfrag/extfrag_index"; then
    pass "kernel format: extfrag_index identical to the kernel's"
else
    fail "kernel format: extfrag_index differs from the kernel's"
fi
run kfboth frag --root "$FIX/fragmented" --kernel-format
expect_in kfboth out "# /sys/kernel/debug/extfrag/extfrag_index"
expect_in kfboth out "Node 0, zone   Normal -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 -1.000  0.989  0.995  0.998 "

# ---- SVG ----

run svg frag --root "$FIX/fragmented" --svg "$TMP/chart.svg"
expect_rc svg 0
if [ "$HAVE_PYTHON" = 1 ]; then
    python3 -c 'import sys, xml.dom.minidom as m; m.parse(sys.argv[1])' "$TMP/chart.svg" \
        && pass "svg: well-formed XML" || fail "svg: not well-formed XML"
else
    echo "skipped: XML parse of the SVG (python3 not found); checking its ends only"
    head -1 "$TMP/chart.svg" | grep -q '^<?xml' && tail -1 "$TMP/chart.svg" | grep -q '^</svg>$' \
        && pass "svg: starts and ends as SVG" || fail "svg: malformed ends"
fi
expect_in svg out "Overall"
grep -q "db-fragmented, 2024-03-12 14:05:00 UTC" "$TMP/chart.svg" \
    && pass "svg: title names machine and date" || fail "svg: title lacks machine and date"

# ---- watch ----

run watch frag --root "$FIX/healthy" --watch 0.05 --count 3
expect_rc watch 0
expect_in watch out "-- sample 3"
expect_in watch out "per second: compact_stall 0.0"

# ---- this machine ----

if [ -r /proc/buddyinfo ] && [ -r /proc/meminfo ]; then
    # The report's total is the sum over buddyinfo of free blocks x 2^order
    # pages. MemFree is the kernel's NR_FREE_PAGES counter, which counts the
    # same pages, but: the files are read at different moments (memory is
    # allocated and freed in between: other tests run in parallel, some
    # moving hundreds of MiB), and the counter lags the free lists by the
    # per-CPU deltas not yet folded into it (up to stat_threshold pages per
    # CPU and zone). So the counters are read before and after the report,
    # and the total must lie between them, give or take 2% + 16 MiB; a
    # moment of heavy traffic can still spoil one try, so up to 5 are made.
    # Some kernels (memory hot-plugged or accepted lazily, balloons) put
    # memory in MemFree that no zone's free lists hold; nr_free_pages in
    # /proc/vmstat is then still the free lists' count, and is used instead.
    page_kb=$(( $(getconf PAGESIZE 2>/dev/null || echo 4096) / 1024 ))
    free_kb() {
        awk -v which="$1" -v pk="$page_kb" '
            FILENAME ~ /meminfo/ && /^MemFree:/ && which == "memfree" { print $2 }
            FILENAME ~ /vmstat/ && /^nr_free_pages / && which == "nrfree" { print $2 * pk }
        ' /proc/meminfo /proc/vmstat 2>/dev/null
    }
    # between TOTAL A B: TOTAL within [min(A,B), max(A,B)] widened by 2% + 16 MiB
    between() {
        awk -v t="$1" -v a="$2" -v b="$3" 'BEGIN {
            lo = a < b ? a : b; hi = a < b ? b : a; slack = hi / 50 + 16384
            exit !(a != "" && t >= lo - slack && t <= hi + slack) }'
    }
    verdict=""
    for try in 1 2 3 4 5; do
        mem0=$(free_kb memfree) nr0=$(free_kb nrfree)
        run live frag
        mem1=$(free_kb memfree) nr1=$(free_kb nrfree)
        total=$(sed -n 's/^Total free (buddyinfo): [0-9]* pages, \([0-9]*\) kB.*/\1/p' "$TMP/live.out")
        [ -n "$total" ] || break
        if between "$total" "$mem0" "$mem1"; then
            verdict="agrees with MemFree $mem0..$mem1 kB"
        elif [ -n "$nr0" ] && between "$total" "$nr0" "$nr1"; then
            echo "note: MemFree $mem1 kB is not the zones' free count on this kernel"
            verdict="agrees with nr_free_pages $nr0..$nr1 kB"
        fi
        [ -n "$verdict" ] && break
    done
    rc=$(cat "$TMP/live.rc")
    if [ "$rc" = 0 ]; then pass "this machine: exit status 0"; else fail "this machine: exit status $rc"; fi
    if [ -z "$total" ]; then
        fail "this machine: no 'Total free' line in the report"
    elif [ -n "$verdict" ]; then
        pass "this machine: buddyinfo total $total kB $verdict (try $try)"
    else
        fail "this machine: buddyinfo total $total kB vs MemFree $mem0..$mem1 kB, nr_free_pages $nr0..$nr1 kB, in 5 tries"
    fi
    run livepid frag --pid $$
    expect_rc livepid 0
    expect_in livepid out "Process $$"
    if "$STRATA" frag snapshot "$TMP/snap" >"$TMP/snap.out" 2>&1; then
        run snapread frag --root "$TMP/snap"
        expect_in snapread out "(snapshot)"
        rc=$(cat "$TMP/snapread.rc")
        [ "$rc" = 0 ] && pass "snapshot: readable with --root" || fail "snapshot: --root exit $rc"
    else
        fail "snapshot: strata frag snapshot failed"
    fi
else
    echo "skipped: this machine's /proc (buddyinfo or meminfo not readable)"
fi

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
