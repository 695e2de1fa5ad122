# mlopsd - plain Makefile (redis style).  Override CC, OPT, WARN, CFLAGS,
# LDFLAGS on the command line; `make WERROR=1` adds -Werror (CI does).
#
#   make            build build/mlopsd
#   make test       install missing packages, build, run unit + integration
#                   tests against a throwaway MariaDB (tests/run.sh)
#   make unit       unit tests only (no database)
#   make asan       the whole suite under AddressSanitizer + UBSan
#   make ubsan      the whole suite under UndefinedBehaviorSanitizer alone
#   make tsan       the concurrency tests under ThreadSanitizer
#   make valgrind   the daemon's integration tests, the daemon under valgrind
#                   memcheck (zero errors and definite leaks required)
#   make bench      benchmarks (bench/), figures printed, never pass/fail
#   make bench-report  the README's headline table from one bench run
#   make deps       install missing Debian packages (scripts/install-deps.sh)
#   make test-docker  the compose stack in a private Docker engine: images
#                   built here, up, healthy, /predict, logged, stop, down/up
#                   (tests/docker/run.sh; root; .ci/run runs it too)
#   make check-deps the module include graph: no cycle, daemon/main on top;
#                   and check-size (both run by make test: test_deps.sh)
#   make check-size no src/*.c over 1,500 lines, no function over 150
#                   (scripts/check-size.sh; V=1 lists those over 100)
#   make fuzz       build the libFuzzer targets (tests/fuzz/fuzz_*.c) into
#                   build/fuzz with clang and run each FUZZ_SECONDS (60)

CC      ?= cc
OPT     ?= -O2 -g
WARN    ?= -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
ifeq ($(WERROR),1)
WARN    += -Werror
endif
SAN     ?=
BUILD   ?= build
PKGS    := libmariadb libcurl libcjson yaml-0.1 libmicrohttpd zlib
# XGBoost's Debian package ships no .pc file: the header is in the default
# include path and the library links as -lxgboost.  Override if installed
# elsewhere, e.g. make XGB_CFLAGS=-I/opt/xgb/include XGB_LIBS="-L/opt/xgb/lib -lxgboost"
XGB_CFLAGS ?=
XGB_LIBS   ?= -lxgboost

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
ALL_CFLAGS  = -std=gnu11 $(OPT) $(WARN) $(SAN) -Iinclude -Isrc -MMD -MP \
              -D_GNU_SOURCE -DMLOPSD_VERSION=\"$(VERSION)\" \
              $(PKG_CFLAGS) $(XGB_CFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(SAN) $(LDFLAGS)
LIBS        = $(PKG_LIBS) $(XGB_LIBS) -lpthread -lm

