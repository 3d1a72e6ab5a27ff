#!/bin/sh
# SPDX-License-Identifier: MIT
#
# preload.sh — strata's malloc must work in every real program. Each
# workload runs twice, once on the C library's malloc and once with
# libstrata.so in LD_PRELOAD, and the two runs must agree exactly: exit
# status, stdout and stderr. The strata run writes its reports to a file
# (STRATA_STATS_FILE), which proves that the library was loaded and served
# allocations in every process that should have one.
#
# Workloads: small programs of our own (tests/preload/*.c: threads, fork,
# dlopen and thread-local storage, constructors and destructors, C library
# internals), a C++ program (operator new and delete, exceptions,
# thread_local destructors, static constructors), python3 with
# PYTHONMALLOC=malloc, sqlite3 inserting and querying 100k rows, git making
# commits, gc and fsck, and the C compiler building a generated file.
#
# A program that is not installed is skipped with the package to install,
# except when CI is set: then it is a failure. Under a sanitizer build the
# library carries the sanitizer's runtime and cannot be preloaded into a
# plain program: the script says so and passes.
#
# usage: sh tests/tools/preload.sh PATH-TO-STRATA SOURCE-DIR
# STRATA_LIB=PATH overrides the library (default: libstrata.so beside the
# strata program), e.g. to try another malloc with the same workloads.

STRATA=$1
SRC=$2
if [ -z "$STRATA" ] || [ -z "$SRC" ] || [ ! -d "$SRC/tests/preload" ]; then
    echo "usage: sh preload.sh PATH-TO-STRATA SOURCE-DIR" >&2
    exit 2
