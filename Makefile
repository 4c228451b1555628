# shmkit - one non-recursive GNU Makefile, no configure step (STYLE B9).
#
#   make                 library (.so + .a), CLI, examples, tests, benches
#   make test            install missing Debian packages, build, run tests
#   make test SAN=address,undefined   (build/asan)   make test SAN=thread
#   make valgrind        the C test suites of build/release under memcheck
#   make demo            build the library and the demo only, and run it
#   make bench           run the benchmarks (figures beside baselines)
#   make install PREFIX=/usr/local    header, libs, CLI, shmkit.pc
#   make uninstall PREFIX=/usr/local  removes them again
#   make check-exports check-headers
#   WERROR=1 turns warnings into errors (CI).  CC=clang works too.

SHELL := /bin/bash
CC ?= gcc
ifeq ($(origin CC),default)
CC := gcc
endif
CXX ?= g++
PREFIX ?= /usr/local
SAN ?=

VERSION := $(shell sed -n 's/^\#define SHK_VERSION_STRING "\(.*\)"/\1/p' include/shmkit.h)
MAJOR := $(firstword $(subst ., ,$(VERSION)))

ifeq ($(SAN),)
VARIANT ?= release
SANFLAGS :=
else ifeq ($(SAN),thread)
VARIANT ?= tsan
SANFLAGS := -fsanitize=thread
else
VARIANT ?= asan
SANFLAGS := -fsanitize=$(SAN) -fno-sanitize-recover=all -fno-omit-frame-pointer
endif
B := build/$(VARIANT)

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wvla -Wformat=2 -Wno-unused-parameter
# C++ (bench_boost only): the C set less the C-only flags
CXXWARN := -Wall -Wextra -Wshadow -Wmissing-declarations -Wvla -Wformat=2 \
	-Wno-unused-parameter
ifeq ($(WERROR),1)
WARN += -Werror
CXXWARN += -Werror
endif
OPT ?= -O2 -g
CFLAGS_ALL := -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) $(SANFLAGS) -Iinclude \
	-MMD -MP $(CFLAGS)
CXXFLAGS_ALL := -std=c++17 -D_GNU_SOURCE $(OPT) $(CXXWARN) $(SANFLAGS) \
	-Iinclude $(CXXFLAGS)
LDFLAGS_ALL := $(SANFLAGS) $(LDFLAGS)
LIBS := -lpthread

