# streamfutures -- build, test, demo, bench.
#   make demo      build, then replay seed 000 with the stdlib and with us
#   make test      build, then every test: layers, C, C under sanitizers, pytest
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
VPY = $(VENV)/bin/python
export PYTHONPATH := $(CURDIR)
CC ?= gcc
WARN = -Wall -Wextra -Werror -Wshadow
CFLAGS ?= -O2 -g
ALL_CFLAGS = -std=c11 $(WARN) $(CFLAGS) -Iinclude -pthread
CORE_SRC = $(wildcard src/core/*.c)
CORE_HDR = $(wildcard include/*.h src/core/*.h)
TEST_SRC = $(wildcard tests/c/*.c)

.PHONY: all lib c-test sanitize asan tsan venv ext py-test py-test-ft tsan-ft tsan-ft-quick bench-ft test demo bench bench-peers example layers clean fuzz fuzz-quick stress stress-quick install install-test check-exports check-platform typecheck

all: lib ext

CORE_OBJ = $(patsubst src/core/%.c,build/obj/%.o,$(CORE_SRC))

# hidden by default: only what the public headers mark SF_API is exported
build/obj/%.o: src/core/%.c $(CORE_HDR)
	@mkdir -p build/obj
	$(CC) $(ALL_CFLAGS) -fPIC -fvisibility=hidden -c $< -o $@

# made anew, so an object of a renamed or removed source never lingers
build/libstreamfutures.a: $(CORE_OBJ)
	rm -f $@
	ar rcs $@ $(CORE_OBJ)

# the version, stated once, in include/streamfutures.h
VERSION := $(shell sed -n 's/^\#define SF_VERSION_STRING "\(.*\)"/\1/p' include/streamfutures.h)
SOMAJOR := $(firstword $(subst ., ,$(VERSION)))
SONAME = libstreamfutures.so.$(SOMAJOR)

build/libstreamfutures.so.$(VERSION): $(CORE_OBJ)
	$(CC) -shared -pthread -Wl,-soname,$(SONAME) $(CORE_OBJ) -o $@

lib: build/libstreamfutures.a build/libstreamfutures.so.$(VERSION)

# no internal symbol (sf__*) leaves the shared library
check-exports: build/libstreamfutures.so.$(VERSION)
	@if nm -D --defined-only $< | grep -E ' sf__'; then echo "internal symbols exported"; exit 1; fi
	@test "$$(nm -D --defined-only $< | grep -c ' sf_')" -gt 50
	@echo "exports: $$(nm -D --defined-only $< | grep -c ' sf_') public sf_ symbols, no internal one"

PREFIX ?= /usr/local
install: lib
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 include/streamfutures.h include/streamfutures_proc.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 build/libstreamfutures.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 build/libstreamfutures.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libstreamfutures.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(PREFIX)/lib/libstreamfutures.so
	printf '%s\n' 'prefix=$(PREFIX)' 'includedir=$${prefix}/include' 'libdir=$${prefix}/lib' '' \
	  'Name: streamfutures' 'Description: lazy, bounded, streaming map and worker pools (C engine of streamfutures)' \
	  'Version: $(VERSION)' 'Cflags: -I$${includedir} -pthread' 'Libs: -L$${libdir} -lstreamfutures -pthread' \
	  > $(DESTDIR)$(PREFIX)/lib/pkgconfig/streamfutures.pc

# the C examples built against an installed copy, found with pkg-config
# (pkgconf from PyPI in the venv), linked to the shared library
INSTALL_TEST = $(CURDIR)/build/install-test
install-test: venv
	rm -rf $(INSTALL_TEST)
	$(MAKE) --no-print-directory install PREFIX=$(INSTALL_TEST)
	$(VPY) -m pip install -q pkgconf
	@for example in examples/c/*.c; do \
	  out=build/installed_$$(basename $$example .c); \
	  $(CC) -std=c11 $(WARN) $$example -o $$out \
	    $$(PKG_CONFIG_PATH=$(INSTALL_TEST)/lib/pkgconfig $(VENV)/bin/pkgconf --cflags --libs streamfutures) || exit 1; \
	  readelf -d $$out | grep -q 'NEEDED.*$(SONAME)' || { echo "$$out does not use $(SONAME)"; exit 1; }; \
	done
	@test "$$(seq 1 1000 | LD_LIBRARY_PATH=$(INSTALL_TEST)/lib ./build/installed_fanout_stats -b 16)" = "count=1000 sum=500500 min=1 max=1000"
	@seq 1 2000 | LD_LIBRARY_PATH=$(INSTALL_TEST)/lib ./build/installed_ordered_lines -j 4 -w 8 | cmp - <(seq 1 2000 | tr a-z A-Z)
	@echo "install: examples/c built with pkg-config against $(SONAME) $(VERSION), installed under build/install-test"

# a platform without futex, pidfd and memfd is refused at once, by name
check-platform:
	@if $(CC) -U__linux__ -fsyntax-only -Iinclude src/core/sync.c 2>build/platform.txt; then \
	  echo "a non-Linux build was not refused"; exit 1; fi
	@grep -q 'streamfutures needs Linux' build/platform.txt && echo "platform: a non-Linux build stops at once with a message that says why"

# --wrap=realloc: tests/c/test_map.c makes the engine's reallocs fail
TEST_LDFLAGS = -Wl,--wrap=realloc

build/test_runner: $(TEST_SRC) tests/c/test.h build/libstreamfutures.a
	$(CC) $(ALL_CFLAGS) -Itests/c $(TEST_SRC) build/libstreamfutures.a $(TEST_LDFLAGS) -o $@

build/%/test_runner: $(TEST_SRC) tests/c/test.h $(CORE_SRC) $(CORE_HDR)
	@mkdir -p build/$*
	$(CC) $(ALL_CFLAGS) -O1 -fno-omit-frame-pointer $(SAN_$*) -Itests/c $(TEST_SRC) $(CORE_SRC) $(TEST_LDFLAGS) -o $@

SAN_asan = -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all
SAN_tsan = -fsanitize=thread

# the decoders of what a worker sends, fed mutated traffic (tests/fuzz/):
# a fixed count in `make test`, longer in `make fuzz`
build/fuzz_proc: tests/fuzz/fuzz_proc.c $(CORE_SRC) $(CORE_HDR)
	@mkdir -p build
	$(CC) $(ALL_CFLAGS) -O1 -fno-omit-frame-pointer $(SAN_asan) -Isrc/core tests/fuzz/fuzz_proc.c $(CORE_SRC) -o $@

FUZZ_ROUNDS ?= 3000
fuzz-quick: build/fuzz_proc ext
	ASAN_OPTIONS=detect_leaks=1 ./build/fuzz_proc $(FUZZ_ROUNDS) 1
	$(VPY) tests/fuzz/fuzz_wire.py $$(( $(FUZZ_ROUNDS) * 10 )) 1

fuzz:
	$(MAKE) fuzz-quick FUZZ_ROUNDS=300000

# every fault mode x API x pool x start method, each run in a fresh
# interpreter (tests/stress/): once each in `make test`, 8 times in `make stress`
stress-quick: ext
	$(VPY) tests/stress/stress.py --repeat 1

stress: ext
	$(VPY) tests/stress/stress.py --repeat 8

# the stubs give generic results: mypy --strict over the examples and
# tests/typing/ (assert_type checks)
typecheck: venv
	$(VPY) -m pip install -q mypy typing_extensions
	$(VENV)/bin/mypy --strict examples/ tests/typing/

c-test: build/test_runner
	./build/test_runner

asan: build/asan/test_runner
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ./build/asan/test_runner

tsan: build/tsan/test_runner
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" setarch $$(uname -m) -R ./build/tsan/test_runner

sanitize: asan tsan

build/example_%: examples/c/%.c build/libstreamfutures.a
	$(CC) $(ALL_CFLAGS) $< build/libstreamfutures.a -o $@

# the C examples: every line transformed, in input order; every statistic
# of one input read once by four threads
example: build/example_ordered_lines build/example_fanout_stats
	@seq 1 20000 | sed 's/$$/ line of text/' > build/example_in.txt
	@./build/example_ordered_lines -j 4 -w 16 < build/example_in.txt > build/example_out.txt
	@tr a-z A-Z < build/example_in.txt | cmp - build/example_out.txt
	@./build/example_ordered_lines -j 8 -w 4 -d 200 < build/example_in.txt | head -n 1000 | tr A-Z a-z | cmp - <(head -n 1000 build/example_in.txt)
	@echo "example: 20000 lines transformed in order"
	@test "$$(seq 1 300000 | ./build/example_fanout_stats -b 64)" = "count=300000 sum=45000150000 min=1 max=300000"
	@echo "example: 300000 numbers fanned out to 4 threads through a 64-slot ring"

# remade when this file changes: the packages the venv needs are listed here
# (mpich: the MPI runtime and its mpiexec, as a wheel beside mpi4py's, the
# pairing mpi4py's documentation gives; loky, Dask distributed and mpi4py
# are the foreign executors sf.map is tested on)
VENV_PACKAGES = pytest hypothesis tqdm uvloop distributed loky mpi4py mpich
$(VENV)/.stamp: Makefile
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip setuptools wheel $(VENV_PACKAGES)
	touch $@

venv: $(VENV)/.stamp

# a development build: warnings are errors (a user's pip install does not set it)
ext: venv
	STREAMFUTURES_WERROR=1 $(VPY) setup.py -q build_ext --inplace

py-test: ext
	$(VPY) -m pytest -q -rs tests/python

# The free-threaded CPython 3.13t, built once from source and cached by
# tools/free-threaded-python.sh (no registry serves one).  py-test-ft runs
# the whole suite with the GIL off (importing us must not turn it on; the
# suite fails if anything did), then the thread tests concurrently on 4
# threads each (pytest-run-parallel, as the free-threading ecosystem tests
# itself), then the fault matrix.  hypothesis: its later releases need a
# Rust build that has no 3.13t wheel.
FT_VENV ?= .venv-3.13t
FT_PARALLEL_TESTS = tests/python/test_map.py tests/python/test_tee.py tests/python/test_async.py \
    tests/python/test_stream.py tests/python/test_fanout.py
$(FT_VENV)/.stamp: Makefile tools/free-threaded-python.sh
	rm -rf $(FT_VENV)
	py=$$(tools/free-threaded-python.sh) && "$$py" -m venv $(FT_VENV)
	$(FT_VENV)/bin/python -m pip install -q --upgrade pip setuptools wheel \
	    $(subst hypothesis,"hypothesis<6.155",$(VENV_PACKAGES)) pytest-run-parallel
	touch $@

py-test-ft: $(FT_VENV)/.stamp
	STREAMFUTURES_WERROR=1 $(FT_VENV)/bin/python setup.py -q build_ext --inplace
	$(FT_VENV)/bin/python -m pytest -q -rs tests/python
	$(FT_VENV)/bin/python -m pytest -q --parallel-threads=4 $(FT_PARALLEL_TESTS)
	$(FT_VENV)/bin/python tests/stress/stress.py --repeat 1

# The thread tests and the fanout/tee/map/Stream tests under ThreadSanitizer:
# a TSan build of 3.13t, and the extension built by it (its CFLAGS carry
# -fsanitize=thread) into build/tsan-ft, beside a copy of the package, and
# imported from there (python -P: `-m` would put the checkout first, with
# its uninstrumented in-place build, and TSan would not see the engine's
# atomics order anything: every item handed between threads a "race").  A
# report makes the run exit 66; the only suppressions are CPython's own
# (its Tools/tsan/suppressions_free_threading.txt, for races inside it) and
# tests/tsan_ft_suppressions.txt (each report inside CPython, with its
# reason).  -s: a passing test's reports are shown too.  About 2 minutes on
# 2 cores once the TSan CPython is built.  `make test` runs tsan-ft-quick:
# the tests that hammer one object from many threads and the tee/fanout
# ones (one input's exception raised in several readers at once).
FT_TSAN_VENV ?= .venv-3.13t-tsan
FT_TSAN_TESTS = tests/python/test_free_threading.py tests/python/test_tee.py \
    tests/python/test_fanout.py tests/python/test_map.py tests/python/test_stream.py
$(FT_TSAN_VENV)/.stamp: Makefile tools/free-threaded-python.sh
	rm -rf $(FT_TSAN_VENV)
	py=$$(tools/free-threaded-python.sh tsan) && "$$py" -m venv $(FT_TSAN_VENV)
	$(FT_TSAN_VENV)/bin/python -m pip install -q --upgrade pip setuptools wheel pytest \
	    "hypothesis<6.155" tqdm
	touch $@

tsan-ft: $(FT_TSAN_VENV)/.stamp
	rm -rf build/tsan-ft
	$(FT_TSAN_VENV)/bin/python setup.py -q build_ext --build-lib build/tsan-ft --build-temp build/tsan-ft-obj
	cp streamfutures/*.py streamfutures/*.pyi streamfutures/py.typed build/tsan-ft/streamfutures/
	py=$$(tools/free-threaded-python.sh tsan) && \
	cat "$${py%/bin/*}/tsan-suppressions.txt" tests/tsan_ft_suppressions.txt > build/tsan-ft/suppressions.txt
	PYTHONPATH=$(CURDIR)/build/tsan-ft \
	TSAN_OPTIONS="halt_on_error=0 exitcode=66 suppressions=$(CURDIR)/build/tsan-ft/suppressions.txt" \
	    $(FT_TSAN_VENV)/bin/python -P -m pytest -q -s -p no:cacheprovider $(FT_TSAN_TESTS)

FT_TSAN_QUICK_TESTS = tests/python/test_free_threading.py tests/python/test_tee.py \
    tests/python/test_fanout.py
tsan-ft-quick:
	$(MAKE) tsan-ft FT_TSAN_TESTS="$(FT_TSAN_QUICK_TESTS)"

bench-ft: ext $(FT_VENV)/.stamp
	STREAMFUTURES_WERROR=1 $(FT_VENV)/bin/python setup.py -q build_ext --inplace
	$(FT_VENV)/bin/python bench/bench_freethreading.py --beside $(VPY)

# the layering rules of ARCHITECTURE.md: prints the include graph of src/
layers:
	$(PYTHON) tests/check_layers.py

test: layers c-test sanitize example check-exports check-platform install-test typecheck fuzz-quick py-test stress-quick py-test-ft tsan-ft-quick

demo: ext
	$(VPY) examples/seed000_demo.py
	@echo
	$(VPY) examples/seed003_demo.py
	@echo
	$(VPY) examples/seed004_demo.py

# the benchmarks' own venv, with the peers from PyPI (setuptools < 81:
# pypeln needs stopit, which imports pkg_resources, gone from setuptools 81)
BENCH_VENV ?= .venv-bench
$(BENCH_VENV)/.stamp: Makefile
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q --upgrade pip wheel "setuptools<81" greenlet \
	    matplotlib tqdm joblib mpire pebble loky pypeln streamable distributed mpi4py mpich
	touch $@

# bench_dask: each variant on a cluster of its own, and mpi4py under mpiexec
bench: ext $(BENCH_VENV)/.stamp bench-ft
	$(BENCH_VENV)/bin/python bench/run_all.py
	$(BENCH_VENV)/bin/python bench/bench_peers.py
	$(BENCH_VENV)/bin/python bench/bench_dask.py

bench-peers: ext $(BENCH_VENV)/.stamp
	$(BENCH_VENV)/bin/python bench/bench_peers.py

clean:
	rm -rf build streamfutures/*.so