fi
LIB=${STRATA_LIB:-$(dirname "$STRATA")/libstrata.so}
case $LIB in /*) ;; *) LIB=$(pwd)/$LIB ;; esac
TMP=$(mktemp -d "${TMPDIR:-/tmp}/strata-preload.XXXXXX") || exit 2
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM
PASSED=0
FAILED=0
SKIPPED=0

pass() { PASSED=$((PASSED + 1)); echo "ok: $1"; }
fail() { FAILED=$((FAILED + 1)); echo "FAILED: $1"; }
skip() { SKIPPED=$((SKIPPED + 1)); echo "skipped: $1"; }

# need PROGRAM PACKAGE: true if PROGRAM is installed; otherwise a skip, or
# a failure where CI installs everything (CI set).
need() {
    command -v "$1" >/dev/null 2>&1 && return 0
    if [ -n "${CI:-}" ]; then
        fail "$1 not found (CI must install the package $2)"
    else
        skip "$1 not found (apt-get install $2)"
    fi
    return 1
}

# ---- the library -------------------------------------------------------

if [ ! -f "$LIB" ]; then
    echo "FAILED: no library at $LIB"
    exit 1
fi
if grep -qa -e __asan_init -e __tsan_init -e __msan_init "$LIB"; then
    echo "skipped: $LIB is built with a sanitizer, whose runtime must come first in a"
    echo "process and cannot be preloaded into an uninstrumented program; the plain"
    echo "build runs this test"
    exit 0
fi
# the real library exports its own names too; another malloc (STRATA_LIB)
# writes no strata report, so that check is left out for it
ON_STRATA=0
grep -qa strata_malloc_stats_get "$LIB" && ON_STRATA=1
[ "$ON_STRATA" = 1 ] || echo "note: $LIB is not strata's library: reports are not checked"

if LD_PRELOAD=$LIB /bin/true 2>"$TMP/true.err"; then
    pass "preload into /bin/true"
else
    fail "preload into /bin/true: $(head -3 "$TMP/true.err")"
    echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
    exit 1
fi

# ---- running a workload both ways --------------------------------------

# compare NAME MIN_REPORTS FUNCTION ARGS...: run FUNCTION DIR ARGS... in a
# fresh directory once plainly and once preloaded; the results must match
# and the preloaded run must have left at least MIN_REPORTS reports (one
# per process that exits normally).
compare() {
    t0=$(date +%s.%N)
    name=$1 min=$2
    shift 2
    mkdir "$TMP/$name.plain" "$TMP/$name.strata"
    ("$@" "$TMP/$name.plain") >"$TMP/$name.plain.out" 2>"$TMP/$name.plain.err"
    echo "status $?" >>"$TMP/$name.plain.out"
    (
        export LD_PRELOAD="$LIB${LD_PRELOAD:+:$LD_PRELOAD}"
        export STRATA_STATS_FILE="$TMP/$name.stats"
        "$@" "$TMP/$name.strata"
    ) >"$TMP/$name.strata.out" 2>"$TMP/$name.strata.err"
    echo "status $?" >>"$TMP/$name.strata.out"
    same=1
    for s in out err; do
        if ! cmp -s "$TMP/$name.plain.$s" "$TMP/$name.strata.$s"; then
            same=0
            echo "--- $name: std$s on glibc's malloc vs on strata's (first lines of the diff):"
            diff "$TMP/$name.plain.$s" "$TMP/$name.strata.$s" | head -20
        fi
    done
    if [ "$same" = 0 ]; then
        echo "--- $name: stderr on strata (last lines):"
        tail -15 "$TMP/$name.strata.err"
        fail "$name: output on strata differs from the output on glibc's malloc"
        return
    fi
    pass "$name: same output and status ($(tail -1 "$TMP/$name.plain.out")) on both"
    echo "TIME $name $(echo "$(date +%s.%N) - $t0" | bc)"
    [ "$ON_STRATA" = 1 ] || return
    reports=$(grep -c '^strata stats: pid [0-9]' "$TMP/$name.stats" 2>/dev/null)
    if [ "${reports:-0}" -ge "$min" ] &&
        grep -Eq '^strata-[0-9]+ +[1-9][0-9]* +[0-9]+ +[0-9]+ .*: tunables .*: slabdata' \
            "$TMP/$name.stats"; then
        pass "$name: ran on strata ($reports process reports with live size classes)"
    else
        fail "$name: ran on strata? ${reports:-0} reports in its stats file, at least $min expected"
    fi
}

# ---- our own programs --------------------------------------------------

# run_prog PROGRAM DIR: one of the compiled helpers, from inside DIR.
run_prog() {
    cd "$2" && "$TMP/bin/$1"
}
run_plugin() {
    cd "$1" && "$TMP/bin/dlopen" "$TMP/bin/plugin.so"
}

if need cc gcc; then
    mkdir "$TMP/bin"
    built=1
    for p in threads forks dlopen ctors; do
        cc -O2 -pthread "$SRC/tests/preload/$p.c" -o "$TMP/bin/$p" -ldl 2>"$TMP/cc-$p.err" ||
            { fail "compile tests/preload/$p.c: $(head -5 "$TMP/cc-$p.err")"; built=0; }
    done
    cc -O2 -shared -fPIC -DPRELOAD_PLUGIN "$SRC/tests/preload/dlopen.c" \
        -o "$TMP/bin/plugin.so" 2>"$TMP/cc-plugin.err" ||
        { fail "compile the plugin: $(head -5 "$TMP/cc-plugin.err")"; built=0; }
    if [ "$built" = 1 ]; then
        compare threads 1 run_prog threads
        # the parent, 20 children (two of them by exec), 18 grandchildren
        compare forks 39 run_prog forks
        compare dlopen 1 run_plugin
        compare ctors 1 run_prog ctors
    fi
fi

# ---- the C library's statistics calls reach strata's ------------------------

cat >"$TMP/mi.c" <<'EOF'
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
int main(void)
{
    void *volatile p = malloc(1 << 20);
    struct mallinfo m = mallinfo(); /* deprecated, still called */
    struct mallinfo2 m2 = mallinfo2();
    printf("%d %d\n", m.uordblks >= (1 << 20), m2.uordblks >= (1u << 20));
    fflush(stdout);
    malloc_stats(); /* to stderr */
    free(p);
    return 0;
}
EOF
if need cc gcc; then
    if cc -O2 -Wno-deprecated-declarations "$TMP/mi.c" -o "$TMP/mi" 2>"$TMP/cc-mi.err"; then
        out=$(LD_PRELOAD=$LIB "$TMP/mi" 2>"$TMP/mi.err")
        if [ "$out" = "1 1" ] && grep -q '^strata stats: pid [0-9]' "$TMP/mi.err"; then
            pass "mallinfo, mallinfo2 and malloc_stats report strata's heap"
        else
            fail "mallinfo/mallinfo2/malloc_stats under strata: '$out', $(head -2 "$TMP/mi.err")"
        fi
    else
        fail "compile the mallinfo program: $(head -5 "$TMP/cc-mi.err")"
    fi
