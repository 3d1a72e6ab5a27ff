#!/bin/sh
# SPDX-License-Identifier: MIT
# Installs the build into a scratch prefix and builds a program against it
# three ways: with the flags of strata.pc (through pkg-config when it is
# installed, else read from the file), and with CMake's find_package(strata)
# — shared and static. Each program runs and must print "ok".
# usage: install.sh STRATA_PROGRAM SOURCE_DIR
build=$(dirname "$1")
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
passed=0
failed=0
result() {
    if [ "$1" -eq 0 ]; then
        passed=$((passed + 1)); echo "ok: $2"
    else
        failed=$((failed + 1)); echo "FAIL: $2"
    fi
}

cmake --install "$build" --prefix "$prefix" >/dev/null
for f in bin/strata include/strata.h include/strata/buddy.h include/strata/slab.h \
    include/strata/pool.h include/strata/heap.h include/strata/tlsf.h libstrata.a \
    strata.pc strataConfig.cmake strataTargets.cmake; do
    find "$prefix" -path "*$f" | grep -q .
    result $? "installed $f"
done
libdir=$(dirname "$(find "$prefix" -name strata.pc)")/..
ls "$libdir"/libstrata.so* >/dev/null 2>&1
result $? "installed libstrata.so"
"$prefix/bin/strata" --version | grep -q strata
result $? "installed strata program runs"

mkdir -p "$prefix/app"
cat >"$prefix/app/app.c" <<'C'
#include <stdio.h>
#include <strata.h>
int main(void)
{
    static char region[1 << 16] __attribute__((aligned(4096)));
    strata_buddy *b = strata_buddy_create(region, sizeof(region), 64);
    void *p = b ? strata_buddy_alloc(b, 100) : NULL;
    int ok = p && strata_buddy_free(b, p) == 0 && strata_buddy_check(b) == 0;
    puts(ok ? "ok" : "broken");
    return !ok;
}
C

pc="$(find "$prefix" -name strata.pc)"
if command -v pkg-config >/dev/null 2>&1; then
    flags=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --cflags --libs strata)
    how="pkg-config"
else
    # the same fields, expanded by hand
    expand() {
        sed -e "s|\${includedir}|\${prefix}/include|g" -e "s|\${libdir}|\${prefix}/lib|g" \
            -e "s|\${prefix}|$(sed -n 's/^prefix=//p' "$pc")|g" -e "s|\${pcfiledir}|$(dirname "$pc")|g"
    }
    flags=$(sed -n -e 's/^Cflags: //p' -e 's/^Libs: //p' "$pc" | expand | expand | tr '\n' ' ')
    how="strata.pc read by hand (no pkg-config here)"
fi
# shellcheck disable=SC2086
cc "$prefix/app/app.c" -o "$prefix/app/app-pc" $flags -Wl,-rpath,"$libdir" &&
    "$prefix/app/app-pc" | grep -qx ok
result $? "program built with strata.pc flags ($how)"

cat >"$prefix/app/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.16)
project(app C)
find_package(strata REQUIRED)
add_executable(app-shared app.c)
target_link_libraries(app-shared PRIVATE strata::strata)
add_executable(app-static app.c)
target_link_libraries(app-static PRIVATE strata::strata_static)
CM
cmake -S "$prefix/app" -B "$prefix/app/build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null &&
    cmake --build "$prefix/app/build" >/dev/null
result $? "find_package(strata) configures and builds"
"$prefix/app/build/app-shared" | grep -qx ok
result $? "program linked with strata::strata runs"
"$prefix/app/build/app-static" | grep -qx ok
result $? "program linked with strata::strata_static runs"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
