# strata — the two commands a newcomer types: `make run` and `make test`.
# Everything is built by CMake in build/ (build-asan/ for the sanitizer run).

BUILD      ?= build
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
PREFIX     ?= /usr/local
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE      ?= cmake

.PHONY: all run test test-fast test-asan test-tsan install clean format

all:
	@$(CMAKE) -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	@$(CMAKE) --build $(BUILD) -j $(JOBS)

# The main job: the quick side-by-side comparison of strata's malloc with
# glibc's and every peer installed (jemalloc, tcmalloc, mimalloc), under a
# minute; `./build/strata bench` is the full run (docs/bench.md).
run: all
	./$(BUILD)/strata bench --quick

# Every test, in a release build with assertions, then once more under
# AddressSanitizer + UndefinedBehaviorSanitizer, and the malloc's thread
# and fork tests under ThreadSanitizer; the plain Release build (what
# `make run` and `make install` use) must compile too.
test: all test-fast test-asan test-tsan

test-fast:
	@$(CMAKE) -S . -B $(BUILD)-check -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTRATA_DEBUG_LEVEL=3 >/dev/null
	@$(CMAKE) --build $(BUILD)-check -j $(JOBS)
	cd $(BUILD)-check && ctest --output-on-failure -j $(JOBS)

test-asan:
	@$(CMAKE) -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DSTRATA_SANITIZE=address,undefined >/dev/null
	@$(CMAKE) --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && STRATA_TEST_SCALE=0.25 ctest --output-on-failure -j $(JOBS)

TSAN_TESTS = malloc/threads malloc/fork
# history_size=4: each thread's last 512 K accesses are kept, so the stack
# of a race's earlier access can be restored and a suppression can match
# it (tests/tsan.supp); with the default 128 K a statistics reader's stack
# was once lost and its suppressed race reported.
test-tsan:
	@$(CMAKE) -S . -B $(TSAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTRATA_SANITIZE=thread >/dev/null
	@$(CMAKE) --build $(TSAN_BUILD) -j $(JOBS) --target $(subst /,-,$(addprefix test-,$(TSAN_TESTS)))
	cd $(TSAN_BUILD) && TSAN_OPTIONS="halt_on_error=1 history_size=4 suppressions=$(CURDIR)/tests/tsan.supp" ctest --output-on-failure -R '^($(subst $(eval) ,|,$(TSAN_TESTS)))$$'

install: all
	$(CMAKE) --install $(BUILD) --prefix $(PREFIX)

format:
	clang-format -i include/*.h include/strata/*.h src/*.[ch] tools/strata/*.[ch] bench/*.c tests/*.h tests/*/*.c

clean:
	rm -rf $(BUILD) $(BUILD)-check $(ASAN_BUILD) $(TSAN_BUILD)
