# Multichat: one Makefile for every part.
#
#   make            release build: bin/chat-interface, bin/chat-worker, bin/chatctl
#   make run        build, then start Redis, one interface, one worker and demo data
#   make check      install what is missing, build with ASan+UBSan, run every test
#   make fuzz       run every fuzz target for FUZZ_SECONDS each
#   make bench      run the benchmarks and print their figures
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

CFLAGS := $(BASE_CFLAGS) $(OPT) $(SAN_FLAGS)
LDFLAGS := $(SAN_FLAGS)
LDLIBS := -luv -lhiredis -lsqlite3 -lpq -lcjson -largon2 -lz -lpthread -lm

# Sources, found by folder: a new .c file in a folder joins its library.
COMMON_SRC := $(wildcard common/*.c)
CHL_SRC := $(wildcard channel-layer/*.c)
IFC_SRC := $(filter-out interface/main.c,$(wildcard interface/*.c))
WRK_SRC := $(filter-out worker/main.c worker/chatctl.c,$(wildcard worker/*.c))
LLHTTP_SRC := $(wildcard $(LLHTTP_DIR)/*.c)
SUPPORT_SRC := $(wildcard tests/support/*.c)
TEST_SRC := $(wildcard tests/*/*_test.c)
BENCH_SRC := $(wildcard tests/bench/*.c)
FUZZ_SRC := $(wildcard tests/fuzz/*_fuzz.c)

obj = $(patsubst %.c,$(B)/obj/%.o,$(1))
LLHTTP_OBJ := $(patsubst $(LLHTTP_DIR)/%.c,$(B)/obj/llhttp/%.o,$(LLHTTP_SRC))

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
        screenshots
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

$(B)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

# llhttp is generated third-party code: our warning set is not its contract.
$(B)/obj/llhttp/%.o: $(LLHTTP_DIR)/%.c
	@mkdir -p $(@D)
	$(CC) -I$(LLHTTP_INC) -std=c17 -w $(OPT) $(SAN_FLAGS) -c -o $@ $<

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
$(PROGRAMS) $(BENCHES):
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/tests/%: $(B)/obj/tests/%.o $(call obj,$(SUPPORT_SRC)) $(LIBS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

# Fuzz targets link libFuzzer's main; they are built in the fuzz flavour only.
$(B)/fuzzers/%: $(B)/obj/tests/fuzz/%.o $(LIBS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

deps:
	@deploy/install-deps.sh

run: deps all
	deploy/run-local.sh

# make check: the sanitizer build of every test, the fuzz targets briefly, and
# one summary line at the end.
check:
	@deploy/install-deps.sh
	$(MAKE) --no-print-directory FLAVOUR=asan programs tests
	$(MAKE) --no-print-directory fuzzers
	tests/run.sh build/asan

# Refreshes docs/chat.png and docs/admin.png from the browser walk-through.
screenshots: deps
	$(MAKE) --no-print-directory FLAVOUR=asan programs
	MC_BUILD=$(CURDIR)/build/asan MC_SCREENSHOTS=$(CURDIR)/docs tests/browser/browser_test.sh

FUZZ_SECONDS ?= 60
fuzz:
	@deploy/install-deps.sh
	$(MAKE) --no-print-directory fuzzers
	tests/fuzz/run.sh $(FUZZ_SECONDS)

bench:
	@deploy/install-deps.sh --bench
	$(MAKE) --no-print-directory FLAVOUR=release programs
	tests/bench/run.sh build/release

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build bin

-include $(shell find $(B) -name '*.d' 2>/dev/null)
