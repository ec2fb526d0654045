# hermesfs — non-recursive build. Each module adds itself through its own
# module.mk so modules can grow without touching this file.
#
#   make              build everything into build/
#   make check        unit + integration tests (installs missing packages first)
#   make SAN=1 check  the same under ASan+UBSan, built into build-san/
#   make demo         mount a demo tree over a local sandbox and show it working
#   make bench        benchmarks (ratios against native disk, rsync, OpenSSH)
#   make install PREFIX=/usr/local

PREFIX  ?= /usr/local
CC      ?= cc
PKGS    := fuse3 sqlite3 libssh2 libarchive libcrypto libxxhash
ifeq ($(SAN),1)
BUILD   ?= build-san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
BUILD   ?= build
SANFLAGS :=
endif

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CMOCKA_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null)

OPT     ?= -O2
CFLAGS  := -std=gnu11 $(OPT) -g -Wall -Wextra -Werror -Wno-unused-parameter \
           -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -DFUSE_USE_VERSION=35 \
           -I. $(PKG_CFLAGS) $(SANFLAGS) $(EXTRA_CFLAGS)
LDFLAGS := $(SANFLAGS) $(EXTRA_LDFLAGS)
LDLIBS  := $(PKG_LIBS) -lpthread

# Link order: dependants first (fs ← exec, sync ← store).
MODULES  := fs exec sync store
PROGRAMS :=
include $(wildcard $(addsuffix /module.mk,$(MODULES)))

