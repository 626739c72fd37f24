# Multichat: one Makefile for every part.
#
#   make            release build: bin/chat-interface, bin/chat-worker, bin/chatctl
#   make run        install what is missing, build, then start Redis, one interface,
#                   one worker and demo data
#   make check      install what is missing, build with ASan+UBSan, run every test
#   make install    install the programs, web root, systemd units and environment
#                   file under PREFIX (GNU conventions; DESTDIR for staging)
#   make uninstall  remove what make install put there
#   make fuzz       run every fuzz target for FUZZ_SECONDS each
#   make bench      run the benchmarks; figures, data and plots in docs/
#   make bench-plots  redraw the plots of docs/performance.md from the bench's data
#   make screenshots  refresh the pictures of the pages in docs/
#
# Each flavour builds into a tree of its own (build/release, build/asan,
# build/fuzz), so objects built with different flags are never mixed.

FLAVOUR ?= release
B := build/$(FLAVOUR)

LLHTTP_DIR ?= /usr/share/llhttp
LLHTTP_INC ?= /usr/share/include/llhttp
PQ_INC ?= /usr/include/postgresql

WARNINGS := -Wall -Wextra -Werror -Wstrict-prototypes -Wwrite-strings -Wmissing-prototypes \
            -Wvla -Wformat=2
CPPFLAGS := -D_GNU_SOURCE -I. -I$(LLHTTP_INC) -I$(PQ_INC)
BASE_CFLAGS := -std=c17 $(WARNINGS) -MMD -MP
SANITIZE := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

ifeq ($(FLAVOUR),release)
  CC := gcc
  OPT := -O2 -g
  SAN_FLAGS :=
  # Hardening: checked libc calls, stack canaries, a position-independent
  # program whose relocations are read-only once loaded (full RELRO).
  HARDEN := -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE
  HARDEN_LD := -pie -Wl,-z,relro,-z,now
else ifeq ($(FLAVOUR),asan)
  CC := gcc
  OPT := -O1 -g
  SAN_FLAGS := $(SANITIZE)
else ifeq ($(FLAVOUR),fuzz)
  CC := clang
  OPT := -O1 -g
  SAN_FLAGS := $(SANITIZE) -fsanitize=fuzzer-no-link
else
  $(error FLAVOUR must be release, asan or fuzz)
endif

CFLAGS := $(BASE_CFLAGS) $(OPT) $(SAN_FLAGS) $(HARDEN)
LDFLAGS := $(SAN_FLAGS) $(HARDEN_LD)
LDLIBS := -luv -lhiredis -lsqlite3 -lpq -lcjson -largon2 -lz -lpthread -lm

