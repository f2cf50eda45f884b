# parley — build, run, test, bench, install.
#   make          build ./parley
#   make run      install missing packages, build, serve the default bot on 127.0.0.1:8080
#   make test     install missing packages, build, run every test; ends with "N passed, N failed"
#   make bench    wrk on loopback: messages/s, latency, RSS
#   make fuzz     install clang's libFuzzer, run every fuzz target FUZZ_SECONDS (default 60) each
#   make install  PREFIX=/usr/local DESTDIR=

PREFIX ?= /usr/local
DESTDIR ?=
CC ?= cc
PKGS := lua5.4 libevent jansson sqlite3 libpq libutf8proc libcrypto libcurl gmime-3.0 libxml-2.0 icu-i18n icu-uc
# Evaluated when used, so `make run` can install packages before pkg-config runs.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS = $(shell pkg-config --libs $(PKGS))
# jemalloc is parley's malloc (make bench: 8-15 % more messages/s than
# glibc's, whose free lists the loop's many short-lived buffers keep
# consolidating: docs/speed.md). The sanitizer builds keep their own.
# Without libjemalloc-dev the link fails ("cannot find -ljemalloc"), never
# falls back to glibc's malloc unnoticed.
ALLOC_LIBS = $(shell pkg-config --libs jemalloc 2>/dev/null || echo -ljemalloc)

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes
CFLAGS ?= -O2 -g
ALL_CFLAGS = -std=c11 -pthread $(WARN) $(CFLAGS) $(PKG_CFLAGS) -Iruntime -Ibuild
# -Wl,-E: busted's C modules (lfs, term, system) resolve the Lua API in the binary.
ALL_LDFLAGS = -Wl,-E -pthread $(LDFLAGS)
SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