fi

# ---- C++ ----------------------------------------------------------------

cat >"$TMP/cxx.cc" <<'EOF'
// operator new and delete, aligned new, exceptions, thread_local objects
// whose destructors allocate, static constructors and destructors.
#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

static std::mutex lock;
static std::vector<std::string> *farewells;

// Built before main: a map of strings to vectors.
static std::map<std::string, std::vector<int>> early = [] {
    std::map<std::string, std::vector<int>> m;
    for (int i = 0; i < 2000; i++)
        m["key" + std::to_string(i)] = std::vector<int>(i % 50, i);
    return m;
}();

struct Farewell {
    std::string name;
    std::vector<long> data;
    Farewell() : name("thread"), data(1000, 7) {}
    ~Farewell() { // runs at thread exit: allocates
        std::string s = name + " left " + std::to_string(data.size());
        std::lock_guard<std::mutex> g(lock);
        if (farewells)
            farewells->push_back(s);
    }
};
static thread_local Farewell farewell;

struct alignas(128) Wide {
    double v[16];
};

static long work(int seed) {
    long sum = farewell.data[0];
    std::unordered_map<int, std::string> u;
    for (int i = 0; i < 20000; i++)
        u[(i * 7919 + seed) % 30011] = std::to_string(i);
    for (auto &kv : u)
        sum += (long)kv.second.size();
    std::vector<std::unique_ptr<Wide>> w;
    for (int i = 0; i < 1000; i++) {
        w.emplace_back(new Wide());
        if (reinterpret_cast<uintptr_t>(w.back().get()) % 128 != 0)
            throw std::runtime_error("aligned new misaligned");
        w.back()->v[i % 16] = i;
    }
    for (int i = 0; i < 2000; i++) {
        try {
            if (i % 3 == 0)
                throw std::runtime_error("error " + std::to_string(i));
            sum += i;
        } catch (const std::exception &e) {
            sum += (long)std::string(e.what()).size();
        }
    }
    return sum;
}

int main() {
    farewells = new std::vector<std::string>();
    std::vector<std::thread> ts;
    std::vector<long> sums(6);
    for (int i = 0; i < 6; i++)
        ts.emplace_back([i, &sums] { sums[i] = work(i); });
    for (auto &t : ts)
        t.join();
    std::ostringstream os;
    for (int i = 0; i < 6; i++)
        os << "thread " << i << ": " << sums[i] << "\n";
    std::vector<std::shared_ptr<std::string>> shared;
    for (int i = 0; i < 50000; i++)
        shared.push_back(std::make_shared<std::string>(std::to_string(i * 31 % 1000)));
    std::sort(shared.begin(), shared.end(),
              [](const auto &a, const auto &b) { return *a < *b; });
    os << "early map: " << early.size() << " keys, key77 has " << early["key77"].size() << "\n";
    os << "smallest shared: " << *shared.front() << ", largest: " << *shared.back() << "\n";
    {
        std::lock_guard<std::mutex> g(lock);
        os << "thread destructors: " << farewells->size() << " ran\n";
    }
    auto *big = new int[1 << 20]();
    big[12345] = 6;
    os << "big array: " << big[12345] + big[0] << "\n";
    delete[] big;
    std::fputs(os.str().c_str(), stdout);
    delete farewells;
    farewells = nullptr; // main's own thread_local destructor runs later
    return 0;
}
EOF

cxx=""
for c in c++ g++ clang++; do
    command -v "$c" >/dev/null 2>&1 && { cxx=$c; break; }
done
if [ -z "$cxx" ]; then
    if [ -n "${CI:-}" ]; then fail "no c++ compiler (CI must install g++)"; else skip "no c++ compiler"; fi
elif $cxx -std=c++17 -O2 -pthread "$TMP/cxx.cc" -o "$TMP/cxx" 2>"$TMP/cxx.err"; then
    run_cxx() { cd "$1" && "$TMP/cxx"; }
    compare c++ 1 run_cxx
else
    fail "compile the C++ program: $(head -5 "$TMP/cxx.err")"
fi

# ---- python3 -------------------------------------------------------------