# Sources, found by folder: a new .c file in a folder joins its library.
COMMON_SRC := $(wildcard common/*.c)
CHL_SRC := $(wildcard channel-layer/*.c)
IFC_SRC := $(filter-out interface/main.c,$(wildcard interface/*.c))
WRK_SRC := $(filter-out worker/main.c worker/chatctl.c,$(wildcard worker/*.c))
LLHTTP_SRC := $(wildcard $(LLHTTP_DIR)/*.c)
SUPPORT_SRC := $(wildcard tests/support/*.c)
TEST_SRC := $(wildcard tests/*/*_test.c)
BENCH_SRC := $(wildcard tests/bench/*_bench.c)
# chat-bench's parts besides its main file (tests/bench/chat_*.c).
CHAT_BENCH_SRC := $(filter-out tests/bench/chat_bench.c,$(wildcard tests/bench/chat_*.c))
FUZZ_SRC := $(wildcard tests/fuzz/*_fuzz.c)

obj = $(patsubst %.c,$(B)/obj/%.o,$(1))
LLHTTP_OBJ := $(patsubst $(LLHTTP_DIR)/%.c,$(B)/obj/llhttp/%.o,$(LLHTTP_SRC))
# Without llhttp's sources nothing is built: the build stops at once saying so,
# instead of at the link with undefined llhttp_* symbols.
LLHTTP_CHECK := $(if $(strip $(LLHTTP_SRC)),,llhttp-missing)

LIB_COMMON := $(B)/lib/libmc_common.a
LIB_CHL := $(B)/lib/libmc_chl.a
LIB_IFC := $(B)/lib/libmc_ifc.a
LIB_WRK := $(B)/lib/libmc_wrk.a
LIBS := $(LIB_IFC) $(LIB_WRK) $(LIB_CHL) $(LIB_COMMON)

# A program is built once its main file exists.
PROGRAMS := $(if $(wildcard interface/main.c),$(B)/bin/chat-interface) \
            $(if $(wildcard worker/main.c),$(B)/bin/chat-worker) \
            $(if $(wildcard worker/chatctl.c),$(B)/bin/chatctl)
TESTS := $(patsubst tests/%.c,$(B)/tests/%,$(TEST_SRC))
BENCHES := $(patsubst tests/bench/%_bench.c,$(B)/bin/%-bench,$(BENCH_SRC))
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,$(B)/fuzzers/%,$(FUZZ_SRC))

.PHONY: all programs tests benches fuzzers fuzz-targets deps run check fuzz bench format clean \
        screenshots install uninstall llhttp-missing bench-plots
.DEFAULT_GOAL := all

# `make` (release) also publishes the programs in bin/.
all: programs
ifeq ($(FLAVOUR),release)
	@mkdir -p bin $(if $(strip $(PROGRAMS) $(BENCHES)),&& cp -f $(PROGRAMS) $(BENCHES) bin/)
endif

programs: $(PROGRAMS) $(BENCHES)
tests: $(TESTS)
fuzzers:
	$(MAKE) --no-print-directory FLAVOUR=fuzz fuzz-targets
fuzz-targets: $(FUZZ_TARGETS)

$(B)/obj/%.o: %.c | $(LLHTTP_CHECK)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

# llhttp is generated third-party code: our warning set is not its contract.
$(B)/obj/llhttp/%.o: $(LLHTTP_DIR)/%.c
	@mkdir -p $(@D)
	$(CC) -I$(LLHTTP_INC) -std=c17 -w $(OPT) $(SAN_FLAGS) $(HARDEN) -c -o $@ $<
llhttp-missing:
	$(error no llhttp sources in $(LLHTTP_DIR): install Debian's node-llhttp (make deps), \
	        or set LLHTTP_DIR and LLHTTP_INC)

$(LIB_COMMON): $(call obj,$(COMMON_SRC))
$(LIB_CHL): $(call obj,$(CHL_SRC))
$(LIB_IFC): $(call obj,$(IFC_SRC)) $(LLHTTP_OBJ)
$(LIB_WRK): $(call obj,$(WRK_SRC))
$(LIBS):
	@mkdir -p $(@D)
	@rm -f $@
	ar rcs $@ $^

$(B)/bin/chat-interface: $(call obj,interface/main.c) $(LIBS)
$(B)/bin/chat-worker: $(call obj,worker/main.c) $(LIBS)
$(B)/bin/chatctl: $(call obj,worker/chatctl.c) $(LIBS)
$(BENCHES): $(B)/bin/%-bench: $(B)/obj/tests/bench/%_bench.o $(LIBS)
$(B)/bin/chat-bench: $(call obj,$(CHAT_BENCH_SRC))
# Objects before the libraries, whichever rule named them: the linker reads
# an archive for the symbols wanted so far.
$(PROGRAMS) $(BENCHES):
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $(filter-out %.a,$^) $(filter %.a,$^) $(LDLIBS)

$(B)/tests/%: $(B)/obj/tests/%.o $(call obj,$(SUPPORT_SRC)) $(LIBS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

# Fuzz targets link libFuzzer's main; they are built in the fuzz flavour only.
$(B)/fuzzers/%: $(B)/obj/tests/fuzz/%.o $(LIBS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

# The command that installs the packages the build needs. The targets below run
# it first and build in a second make, which reads this Makefile after it: the
# sources of packages (llhttp) are found when the Makefile is read.
INSTALL_DEPS ?= deploy/install-deps.sh
deps:
	@$(INSTALL_DEPS)

run:
	@$(INSTALL_DEPS) --run
	$(MAKE) --no-print-directory all
	deploy/run-local.sh

# make check: the sanitizer build of every test, the fuzz targets briefly, and
# one summary line at the end.
check: deps
	$(MAKE) --no-print-directory FLAVOUR=asan programs tests
	$(MAKE) --no-print-directory fuzzers
	tests/run.sh build/asan

# Refreshes docs/chat.png and docs/admin.png from the browser walk-through.
screenshots: deps
	$(MAKE) --no-print-directory FLAVOUR=asan programs
	MC_BUILD=$(CURDIR)/build/asan MC_SCREENSHOTS=$(CURDIR)/docs tests/browser/browser_test.sh

FUZZ_SECONDS ?= 60
fuzz: deps
	$(MAKE) --no-print-directory fuzzers
	tests/fuzz/run.sh $(FUZZ_SECONDS)

bench:
	@$(INSTALL_DEPS) --bench
	$(MAKE) --no-print-directory FLAVOUR=release programs
	tests/bench/run.sh build/release

# Redraws docs/bench/*.svg from the figures of the last `make bench` (*.tsv there).
bench-plots:
	tests/bench/plot.sh docs/bench

# ---- make install, make uninstall ----------------------------------------------
# GNU conventions: PREFIX, the directories under it, DESTDIR to stage into a
# tree (a package). The programs come from this flavour's build ($(B)/bin; the
# release build unless FLAVOUR says otherwise). The systemd units and the
# environment file get the directories filled in; an existing environment file
# is the operator's and is never overwritten, nor removed once changed.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
DATADIR ?= $(PREFIX)/share
SYSCONFDIR ?= $(PREFIX)/etc
DOCDIR ?= $(DATADIR)/doc/multichat
SYSTEMD_UNIT_DIR ?= $(PREFIX)/lib/systemd/system
INSTALL ?= install

WEB_DIR = $(DATADIR)/multichat/web
ENV_FILE = $(SYSCONFDIR)/multichat/multichat.env
UNITS := chat-interface@.service chat-worker@.service multichat.target
WEB_FILES := $(shell find web -type f 2>/dev/null)
WEB_SUBDIRS := $(sort $(dir $(WEB_FILES)))
web_files_in = $(foreach f,$(WEB_FILES),$(if $(filter $(1),$(dir $(f))),$(f)))
# deploy/systemd's templates with the directories of this installation.
FILL_PATHS = sed -e '/^\# Template: /d' -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@WEB_DIR@|$(WEB_DIR)|g' \
                 -e 's|@ENV_FILE@|$(ENV_FILE)|g' -e 's|@DOCDIR@|$(DOCDIR)|g'

install: $(PROGRAMS)
	$(INSTALL) -d -m 755 '$(DESTDIR)$(BINDIR)' '$(DESTDIR)$(SYSTEMD_UNIT_DIR)' \
	    '$(DESTDIR)$(DOCDIR)' '$(DESTDIR)$(dir $(ENV_FILE))' \
	    $(addprefix '$(DESTDIR)$(DATADIR)/multichat/,$(addsuffix ',$(WEB_SUBDIRS)))
	$(INSTALL) -m 755 $(PROGRAMS) '$(DESTDIR)$(BINDIR)/'
	$(foreach d,$(WEB_SUBDIRS),$(INSTALL) -m 644 $(call web_files_in,$(d)) \
	    '$(DESTDIR)$(DATADIR)/multichat/$(d)' &&) true
	$(INSTALL) -m 644 docs/operations.md '$(DESTDIR)$(DOCDIR)/'
	@# The units and the environment file, filled in in a folder of this run's own.
	@filled=$$(mktemp -d) && trap 'rm -rf "$$filled"' EXIT && \
	for f in $(UNITS) multichat.env; do \
	    $(FILL_PATHS) deploy/systemd/$$f >"$$filled/$$f" || exit 1; \
	done && \
	echo "$(INSTALL) -m 644 $(UNITS) '$(DESTDIR)$(SYSTEMD_UNIT_DIR)/'  (directories filled in)" && \
	$(INSTALL) -m 644 $(addprefix "$$filled"/,$(UNITS)) '$(DESTDIR)$(SYSTEMD_UNIT_DIR)/' && \
	if [ -e '$(DESTDIR)$(ENV_FILE)' ]; then \
	    echo "install: keeping $(DESTDIR)$(ENV_FILE)"; \
	else \
	    echo "$(INSTALL) -m 640 multichat.env '$(DESTDIR)$(ENV_FILE)'  (directories filled in)" && \
	    $(INSTALL) -m 640 "$$filled/multichat.env" '$(DESTDIR)$(ENV_FILE)'; \
	fi

uninstall:
	rm -f $(addprefix '$(DESTDIR)$(BINDIR)/,$(addsuffix ',$(notdir $(PROGRAMS)))) \
	    $(addprefix '$(DESTDIR)$(SYSTEMD_UNIT_DIR)/,$(addsuffix ',$(UNITS))) \
	    '$(DESTDIR)$(DOCDIR)/operations.md' \
	    $(addprefix '$(DESTDIR)$(DATADIR)/multichat/,$(addsuffix ',$(WEB_FILES)))
	@$(FILL_PATHS) deploy/systemd/multichat.env | cmp -s - '$(DESTDIR)$(ENV_FILE)' && \
	    rm -f '$(DESTDIR)$(ENV_FILE)' || \
	    { [ ! -e '$(DESTDIR)$(ENV_FILE)' ] || echo "uninstall: keeping $(DESTDIR)$(ENV_FILE) (changed)"; }
	@# Directories of ours only, and only once empty: files added there stay.
	@rmdir '$(DESTDIR)$(DOCDIR)' '$(DESTDIR)$(dir $(ENV_FILE))' 2>/dev/null || true
	@[ ! -d '$(DESTDIR)$(DATADIR)/multichat' ] || \
	    find '$(DESTDIR)$(DATADIR)/multichat' -depth -type d -empty -delete

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build bin

-include $(shell find $(B) -name '*.d' 2>/dev/null)