RUNTIME_SRC := $(filter-out runtime/cli/main.c,$(wildcard runtime/*/*.c))
RUNTIME_OBJ := $(RUNTIME_SRC:runtime/%.c=build/obj/%.o) build/obj/embedded.o build/obj/web_assets.o
SAN_OBJ := $(RUNTIME_SRC:runtime/%.c=build/san/%.o) build/san/embedded.o build/san/web_assets.o
# ThreadSanitizer, for the tests that run the turn threads and the sync thread
TSAN := -fsanitize=thread
TSAN_OBJ := $(RUNTIME_SRC:runtime/%.c=build/tsan/%.o) build/tsan/embedded.o build/tsan/web_assets.o
TSAN_CTESTS := build/tests/tsan_test_pipeline build/tests/tsan_test_store
WEB_ASSETS := $(sort $(wildcard runtime/web/*.js runtime/web/*.html runtime/web/*.css runtime/web/*.svg))
LUA_MODULES := $(sort $(wildcard runtime/lua/*.lua runtime/lua/parley/*.lua))
CTEST_SRC := $(wildcard tests/c/test_*.c)
CTESTS := $(CTEST_SRC:tests/c/%.c=build/tests/%)
SAN_CTESTS := $(CTEST_SRC:tests/c/%.c=build/tests/san_%)

.SECONDARY:
.PHONY: all run test bench install deps deps-test deps-bench clean check-c
.PHONY: fuzz fuzz-build fuzz-replay fuzz-merge deps-fuzz

all: parley

parley: build/obj/cli/main.o build/libparley.a
	$(CC) $(ALL_LDFLAGS) -o $@ build/obj/cli/main.o build/libparley.a $(PKG_LIBS) $(ALLOC_LIBS)

build/libparley.a: $(RUNTIME_OBJ)
	@rm -f $@
	ar rcs $@ $^

build/obj/%.o: runtime/%.c | build/obj
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

build/obj/embedded.o: build/embedded.c runtime/core/modules.h | build/obj
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

build/embedded.c: build/embed $(LUA_MODULES)
	build/embed $@ runtime/lua $(LUA_MODULES)

build/web_assets.c: build/embed $(WEB_ASSETS)
	build/embed --assets $@ runtime/web $(WEB_ASSETS)

build/obj/web_assets.o: build/web_assets.c runtime/http/assets.h | build/obj
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

build/san/web_assets.o: build/web_assets.c | build/san
	$(CC) $(ALL_CFLAGS) -O1 $(SAN) -c -o $@ $<

build/embed: tools/embed.c | build
	$(CC) -std=c11 -O1 -Wall -Wextra -Werror -o $@ $<

build build/obj build/san build/tsan build/tests:
	mkdir -p $@

# --- tests -------------------------------------------------------------------
build/san/%.o: runtime/%.c | build/san
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -O1 $(SAN) -MMD -MP -c -o $@ $<

build/san/embedded.o: build/embedded.c | build/san
	$(CC) $(ALL_CFLAGS) -O1 $(SAN) -c -o $@ $<

build/tests/test_%: tests/c/test_%.c tests/c/check.h tests/c/bot_vm.h tests/c/pg_loop.h tests/c/webhook_fixture.h build/libparley.a | build/tests
	$(CC) $(ALL_CFLAGS) -Itests/c $(ALL_LDFLAGS) -o $@ $< build/libparley.a $(PKG_LIBS) $(ALLOC_LIBS)

build/libparley-san.a: $(SAN_OBJ)
	@rm -f $@
	ar rcs $@ $^

build/tests/san_test_%: tests/c/test_%.c tests/c/check.h tests/c/bot_vm.h tests/c/pg_loop.h tests/c/webhook_fixture.h build/libparley-san.a | build/tests
	$(CC) $(ALL_CFLAGS) -O1 $(SAN) -Itests/c $(ALL_LDFLAGS) -o $@ $< build/libparley-san.a $(PKG_LIBS)

build/tsan/%.o: runtime/%.c | build/tsan
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -O1 $(TSAN) -MMD -MP -c -o $@ $<

build/tsan/embedded.o: build/embedded.c | build/tsan
	$(CC) $(ALL_CFLAGS) -O1 $(TSAN) -c -o $@ $<

build/tsan/web_assets.o: build/web_assets.c | build/tsan
	$(CC) $(ALL_CFLAGS) -O1 $(TSAN) -c -o $@ $<

build/libparley-tsan.a: $(TSAN_OBJ)
	@rm -f $@
	ar rcs $@ $^

build/tests/tsan_test_%: tests/c/test_%.c tests/c/check.h tests/c/bot_vm.h tests/c/pg_loop.h tests/c/webhook_fixture.h build/libparley-tsan.a | build/tests
	$(CC) $(ALL_CFLAGS) -O1 $(TSAN) -Itests/c $(ALL_LDFLAGS) -o $@ $< build/libparley-tsan.a $(PKG_LIBS)

check-c: $(CTESTS) $(SAN_CTESTS) $(TSAN_CTESTS) build/parley-san

# parley itself under the sanitizers: the busted specs run through it too
build/parley-san: runtime/cli/main.c build/libparley-san.a | build
	$(CC) $(ALL_CFLAGS) -O1 $(SAN) $(ALL_LDFLAGS) -o $@ runtime/cli/main.c build/libparley-san.a $(PKG_LIBS)

# --- fuzzing -------------------------------------------------------------------
# A fuzz target is tests/fuzz/fuzz_NAME.c with its seed corpus in
# tests/fuzz/corpus/NAME/; adding both is all it takes (tests/fuzz/README.md:
# the Lua pattern matcher and the JSON module are the next two). Each is
# built twice: with clang's libFuzzer for `make fuzz`, which runs each
# target FUZZ_SECONDS (one at a time) and saves what crashes under
# build/fuzz/crashes/NAME/; and as a plain gcc ASan/UBSan driver
# (tests/fuzz/replay.c) that `make test` feeds the saved corpora, so the
# tests need no clang.
FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
FUZZ_NAMES := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_TARGETS ?= $(FUZZ_NAMES)
FUZZ_SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
FUZZ_OBJ := $(RUNTIME_SRC:runtime/%.c=build/fuzz/obj/%.o) build/fuzz/obj/embedded.o build/fuzz/obj/web_assets.o
FUZZ_HELPERS := tests/fuzz/fuzz.c tests/fuzz/fuzz.h

build/fuzz build/fuzz/obj:
	mkdir -p $@

build/fuzz/obj/%.o: runtime/%.c | build/fuzz/obj
	@mkdir -p $(@D)
	$(FUZZ_CC) $(ALL_CFLAGS) -O1 -fsanitize=fuzzer-no-link $(FUZZ_SAN) -MMD -MP -c -o $@ $<

build/fuzz/obj/embedded.o: build/embedded.c | build/fuzz/obj
	$(FUZZ_CC) $(ALL_CFLAGS) -O1 $(FUZZ_SAN) -c -o $@ $<

build/fuzz/obj/web_assets.o: build/web_assets.c | build/fuzz/obj
	$(FUZZ_CC) $(ALL_CFLAGS) -O1 $(FUZZ_SAN) -c -o $@ $<

build/libparley-fuzz.a: $(FUZZ_OBJ)
	@rm -f $@
	ar rcs $@ $^

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_HELPERS) build/libparley-fuzz.a | build/fuzz
	$(FUZZ_CC) $(ALL_CFLAGS) -O1 -fsanitize=fuzzer $(FUZZ_SAN) -Itests/fuzz $(ALL_LDFLAGS) -o $@ \
	  $< tests/fuzz/fuzz.c build/libparley-fuzz.a $(PKG_LIBS)

build/fuzz/replay_%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c $(FUZZ_HELPERS) build/libparley-san.a | build/fuzz
	$(CC) $(ALL_CFLAGS) -O1 $(SAN) -Itests/fuzz $(ALL_LDFLAGS) -o $@ \
	  $< tests/fuzz/replay.c tests/fuzz/fuzz.c build/libparley-san.a $(PKG_LIBS)

fuzz-build: $(FUZZ_TARGETS:%=build/fuzz/fuzz_%)
fuzz-replay: $(FUZZ_NAMES:%=build/fuzz/replay_%)

fuzz:
	@$(MAKE) --no-print-directory deps-fuzz
	@$(MAKE) --no-print-directory fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh $(FUZZ_TARGETS)

# Adds to tests/fuzz/corpus/NAME/ the inputs of build/fuzz/corpus/NAME/
# (what `make fuzz` found) that reach code the corpus does not yet reach.
fuzz-merge:
	@$(MAKE) --no-print-directory fuzz-build
	@tests/fuzz/run.sh --merge $(FUZZ_TARGETS)

deps:
	@tools/deps.sh build
deps-test:
	@tools/deps.sh test
deps-bench:
	@tools/deps.sh bench
deps-fuzz:
	@tools/deps.sh fuzz

run:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory parley
	./parley serve --listen 127.0.0.1:8080 --db parley.db

# the build before the tests uses every core (the tests themselves run one at a time)
BUILD_JOBS := $(shell nproc 2>/dev/null || echo 2)

test:
	@$(MAKE) --no-print-directory deps-test
	@$(MAKE) --no-print-directory -j$(BUILD_JOBS) parley check-c fuzz-replay $(BROWSER_DEPS)
	@tests/run.sh

# The browser tests' npm packages (playwright-core without its browser download, axe-core),
# exactly as tests/browser/package-lock.json pins them: installed again when the lock file
# or package.json is newer than the last install (a fresh clone has none).
BROWSER_DEPS := tests/browser/node_modules/.installed
$(BROWSER_DEPS): tests/browser/package.json tests/browser/package-lock.json
	cd tests/browser && npm ci --no-audit --no-fund || { \
	  echo "npm ci in tests/browser failed: the browser tests need the npm registry once" >&2; exit 1; }
	touch $@

bench:
	@$(MAKE) --no-print-directory deps-bench
	@$(MAKE) --no-print-directory parley build/bare_evhttp
	@tests/bench/run.sh

build/bare_evhttp: tests/bench/bare_evhttp.c | build
	$(CC) $(ALL_CFLAGS) -o $@ $< $(PKG_LIBS)

install: parley
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/parley/bot
	install -m 755 parley $(DESTDIR)$(PREFIX)/bin/parley
	cp -R bot.json catalog.json flows scripts spec $(DESTDIR)$(PREFIX)/share/parley/bot/
	cp -R examples $(DESTDIR)$(PREFIX)/share/parley/
	install -d $(DESTDIR)$(PREFIX)/share/parley/types
	install -m 644 runtime/types/*.lua $(DESTDIR)$(PREFIX)/share/parley/types/
	sed 's#"runtime/types"#"../types"#' .luarc.json >$(DESTDIR)$(PREFIX)/share/parley/bot/.luarc.json
	for f in $(DESTDIR)$(PREFIX)/share/parley/examples/*/.luarc.json; do \
		sed -i 's#"../../runtime/types"#"../../types"#' "$$f"; done
	@# the systemd unit where systemd finds it for this PREFIX (/usr/local/lib/systemd/system),
	@# the proxy, logrotate and environment examples to copy into /etc (deploy/README.md)
	install -d $(DESTDIR)$(PREFIX)/lib/systemd/system $(DESTDIR)$(PREFIX)/share/parley/deploy
	sed -e 's|@BINDIR@|$(PREFIX)/bin|g' -e 's|@DATADIR@|$(PREFIX)/share/parley|g' deploy/parley.service \
	  > $(DESTDIR)$(PREFIX)/lib/systemd/system/parley.service
	chmod 644 $(DESTDIR)$(PREFIX)/lib/systemd/system/parley.service
	cp -R deploy/README.md deploy/parley.env deploy/nginx deploy/caddy deploy/logrotate $(DESTDIR)$(PREFIX)/share/parley/deploy/
	@test -f /usr/share/lua/5.1/luacheck/parser.lua || echo "note: parley check needs luacheck's parser at run time:" \
	  "apt-get install lua-check (docs/deployment.md#installing)"

clean:
	rm -rf build parley

-include $(wildcard build/obj/*/*.d build/san/*/*.d build/tsan/*/*.d build/fuzz/obj/*/*.d)