LIBS     := $(foreach m,$(MODULES),$(if $($(m)_SRCS),$(BUILD)/lib$(m).a))
ALL_SRCS := $(foreach m,$(MODULES),$($(m)_SRCS))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
ITEST_C   := $(wildcard tests/integration/*.c)
ITEST_BINS := $(patsubst tests/integration/%.c,$(BUILD)/itests/%,$(ITEST_C))
BENCH_C   := $(wildcard scripts/bench_*.c)
BENCH_BINS := $(patsubst scripts/%.c,$(BUILD)/bench/%,$(BENCH_C))
PROG_BINS := $(addprefix $(BUILD)/bin/,$(PROGRAMS))

.PHONY: all deps check check-long demo bench install clean tests
# Keep objects of test and bench binaries (pattern-chain intermediates).
.SECONDARY:
all: $(LIBS) $(PROG_BINS) $(UNIT_BINS) $(ITEST_BINS) $(BENCH_BINS)

deps:
	@scripts/install-deps.sh

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

define module_lib
$(BUILD)/lib$(1).a: $(patsubst %.c,$(BUILD)/%.o,$($(1)_SRCS))
	@mkdir -p $$(dir $$@)
	rm -f $$@ && ar rcs $$@ $$^
endef
$(foreach m,$(MODULES),$(if $($(m)_SRCS),$(eval $(call module_lib,$(m)))))

define program
$(BUILD)/bin/$(1): $(patsubst %.c,$(BUILD)/%.o,$($(1)_MAIN)) $(LIBS)
	@mkdir -p $$(dir $$@)
	$(CC) $(LDFLAGS) -o $$@ $$(filter %.o,$$^) $(LIBS) $(LDLIBS)
endef
$(foreach p,$(PROGRAMS),$(eval $(call program,$(p))))

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(LIBS) $(LDLIBS) $(CMOCKA_LIBS)

$(BUILD)/itests/%: $(BUILD)/tests/integration/%.o $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(LIBS) $(LDLIBS)

$(BUILD)/bench/%: $(BUILD)/scripts/%.o $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(LIBS) $(LDLIBS)

# deps runs first so a fresh machine needs nothing but this command.
check: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) scripts/run-tests.sh

check-long: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) LONG=1 scripts/run-tests.sh

demo: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) scripts/demo.sh

bench: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) scripts/bench.sh

install: $(PROG_BINS)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0755 $(PROG_BINS) $(DESTDIR)$(PREFIX)/bin/
	for m in man/*.1; do [ -e "$$m" ] && install -m 0644 $$m $(DESTDIR)$(PREFIX)/share/man/man1/ || true; done

clean:
	rm -rf build build-san

-include $(patsubst %.c,$(BUILD)/%.d,$(ALL_SRCS) $(UNIT_SRCS) $(ITEST_C) $(BENCH_C) $(foreach p,$(PROGRAMS),$($(p)_MAIN)))

# ==== fuzzing (tests/fuzz/; owned by the fuzz worker) ==========================
# make fuzz      libFuzzer harnesses, built with clang into build-fuzz/: the
#                module sources are compiled again with coverage and
#                ASan+UBSan (not build/'s libraries) into one archive, so each
#                harness links only the objects it uses.
# tests/fuzz/run.sh [--replay] [HARNESS...] builds and runs them (see there).
FUZZ_CC     ?= clang
FUZZ_BUILD  := build-fuzz
# UBSan stays recoverable so tests/fuzz/ubsan.supp can silence a reported,
# not yet fixed finding; run.sh sets halt_on_error=1 for everything else.
FUZZ_SAN    := -fsanitize=address,undefined -fno-omit-frame-pointer
FUZZ_BASE   := -std=gnu11 -O1 -g -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 \
               -DFUSE_USE_VERSION=35 -I. $(PKG_CFLAGS) $(FUZZ_SAN) \
               -fsanitize=fuzzer-no-link
# Module code is warning-checked by the gcc build; clang's own warnings
# there must not break fuzzing, so -Werror applies to the harnesses only.
FUZZ_HARNESS_CFLAGS := $(FUZZ_BASE) -Wall -Wextra -Werror -Wno-unused-parameter
FUZZ_SRCS   := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS   := $(patsubst tests/fuzz/%.c,$(FUZZ_BUILD)/%,$(FUZZ_SRCS))
FUZZ_MOD_SRCS := $(sync_SRCS) $(store_SRCS) $(exec_SRCS) \
                 $(filter fs/config.c,$(fs_SRCS))
FUZZ_MOD_OBJS := $(patsubst %.c,$(FUZZ_BUILD)/obj/%.o,$(FUZZ_MOD_SRCS))

.PHONY: fuzz fuzz-build
fuzz:
	@tests/fuzz/run.sh --deps
	@$(MAKE) --no-print-directory fuzz-build

fuzz-build: $(FUZZ_BINS)

# The build directory ignores itself (.gitignore "*"): nothing in it is source.
$(FUZZ_BUILD)/.gitignore:
	@mkdir -p $(dir $@) && echo '*' >$@

$(FUZZ_BUILD)/obj/tests/fuzz/%.o: tests/fuzz/%.c | $(FUZZ_BUILD)/.gitignore
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_HARNESS_CFLAGS) -MMD -MP -c -o $@ $<

$(FUZZ_BUILD)/obj/%.o: %.c | $(FUZZ_BUILD)/.gitignore
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_BASE) -w -MMD -MP -c -o $@ $<

$(FUZZ_BUILD)/libhermes-fuzz.a: $(FUZZ_MOD_OBJS)
	rm -f $@ && ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/obj/tests/fuzz/fuzz_%.o $(FUZZ_BUILD)/libhermes-fuzz.a
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $< \
		$(FUZZ_BUILD)/libhermes-fuzz.a $(LDLIBS)

# Replay binaries for `make check` (tests/integration/fuzz_corpus.sh): each
# harness with tests/fuzz/replay_main.c instead of libFuzzer, built by `all`
# with the project's compiler and flags against $(BUILD)'s libraries.
FUZZ_REPLAY_BINS := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz-replay/%,$(FUZZ_SRCS))
all: $(FUZZ_REPLAY_BINS)

$(BUILD)/fuzz-replay/fuzz_%: $(BUILD)/tests/fuzz/fuzz_%.o $(BUILD)/tests/fuzz/replay_main.o $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(BUILD)/tests/fuzz/replay_main.o $(LIBS) $(LDLIBS)

-include $(patsubst %.c,$(FUZZ_BUILD)/obj/%.d,$(FUZZ_MOD_SRCS) $(FUZZ_SRCS))
-include $(patsubst %.c,$(BUILD)/%.d,$(FUZZ_SRCS) tests/fuzz/replay_main.c)