cat >"$TMP/work.py" <<'EOF'
import collections, decimal, fractions, gc, hashlib, json, queue, random, re, struct, threading, zlib

rng = random.Random(12345)
out = []

def digest(obj):
    return hashlib.sha256(repr(obj).encode()).hexdigest()[:16]

d = {}
for i in range(120000):
    d["k%07d" % rng.randrange(10**7)] = [i, str(i) * (i % 7), (i, i * 2)]
for k in list(d)[::3]:
    del d[k]
out.append(("dict", len(d), digest(sorted(d.items())[:1000])))

doc = [{"id": i, "name": "item-%d" % i, "tags": ["t%d" % (i % j) for j in range(1, 8)],
        "nested": {"a": i * 0.5, "b": [None, True, False, "x" * (i % 50)]}} for i in range(20000)]
text = json.dumps(doc, sort_keys=True)
back = json.loads(text)
out.append(("json", len(text), back == doc, digest(back[::997])))

words = ["".join(rng.choice("abcdefghij") for _ in range(rng.randrange(1, 12)))
         for _ in range(80000)]
c = collections.Counter(words)
out.append(("counter", len(c), c.most_common(5)))
s = set(words)
out.append(("set", len(s), digest(sorted(s)[:500])))
out.append(("sorted", digest(sorted(words, key=lambda w: (len(w), w))[::1000])))
pat = re.compile(r"(a+)(b|c)([d-j]*)")
out.append(("regex", sum(len(m.group(3)) for m in map(pat.search, words) if m)))

f = 1
for i in range(1, 1200):
    f *= i
out.append(("factorial", len(str(f)), str(f)[:20]))
decimal.getcontext().prec = 300
out.append(("decimal", str(decimal.Decimal(2).sqrt())[:60]))
out.append(("harmonic", digest(sum(fractions.Fraction(1, i) for i in range(1, 500)))))

blob = b"".join(struct.pack("<Iqd", i, i * 7919, i / 3) for i in range(100000))
z = zlib.compress(blob, 6)
out.append(("zlib", len(blob), len(z), zlib.decompress(z) == blob))
ba = bytearray()
for i in range(60000):
    ba += bytes([i & 255]) * (i % 13)
out.append(("bytearray", len(ba), hashlib.md5(ba).hexdigest()))

class Node:
    def __init__(self, v):
        self.v = v
        self.peers = []
nodes = [Node(i) for i in range(60000)]
for i, n in enumerate(nodes):
    n.peers.append(nodes[(i * 7) % len(nodes)])
    n.peers.append(n)
del nodes
out.append(("gc", gc.collect() > 0))

q = queue.Queue()
results = []
def producer(seed):
    r = random.Random(seed)
    for _ in range(10000):
        q.put({"v": [r.random() for _ in range(5)], "s": "p%d" % seed})
    q.put(None)
def consumer():
    total, done = 0, 0
    while done < 4:
        item = q.get()
        if item is None:
            done += 1
        else:
            total += len(item["s"]) + len(item["v"])
    results.append(total)
ts = [threading.Thread(target=producer, args=(i,)) for i in range(4)]
ts.append(threading.Thread(target=consumer))
for t in ts:
    t.start()
for t in ts:
    t.join()
out.append(("threads", results))

for line in out:
    print(*line)
EOF

wl_python() {
    cd "$1" && PYTHONMALLOC=malloc PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1 python3 "$TMP/work.py"
}
need python3 python3 && compare python3 1 wl_python

# ---- sqlite3: 100k rows ------------------------------------------------------

wl_sqlite() {
    cd "$1" || return 1
    {
        echo "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, grp INTEGER, val REAL);"
        echo "BEGIN;"
        awk 'BEGIN { for (i = 1; i <= 100000; i++)
            printf "INSERT INTO t VALUES(%d, %cname-%d-%s%c, %d, %d.25);\n",
                i, 39, (i * 7919) % 100003, substr("abcdefghijklmnopqrstuvwxyz", 1 + i % 26), 39,
                i % 97, (i * 31) % 1000 }'
        echo "COMMIT;"
    } >rows.sql
    sqlite3 db <rows.sql || return 1
    sqlite3 db <<'SQL'