SRCS      := $(filter-out src/main.c,$(wildcard src/*.c))
OBJS      := $(SRCS:%.c=$(BUILD)/%.o)
# The web console's files, embedded into the library (console.h).
WEB_FILES := $(wildcard web/*)
OBJS      += $(BUILD)/gen/console_assets.o
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
INT_SRCS  := $(wildcard tests/integration/test_*.c)
BENCH_SRCS:= $(wildcard bench/bench_*.c)
TEST_BINS := $(UNIT_SRCS:%.c=$(BUILD)/%) $(INT_SRCS:%.c=$(BUILD)/%)
BENCH_BINS:= $(BENCH_SRCS:%.c=$(BUILD)/%)

.PHONY: all test unit integration asan tsan ubsan bench bench-report deps clean demo valgrind \
        demo-stop demo-clean install check-deps check-size
all: $(BUILD)/mlopsd

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/gen/console_assets.c: $(WEB_FILES) scripts/embed.sh
	@mkdir -p $(dir $@)
	scripts/embed.sh $@ $(WEB_FILES)

$(BUILD)/gen/console_assets.o: $(BUILD)/gen/console_assets.c
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/libmlopsd.a: $(OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/mlopsd: $(BUILD)/src/main.o $(BUILD)/libmlopsd.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/%: tests/%.c $(BUILD)/libmlopsd.a tests/check.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests -o $@ $< $(BUILD)/libmlopsd.a $(ALL_LDFLAGS) $(LIBS)

$(BUILD)/bench/%: bench/%.c $(BUILD)/libmlopsd.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests -o $@ $< $(BUILD)/libmlopsd.a $(ALL_LDFLAGS) $(LIBS)

tests-build: $(BUILD)/mlopsd $(TEST_BINS)
.PHONY: tests-build

deps:
	scripts/install-deps.sh

# The module include graph: fails on a cycle or a module including
# daemon.h (scripts/check-deps.sh), and the length caps (check-size).
# make test runs both as tests/integration/test_deps.sh, so CI fails on
# either.  `make check-deps V=1` prints the edges.
check-deps: check-size
	scripts/check-deps.sh $(if $(V),-v)

# File and function length caps (issue 17), awk over src/*.c: no file
# over 1,500 lines, no function over 150; V=1 lists those over 100.
check-size:
	scripts/check-size.sh $(if $(V),-v)

# The test command users and CI run: set up, build, run everything.
test: deps
	$(MAKE) tests-build
	tests/run.sh $(BUILD) all

# MLOPSD_DOCKER_CACHE=DIR keeps the engine's images between runs.
.PHONY: test-docker test-cluster
test-docker:
	scripts/install-deps.sh --docker
	tests/docker/run.sh

# Past one machine (docs/scale-out.md): a three-node Galera cluster, haproxy,
# three api replicas and two schedulers on loopback (tests/cluster/).
test-cluster: deps
	$(MAKE) tests-build
	tests/run.sh $(BUILD) cluster

unit: $(TEST_BINS) $(BUILD)/mlopsd
	tests/run.sh $(BUILD) unit

integration: tests-build
	tests/run.sh $(BUILD) integration

asan: deps
	$(MAKE) BUILD=build/asan OPT="-O1 -g -fno-omit-frame-pointer" \
	  SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" tests-build
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
	  tests/run.sh build/asan all

# UndefinedBehaviorSanitizer alone (faster than asan, no leak checks): the
# whole suite, stopping at the first report.
ubsan: deps
	$(MAKE) BUILD=build/ubsan OPT="-O1 -g -fno-omit-frame-pointer" \
	  SAN="-fsanitize=undefined -fno-sanitize-recover=undefined" tests-build
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  tests/run.sh build/ubsan all

tsan: deps
	$(MAKE) BUILD=build/tsan OPT="-O1 -g" SAN="-fsanitize=thread" tests-build
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/tests/tsan.supp" \
	  tests/run.sh build/tsan tsan

# The daemon's integration tests with every `mlopsd serve` they start
# under valgrind memcheck: $(BUILD)/valgrind/mlopsd runs `serve` as
# $$MLOPSD_WRAP build/mlopsd ... and every other command directly, and
# $(BUILD)/valgrind/tests points at the test binaries, so tests/run.sh
# runs them unchanged.  One log per daemon in $(BUILD)/valgrind/vg.PID.log;
# the target fails on any memcheck error or definitely lost block (also
# when the test itself passed).  VALGRIND_TESTS picks the tests;
# tests/valgrind.supp holds the third-party suppressions.
VALGRIND_TESTS ?= test_(serve|admin|sched|models_cli|security|fault_db|fault_sigterm)
VALGRIND_CMD   ?= valgrind --tool=memcheck --leak-check=full \
                  --errors-for-leak-kinds=definite --error-exitcode=99 \
                  --num-callers=30 --suppressions=$(CURDIR)/tests/valgrind.supp
valgrind: deps
	$(MAKE) tests-build
	rm -rf $(BUILD)/valgrind && mkdir -p $(BUILD)/valgrind
	ln -s ../tests $(BUILD)/valgrind/tests
	printf '%s\n' '#!/bin/sh' \
	  '# make valgrind: `serve` under $$MLOPSD_WRAP, the rest directly' \
	  'for a in "$$@"; do [ "$$a" = serve ] && exec $$MLOPSD_WRAP $(CURDIR)/$(BUILD)/mlopsd "$$@"; done' \
	  'exec $(CURDIR)/$(BUILD)/mlopsd "$$@"' >$(BUILD)/valgrind/mlopsd
	chmod +x $(BUILD)/valgrind/mlopsd
	MLOPSD_WRAP="$(VALGRIND_CMD) --log-file=$(CURDIR)/$(BUILD)/valgrind/vg.%p.log" \
	MLOPSD_TESTS='$(VALGRIND_TESTS)' MLOPSD_TEST_TIMEOUT=1800 \
	  tests/run.sh $(BUILD)/valgrind integration; rc=$$?; \
	n=$$(grep -l 'ERROR SUMMARY' $(BUILD)/valgrind/vg.*.log 2>/dev/null | wc -l); \
	all=$$(ls $(BUILD)/valgrind/vg.*.log 2>/dev/null | wc -l); \
	bad=$$(grep -lE 'ERROR SUMMARY: [1-9]|definitely lost: [1-9]' \
	  $(BUILD)/valgrind/vg.*.log 2>/dev/null); \
	for f in $$bad; do echo "== $$f"; cat $$f; done; \
	echo "valgrind: $$n daemon exits checked, $$(echo $$bad | wc -w) with" \
	  "errors or definite leaks ($$((all - n)) logs without a summary:" \
	  "killed with SIGKILL, or a task's child before its exec)"; \
	[ $$rc = 0 ] && [ -z "$$bad" ] && [ $$n -gt 0 ]

bench: $(BUILD)/mlopsd $(BENCH_BINS)
	bench/run.sh $(BUILD)

# The README's headline table from one run of bench/bench_serve.sh.
bench-report: tests-build
	BUILD=$(BUILD) bench/report.sh

# libFuzzer targets: the library compiled by clang with
# -fsanitize=fuzzer-no-link,address,undefined into build/fuzz, each
# tests/fuzz/fuzz_X.c linked with -fsanitize=fuzzer into build/fuzz/fuzz_X.
# `make fuzz` runs each for FUZZ_SECONDS (tests/fuzz/run.sh); `make test`
# replays the corpora and fuzzes a few seconds (tests/integration/test_fuzz.sh).
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_BINS     = $(patsubst tests/fuzz/%.c,$(BUILD)/%,$(wildcard tests/fuzz/fuzz_*.c))
.PHONY: fuzz fuzz-build fuzz-bins

fuzz: fuzz-build
	tests/fuzz/run.sh build/fuzz $(FUZZ_SECONDS)

fuzz-build:
	$(MAKE) BUILD=build/fuzz CC=$(FUZZ_CC) OPT="-O1 -g -fno-omit-frame-pointer" \
	  SAN="-fsanitize=fuzzer-no-link $(FUZZ_SAN)" fuzz-bins

fuzz-bins: $(FUZZ_BINS)

$(BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(BUILD)/libmlopsd.a
	$(CC) $(ALL_CFLAGS) -Itests -o $@ $< $(BUILD)/libmlopsd.a \
	  -fsanitize=fuzzer $(FUZZ_SAN) $(LDFLAGS) $(LIBS)

# make install [PREFIX=/usr/local] [DESTDIR=...] [SYSTEMD=1]: the binary to
# PREFIX/bin; config (DAGs, model specs), SQL and docs to PREFIX/share/mlopsd;
# with SYSTEMD=1 also config/mlopsd.service, its paths set to PREFIX, to
# PREFIX/lib/systemd/system (docs/operations.md).
PREFIX ?= /usr/local
install: $(BUILD)/mlopsd
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/mlopsd
	install -m 0755 $(BUILD)/mlopsd $(DESTDIR)$(PREFIX)/bin/mlopsd
	cp -r config sql $(DESTDIR)$(PREFIX)/share/mlopsd/
	if [ -d docs ]; then cp -r docs $(DESTDIR)$(PREFIX)/share/mlopsd/; fi
	if [ -f README.md ]; then install -m 0644 README.md $(DESTDIR)$(PREFIX)/share/mlopsd/; fi
ifeq ($(SYSTEMD),1)
	install -d $(DESTDIR)$(PREFIX)/lib/systemd/system
	sed 's#/usr/local/#$(PREFIX)/#g' config/mlopsd.service \
	  > $(DESTDIR)$(PREFIX)/lib/systemd/system/mlopsd.service
	chmod 0644 $(DESTDIR)$(PREFIX)/lib/systemd/system/mlopsd.service
endif

clean:
	rm -rf build

-include $(OBJS:.o=.d) $(BUILD)/src/main.d $(TEST_BINS:=.d) $(BENCH_BINS:=.d)
-include $(FUZZ_BINS:=.d)

demo:
	scripts/demo.sh start
demo-stop:
	scripts/demo.sh stop
demo-clean:
	scripts/demo.sh clean