LIB_SRC := $(sort $(wildcard src/*.c))
LIB_OBJ := $(LIB_SRC:src/%.c=$(B)/obj/%.o)
TLIB_OBJ := $(LIB_SRC:src/%.c=$(B)/tobj/%.o)
CLI_SRC := $(sort $(wildcard tools/shmkit/*.c))
CLI_OBJ := $(CLI_SRC:tools/shmkit/%.c=$(B)/cli/%.o)
TEST_SRC := $(sort $(wildcard tests/test_*.c))
TEST_BIN := $(TEST_SRC:tests/%.c=$(B)/tests/%)
PY_PEER := $(B)/tests/py_peer
EX_SRC := $(sort $(wildcard examples/*.c))
EX_BIN := $(EX_SRC:examples/%.c=$(B)/examples/%)
BENCH_SRC := $(sort $(wildcard bench/bench_*.c))
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(B)/bench/%)
# bench_boost (C++) needs Boost.Interprocess's headers (libboost-dev, in
# BENCH_DEPS); without them it is not built and bench/run.sh says so.
BOOST_IPC := $(if $(wildcard /usr/include/boost/interprocess/ipc/message_queue.hpp),1)
BENCH_BIN += $(if $(BOOST_IPC),$(B)/bench/bench_boost)

SONAME := libshmkit.so.$(MAJOR)
SO := $(B)/lib/libshmkit.so.$(VERSION)
AR_LIB := $(B)/lib/libshmkit.a
TAR_LIB := $(B)/lib/libshmkit_test.a
CLI := $(B)/shmkit

.PHONY: all lib test valgrind demo bench install uninstall deps bench-deps \
	check-exports check-headers check-format format clean examples tests \
	benches FORCE
.DEFAULT_GOAL := all

all: lib $(if $(CLI_SRC),$(CLI)) examples tests benches
lib: $(SO) $(AR_LIB)
examples: $(EX_BIN)
tests: $(TEST_BIN) $(PY_PEER) $(B)/tests/bridge_peer
benches: $(BENCH_BIN)

# Per-source flags.  sync_once.c: -fexceptions makes glibc's
# pthread_cleanup_push a cleanup attribute that only unwinding runs,
# instead of a record in the thread that a longjmp out of the user's fn
# would leave pointing into a dead frame (the thread's later pthread_exit
# then crashed: test once_longjmp_then_exit).
SRC_FLAGS_sync_once := -fexceptions

$(B)/obj/%.o: src/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) $(SRC_FLAGS_$*) -fPIC -fvisibility=hidden -DSHK_BUILDING_LIBRARY -c $< -o $@

# Test objects: the same sources with crash points compiled in.
$(B)/tobj/%.o: src/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) $(SRC_FLAGS_$*) -fPIC -fvisibility=hidden -DSHK_BUILDING_LIBRARY -DSHK_TEST_HOOKS -c $< -o $@

# -z nodelete: dlclose() never unmaps the library, whose thread-exit
# handlers (pthread keys: locks and heap caches a thread leaves behind)
# still run in threads that used it, and whose fork handlers stay
# registered with pthread_atfork.
$(SO): $(LIB_OBJ) src/shmkit.map
	@mkdir -p $(@D)
	$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=src/shmkit.map \
		-Wl,-z,defs -Wl,-z,nodelete $(LDFLAGS_ALL) -o $@ $(LIB_OBJ) $(LIBS)
	ln -sf libshmkit.so.$(VERSION) $(B)/lib/$(SONAME)
	ln -sf $(SONAME) $(B)/lib/libshmkit.so

$(AR_LIB): $(LIB_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(TAR_LIB): $(TLIB_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(B)/cli/%.o: tools/shmkit/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

# the CLI's bridge command speaks ZeroMQ (libzmq3-dev, in DEPS)
$(CLI): $(CLI_OBJ) $(AR_LIB)
	$(CC) $(LDFLAGS_ALL) -o $@ $(CLI_OBJ) -Wl,--whole-archive $(AR_LIB) -Wl,--no-whole-archive $(LIBS) -lzmq

$(B)/tests/%: tests/%.c tests/harness.h $(TAR_LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -Isrc -DSHK_TEST_HOOKS -o $@ $< $(TAR_LIB) $(LIBS) \
		$(TEST_LDFLAGS)

# test_alloc fails the library's allocations one at a time: the linker
# sends every malloc, calloc and aligned_alloc call to its wrappers
$(B)/tests/test_alloc: TEST_LDFLAGS := -Wl,--wrap=malloc -Wl,--wrap=calloc \
	-Wl,--wrap=aligned_alloc

# tests/bridge.sh's peer: a channel end, or a plain ZeroMQ socket
$(B)/tests/bridge_peer: tests/bridge_peer.c $(AR_LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(AR_LIB) $(LIBS) -lzmq

# The C side of the Python tests (python/tests): public API only, like any
# program sharing data with Python; not a suite (run.sh runs test_* only).
$(PY_PEER): tests/py_peer.c $(AR_LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(AR_LIB) $(LIBS)

$(B)/examples/%: examples/%.c $(AR_LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(AR_LIB) $(LIBS)

$(B)/bench/%: bench/%.c $(wildcard bench/*.h) $(AR_LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -Isrc -o $@ $< $(AR_LIB) $(LIBS)

# bench_peers measures the ring beside ZeroMQ (libzmq3-dev, in DEPS) and,
# when the iceoryx C binding is installed (bench-deps, for `make bench`
# only), beside iceoryx; without it the iceoryx cases say "skipped".
# peers.cfg records which, so that installing iceoryx rebuilds the program.
IOX_INC := /usr/include/iceoryx/v2.0.3
IOX := $(if $(wildcard $(IOX_INC)/iceoryx_binding_c/publisher.h),1)
PEERS_CFG := zmq$(if $(IOX), iox)
$(B)/bench/peers.cfg: FORCE
	@mkdir -p $(@D)
	@echo '$(PEERS_CFG)' | cmp -s - $@ || echo '$(PEERS_CFG)' > $@

$(B)/bench/bench_peers: bench/bench_peers.c $(wildcard bench/*.h) $(AR_LIB) $(B)/bench/peers.cfg
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -Isrc $(if $(IOX),-DSHK_BENCH_IOX -isystem $(IOX_INC)) \
		-o $@ $< $(AR_LIB) -lzmq $(if $(IOX),-liceoryx_binding_c) $(LIBS)

# bench_boost: shmkit beside Boost.Interprocess (header-only parts: no
# Boost library is linked), when its headers are installed (above)
$(B)/bench/bench_boost: bench/bench_boost.cpp $(wildcard bench/*.h) $(AR_LIB)
	@mkdir -p $(@D)
	$(CXX) $(CXXFLAGS_ALL) -o $@ $< $(AR_LIB) $(LIBS)

-include $(LIB_OBJ:.o=.d) $(TLIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d)

# Debian packages the build and tests need; installed only when missing.
# valgrind also ships valgrind/memcheck.h, which tests/harness.h uses;
# libzmq3-dev is for `shmkit bridge` (the CLI links it) and bench_peers.
DEPS := build-essential pkg-config clang libclang-rt-14-dev python3-numpy python3-pytest spin \
	valgrind clang-format libzmq3-dev
# Packages only `make bench` wants: iceoryx's RouDi daemon and C binding,
# for bench_peers' iceoryx cases, and Boost's headers for bench_boost.  Not
# installed for `make test`; when they cannot be installed (not root), the
# bench runs without those cases (bench_boost is then not built).
BENCH_DEPS := libzmq3-dev iceoryx libiceoryx-binding-c-dev libboost-dev

# $(call install_missing,WHO,PACKAGES,EXIT-STATUS-WHEN-NOT-INSTALLED)
# (bench-deps passes 0: without iceoryx bench_peers skips its cases, and
# without Boost bench_boost is skipped)
define install_missing
	@missing=""; for p in $(2); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "$(1): all present"; exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then \
		echo "$(1): missing:$$missing"; \
		echo "$(1): run: sudo apt-get update && sudo apt-get install -y$$missing"; exit $(3); fi; \
	echo "$(1): installing$$missing"; \
	DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing || \
	{ echo "$(1): apt-get failed for:$$missing"; exit $(3); }
endef

deps:
	$(call install_missing,deps,$(DEPS),1)

bench-deps:
	$(call install_missing,bench-deps,$(BENCH_DEPS),0)

test: deps
	$(MAKE) all
	tests/run.sh $(B)

# make valgrind: the C suites of the release build (same objects as
# `make test`) under memcheck, through tests/run.sh's SHK_TEST_WRAPPER.
# Any memcheck error fails the process it is in (exit 99), so its case.
# Leaks: each case process searches its own heap at the end of its case
# (tests/harness.h test_leak_check) and fails on a block definitely lost;
# there is no search at each process's exit (--leak-check=no), where a
# forked worker would count the parent's handles it inherited and never
# uses.  Only "definitely lost" counts: glibc keeps a joined thread's TLS
# block (pthread_create -> _dl_allocate_tls) in its stack cache through
# an interior pointer, which memcheck calls "possibly lost" (test_map's
# thread cases).  Unless set: stress sizes a hundredth (SHK_TEST_SCALE=0.01), and
# per-case alarms and suite timeouts doubled (SHK_TEST_TIMEOUT_MULTIPLIER=2,
# as CI sets it).  Workers are forked, and valgrind follows fork, so
# --trace-children is not needed; the one case that execs (test_sync_rwlock
# thread_exit_reuse re-runs itself with a glibc malloc tunable) wants its
# copy native and says so (it unsets SHK_TEST_VALGRIND).
# No suppressions: memcheck has reported no false positive here.
VALGRIND_FLAGS := -q --error-exitcode=99 --leak-check=no \
	--errors-for-leak-kinds=definite --show-leak-kinds=definite
valgrind: deps
	$(MAKE) SAN= VARIANT=release tests
	SHK_TEST_VALGRIND=1 SHK_TEST_WRAPPER="valgrind $(VALGRIND_FLAGS)" \
	SHK_TEST_SCALE=$${SHK_TEST_SCALE:-0.01} \
	SHK_TEST_TIMEOUT_MULTIPLIER=$${SHK_TEST_TIMEOUT_MULTIPLIER:-2} \
	tests/run.sh build/release

# The demo needs only the library and its own program (no Debian package
# beyond a C compiler and make), so it works on a fresh machine at once.
demo: $(B)/examples/demo
	$(B)/examples/demo

# bench-deps first, then a fresh make, which sees what it installed.
bench: bench-deps
	$(MAKE) all
	bench/run.sh $(B)

check-exports: $(SO)
	@nm -D --defined-only $(SO) | awk '$$2=="T"{print $$3}' | sed 's/@.*//' | sort -u > $(B)/exports.txt
	@grep -oE '^SHK_API[^(]*\(' include/shmkit.h | sed 's/(//; s/.*[ *]//' | sort -u > $(B)/declared.txt
	@if ! diff -u $(B)/declared.txt $(B)/exports.txt; then \
		echo "check-exports: header and exported symbols differ"; exit 1; fi
	@echo "check-exports: $$(wc -l < $(B)/exports.txt) symbols match the header"

# hdr.c uses every SHK_*_INIT macro and checks the size each one sets.
check-headers:
	@mkdir -p $(B)
	@{ printf '#include <shmkit.h>\nint main(void)\n{\n\tint bad = 0;\n'; \
	  n=0; for m in $$(grep -o -E '^#define SHK_[A-Z_]+_INIT SHK__INIT\([a-z_]+\)' include/shmkit.h | \
		sed -E 's/^#define (SHK_[A-Z_]+_INIT) SHK__INIT\(([a-z_]+)\)/\1:\2/'); do \
		n=$$((n + 1)); printf '\t%s v%d = %s;\n\tbad |= v%d.size != sizeof(v%d);\n' \
			"$${m#*:}" $$n "$${m%%:*}" $$n $$n; \
	  done; [ $$n -ge 11 ] || echo '#error too few SHK_*_INIT macros found'; \
	  printf '\treturn bad;\n}\n'; } > $(B)/hdr.c
	$(CC) -std=c11 -Wall -Wextra -Werror -pedantic -Iinclude -o $(B)/hdr_c $(B)/hdr.c
	$(CXX) -x c++ -std=c++11 -Wall -Wextra -Werror -pedantic -Iinclude -o $(B)/hdr_cxx $(B)/hdr.c
	$(CXX) -x c++ -std=c++17 -Wall -Wextra -Werror -pedantic -Iinclude -fsyntax-only $(B)/hdr.c
	$(B)/hdr_c && $(B)/hdr_cxx
	@printf '#include <shmkit.h>\nconstexpr shk_ring_opts o = SHK_RING_OPTS_INIT;\nstatic_assert(o.size == sizeof o, "size");\n' > $(B)/hdr_constexpr.c
	$(CXX) -x c++ -std=c++14 -Wall -Wextra -pedantic -Werror -Iinclude -fsyntax-only $(B)/hdr_constexpr.c
	@echo "check-headers: shmkit.h compiles alone as C11, C++11 and C++17 (-Wall -Wextra -pedantic), every SHK_*_INIT sets its size, and is constexpr from C++14"

# Layout (STYLE.md B7-B8): .clang-format, Debian's clang-format (14).
# `make format` rewrites every tracked C file (and bench_boost.cpp);
# `make check-format` (CI) fails, naming the files, when one differs from
# what it would write.
FORMAT_FILES = $(shell git ls-files '*.c' '*.h' '*.cpp' 2>/dev/null)
format:
	clang-format -i $(FORMAT_FILES)

check-format:
	@bad=""; for f in $(FORMAT_FILES); do \
		clang-format --dry-run -Werror "$$f" >/dev/null 2>&1 || bad="$$bad $$f"; \
	done; \
	if [ -n "$$bad" ]; then echo "check-format: not formatted (make format):$$bad"; exit 1; fi; \
	echo "check-format: $(words $(FORMAT_FILES)) files match .clang-format"

# shmkit.pc is written for each install, with that install's PREFIX (a
# shmkit.pc made once and kept named the first PREFIX in every later one).
install: lib $(if $(CLI_SRC),$(CLI))
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin
	install -m 644 include/shmkit.h $(DESTDIR)$(PREFIX)/include/
	install -m 755 $(SO) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libshmkit.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(PREFIX)/lib/libshmkit.so
	install -m 644 $(AR_LIB) $(DESTDIR)$(PREFIX)/lib/
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' shmkit.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/shmkit.pc.tmp
	chmod 644 $(DESTDIR)$(PREFIX)/lib/pkgconfig/shmkit.pc.tmp
	mv -f $(DESTDIR)$(PREFIX)/lib/pkgconfig/shmkit.pc.tmp $(DESTDIR)$(PREFIX)/lib/pkgconfig/shmkit.pc
	$(if $(CLI_SRC),install -m 755 $(CLI) $(DESTDIR)$(PREFIX)/bin/)
	@case "$(DESTDIR)$(PREFIX)" in /usr|/usr/local) echo "install: run sudo ldconfig so that programs find $(SONAME)";; esac

# removes exactly what install put there (the same PREFIX and DESTDIR)
uninstall:
	rm -f $(DESTDIR)$(PREFIX)/include/shmkit.h \
		$(DESTDIR)$(PREFIX)/lib/libshmkit.so.$(VERSION) \
		$(DESTDIR)$(PREFIX)/lib/$(SONAME) \
		$(DESTDIR)$(PREFIX)/lib/libshmkit.so \
		$(DESTDIR)$(PREFIX)/lib/libshmkit.a \
		$(DESTDIR)$(PREFIX)/lib/pkgconfig/shmkit.pc \
		$(DESTDIR)$(PREFIX)/bin/shmkit

clean:
	rm -rf build shmkit.pc

docs/errors.md: tools/errdoc.c include/shmkit.h
	@mkdir -p $(B)
	$(CC) -std=c11 -Iinclude -o $(B)/errdoc tools/errdoc.c
	$(B)/errdoc > $@

# libFuzzer targets (clang only): fuzz_segment patches segment and registry
# images; fuzz_structs runs every structure's data paths on a patched image;
# fuzz_chan runs the channels' (through a POSIX segment shk-fuzzchan-PID).
# `make fuzz` runs each for FUZZ_SECONDS (default 60) with its own corpus; an
# input that runs past FUZZ_TIMEOUT seconds (default 10) is reported as a hang.
FUZZ_SAN := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_TARGETS := fuzz_segment fuzz_structs fuzz_chan
$(addprefix build/fuzz/,$(FUZZ_TARGETS)): build/fuzz/%: tests/fuzz/%.c $(LIB_SRC) $(wildcard src/*.h tests/fuzz/*.h) include/shmkit.h
	@mkdir -p $(@D)
	clang -std=c11 -D_GNU_SOURCE -O1 -g $(FUZZ_SAN) -Iinclude -Isrc -o $@ $< $(LIB_SRC) -lpthread
fuzz: $(addprefix build/fuzz/,$(FUZZ_TARGETS))
	set -o pipefail; for t in $(FUZZ_TARGETS); do \
		mkdir -p build/fuzz/corpus-$$t || exit 1; \
		echo "== $$t"; \
		build/fuzz/$$t -max_total_time=$${FUZZ_SECONDS:-60} -timeout=$${FUZZ_TIMEOUT:-10} -rss_limit_mb=2048 -artifact_prefix=build/fuzz/$$t- build/fuzz/corpus-$$t 2>&1 | grep -v -e "Uses:" -e "dictionary" | tail -5 || exit 1; \
	done
.PHONY: fuzz