CREATE INDEX t_name ON t(name);
CREATE TABLE g AS SELECT grp, count(*) AS n, sum(val) AS total FROM t GROUP BY grp;
SELECT count(*), sum(grp), min(name), max(name), round(avg(val), 4) FROM t;
SELECT grp, n, total FROM g ORDER BY total DESC LIMIT 5;
SELECT t.id, t.name FROM t JOIN g ON t.grp = g.grp WHERE g.n > 1030 ORDER BY t.name LIMIT 5;
SELECT name FROM t WHERE name LIKE 'name-4242%' ORDER BY id;
UPDATE t SET name = upper(name) || '!' WHERE id % 3 = 0;
DELETE FROM t WHERE id % 5 = 0;
SELECT count(*), sum(length(name)), group_concat(id, ',') FILTER (WHERE id < 40) FROM t;
WITH RECURSIVE fib(a, b, n) AS (SELECT 0, 1, 0 UNION ALL SELECT b, a + b, n + 1 FROM fib WHERE n < 80)
SELECT max(a) FROM fib;
VACUUM;
PRAGMA integrity_check;
SELECT count(*) FROM t WHERE name GLOB '*!';
SQL
}
need sqlite3 sqlite3 && compare sqlite3 2 wl_sqlite

# ---- git: 20 commits, gc, fsck -----------------------------------------------

wl_git() {
    cd "$1" || return 1
    export HOME="$1" GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null LC_ALL=C TZ=UTC
    export GIT_AUTHOR_NAME=Strata GIT_AUTHOR_EMAIL=strata@example.org
    export GIT_COMMITTER_NAME=Strata GIT_COMMITTER_EMAIL=strata@example.org
    git -c init.defaultBranch=main init -q repo && cd repo || return 1
    git config gc.auto 0
    git config gc.autoDetach false
    git config pack.threads 1
    mkdir -p src/d0 src/d1 src/d2 src/d3
    i=1
    while [ $i -le 20 ]; do
        awk -v c=$i 'BEGIN { for (f = 0; f < 12; f++) {
            file = sprintf("src/d%d/file%02d.txt", f % 4, f)
            for (l = 0; l < 200; l++)
                printf "line %d of file %d, version %d\n", l, f, (l % (c + 1) == 0 ? c : 0) > file
            close(file) } }'
        printf 'commit %d\n' $i >>CHANGES
        git add -A || return 1
        GIT_AUTHOR_DATE="@$((1700000000 + i * 3600)) +0000" \
            GIT_COMMITTER_DATE="@$((1700000000 + i * 3600)) +0000" \
            git commit -q -m "change $i" -m "Generated for the preload test." || return 1
        i=$((i + 1))
    done
    GIT_COMMITTER_DATE="@1800000000 +0000" git tag -a v1 -m "tag" HEAD~3 &&
        git branch side HEAD~7 || return 1
    git log --format='%H %ad %s' --date=iso-strict --stat=72
    git gc --quiet || return 1
    git fsck --full --strict --no-progress || return 1
    git count-objects -v | grep -v -e size-pack -e '^size:'
    git rev-list --objects --all | sort
    git diff --stat side main
    git blame -s src/d1/file05.txt | head -20
    git archive --format=tar v1 | cksum
}
need git git && compare git 20 wl_git

# ---- the C compiler on a generated file -------------------------------------

wl_cc() {
    cd "$1" || return 1
    awk 'BEGIN {
        print "#include <stdio.h>"
        for (i = 0; i < 3000; i++) {
            printf "int f%d(int x) { int s = %d; for (int k = 0; k < (x & 15); k++) ", i, i
            printf "{ switch ((k + x) %% 4) { case 0: s += k * %d; break; case 1: s ^= x << (k & 7); break; ", i % 13 + 1
            printf "case 2: s -= %d; break; default: s = s * 3 + 1; } } return s; }\n", i % 101
        }
        print "int main(void) { unsigned long sum = 0;"
        for (i = 0; i < 3000; i++)
            printf "  sum = sum * 31 + (unsigned)f%d(%d);\n", i, i % 37
        print "  printf(\"checksum %lu\\n\", sum); return 0; }"
    }' >gen.c
    cc -O2 -c gen.c -o gen.o || return 1
    cc gen.o -o gen || return 1
    ./gen
    nm gen.o | cksum
    cksum <gen.o
}
need cc gcc && need nm binutils && compare cc 3 wl_cc

echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
[ "$FAILED" = 0 ]
