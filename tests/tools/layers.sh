#!/bin/sh
# SPDX-License-Identifier: MIT
# Fails any upward dependency between the layers of src/: a file may
# include (internal header or public component header) only layers at or
# below its own. The table is the architecture (docs/DESIGN.md); a new
# file must be placed in it.
# usage: layers.sh STRATA_PROGRAM SOURCE_DIR
src="$2/src"

level() {
    case "$1" in
    bits) echo 0 ;;
    debug | defs) echo 1 ;;
    bt_heap | heap | tlsf) echo 2 ;; # embeddable: utilities only
    os) echo 2 ;;
    addrset) echo 3 ;;
    buddy) echo 4 ;;
    page_source) echo 5 ;; # the built-in sources (os, buddy)
    slab | pool) echo 6 ;;
    options) echo 2 ;;
    sizeclass) echo 7 ;; # the malloc's layers start here
    segment) echo 8 ;;
    large | theap) echo 9 ;;
    stats | malloc) echo 10 ;; # the API (strata/malloc.h) and its figures
    *) echo "" ;;
    esac
}

passed=0
failed=0
for file in "$src"/*.c "$src"/*.h; do
    [ -e "$file" ] || continue
    name=$(basename "$file" | sed 's/\.[ch]$//')
    mine=$(level "$name")
    if [ -z "$mine" ]; then
        echo "FAIL: src/$(basename "$file") has no layer in tests/tools/layers.sh"
        failed=$((failed + 1))
        continue
    fi
    ok=1
    for dep in $(sed -n 's/^#include "\(strata\/\)\{0,1\}\([a-z_]*\)\.h".*/\2/p' "$file"); do
        theirs=$(level "$dep")
        # strata/page_source.h is an interface (a struct of function
        # pointers) that any layer may take; page_source.c implements it.
        [ "$dep" = page_source ] && theirs=1
        if [ -z "$theirs" ] || [ "$theirs" -gt "$mine" ]; then
            echo "FAIL: src/$(basename "$file") (layer $mine) includes $dep.h (layer ${theirs:-unknown})"
            ok=0
        fi
    done
    if [ $ok -eq 1 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
