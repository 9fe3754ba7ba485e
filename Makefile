# antre: one Makefile builds the gateway, the worker, the unit tests and the fuzz replayer.
#
#   make              build build/antre-gateway and build/antre-worker
#   make deps         install missing Debian packages (as root; prints the command otherwise)
#   make run          start embedded Redis, the gateway and a worker in the foreground
#   make test         unit tests (Criterion), fuzz corpus replay, system tests (pytest)
#   make SANITIZE=1   build with AddressSanitizer + UndefinedBehaviorSanitizer (into build-san/)
#   make WERROR=1     turn warnings into errors (CI does)
#   make bench        antre-bench: a one-minute wave opening against a deployment it starts
#                     itself; the report goes to build/bench/ (make bench-http: the old bench)

CC      ?= cc
PKGS    := libevent libevent_pthreads hiredis jansson inih libcrypto libssl libjwt
TEST_PKGS := criterion
# The worker's photo checks (worker/photo*.c) need libvips, its HTTP and SMTP clients
# (worker/curl_loop.c) libcurl and its DKIM signatures (worker/dkim.c) libopendkim; only the
# worker and the unit tests (which link the worker's archive) are built with them, the gateway
# is not.
WORKER_PKGS := vips libcurl opendkim

# Debian package that ships each pkg-config module (or header), for the "missing" message.
DEB_libevent          := libevent-dev
DEB_libevent_pthreads := libevent-dev
DEB_hiredis           := libhiredis-dev
DEB_jansson           := libjansson-dev
DEB_inih              := libinih-dev
DEB_libcrypto         := libssl-dev
DEB_libssl            := libssl-dev
DEB_criterion         := libcriterion-dev
DEB_vips              := libvips-dev
DEB_libcurl           := libcurl4-openssl-dev
DEB_opendkim          := libopendkim-dev
DEB_libjwt            := libjwt-dev

# What `make deps` installs (to build and run), and what `make test-deps` adds (to test).
# libhttp-parser-dev is no longer used by the gateway (it has its own parser, gateway/http1.c);
# it stays for the differential fuzz target tests/fuzz/fuzz_http1_diff.c.
DEB_PACKAGES := build-essential pkg-config libevent-dev libhiredis-dev libjansson-dev \
                libhttp-parser-dev libinih-dev libssl-dev libvips-dev libcurl4-openssl-dev libopendkim-dev libjwt-dev redis-server \
                curl util-linux
# heif-enc, cwebp and exiftool make and inspect the photos of tests/unit/test_photo.c; promtool
# (prometheus) checks the worker's /metrics; aiosmtpd is the SMTP server the codes are sent to,
# python3-dkim checks their signatures, made with keys from the openssl command. nginx (with its
# stream module) stands in front of the gateway as a real proxy; slowhttptest plays the slow client.
# python3-cryptography opens the personal fields sealed at rest (tests/system/seal_ref.py).
DEB_TEST_PACKAGES := libcriterion-dev python3 python3-pytest python3-requests chromium clang-format \
                     libheif-examples webp libimage-exiftool-perl prometheus \
                     python3-aiosmtpd python3-dkim python3-cryptography openssl \
                     nginx libnginx-mod-stream slowhttptest

ifeq ($(SANITIZE),1)
BUILD   := build-san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
BUILD   := build
SANFLAGS :=
endif

WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Wvla
ifeq ($(WERROR),1)
WARN    += -Werror
endif

# pkg-config is asked only when building, so `make deps` works on a bare machine.
NEED_PKG := $(filter-out deps test-deps run test help clean distclean,$(MAKECMDGOALS))
ifneq ($(or $(NEED_PKG),$(if $(MAKECMDGOALS),,all)),)
MISSING := $(strip $(foreach p,$(PKGS) $(WORKER_PKGS),$(if $(shell pkg-config --exists $(p) && echo y),,$(p))))
ifneq ($(MISSING),)
$(error missing libraries: $(MISSING); install with: apt-get install $(sort $(foreach p,$(MISSING),$(DEB_$(p)))) (or run `make deps` as root))
endif
ifeq ($(wildcard /usr/include/http_parser.h),)
$(error missing http-parser (the reference of the differential fuzz target; it ships no pkg-config file); install with: apt-get install libhttp-parser-dev (or run `make deps` as root))
endif
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   := $(shell pkg-config --libs $(PKGS)) -lpthread -lm
# The gateway parses HTTP itself (gateway/http1.c); http-parser is linked only into the fuzz
# targets, as the reference tests/fuzz/fuzz_http1_diff.c compares the parser with.
FUZZ_LIBS  := -lhttp_parser
# -isystem: glib's headers are not held to our warnings.
WORKER_CFLAGS := $(patsubst -I%,-isystem %,$(shell pkg-config --cflags $(WORKER_PKGS)))
WORKER_LIBS   := $(shell pkg-config --libs $(WORKER_PKGS))
endif

CPPFLAGS += -Iinclude -D_GNU_SOURCE -MMD -MP
CFLAGS   ?= -O2 -g
CFLAGS   += -std=c11 $(WARN) $(SANFLAGS) $(PKG_CFLAGS)
LDFLAGS  += $(SANFLAGS)

COMMON_SRC  := $(wildcard common/*.c)
GATEWAY_SRC := $(filter-out gateway/main.c,$(wildcard gateway/*.c))
WORKER_SRC  := $(filter-out worker/main.c,$(wildcard worker/*.c))
# antre-bench, the surge simulator (bench/sim/); built once its main.c exists.
BENCH_SRC   := $(filter-out bench/sim/main.c,$(wildcard bench/sim/*.c))
LUA_SRC     := $(wildcard common/lua/*.lua)
UNIT_SRC    := $(wildcard tests/unit/test_*.c)
FUZZ_SRC    := $(wildcard tests/fuzz/fuzz_*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

COMMON_LIB  := $(BUILD)/libantre_common.a
GATEWAY_LIB := $(BUILD)/libantre_gateway.a
WORKER_LIB  := $(BUILD)/libantre_worker.a
BENCH_LIB   := $(BUILD)/libantre_bench.a
BENCH_BIN   := $(if $(wildcard bench/sim/main.c),$(BUILD)/antre-bench)
UNIT_BIN    := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
FUZZ_REPLAY := $(patsubst tests/fuzz/%.c,$(BUILD)/tests/%-replay,$(FUZZ_SRC))

.SECONDARY:
.PHONY: all deps test-deps run test unit-test fuzz-replay system-test fuzz clean help bench bench-http
all: $(BUILD)/antre-gateway $(BUILD)/antre-worker $(BENCH_BIN)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

# Lua scripts are embedded as C strings: common/lua/NAME.lua -> lua_NAME.
$(BUILD)/gen/lua_scripts.c: $(LUA_SRC) Makefile
	@mkdir -p $(dir $@)
	@{ echo '/* Generated from the scripts in common/lua by the Makefile; do not edit. */'; \
	   echo '#include "antre/lua_scripts.h"'; \
	   for f in $(LUA_SRC); do n=$$(basename $$f .lua); \
	     printf 'const char lua_%s[] =\n' "$$n"; \
	     sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/    "/' -e 's/$$/\\n"/' $$f; \
	     echo ';'; done; } > $@
$(BUILD)/obj/gen/lua_scripts.o: $(BUILD)/gen/lua_scripts.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

COMMON_OBJ := $(call obj,$(COMMON_SRC)) $(if $(LUA_SRC),$(BUILD)/obj/gen/lua_scripts.o)
$(COMMON_LIB): $(COMMON_OBJ)
	@rm -f $@; ar rcs $@ $^
$(GATEWAY_LIB): $(call obj,$(GATEWAY_SRC))
	@rm -f $@; ar rcs $@ $^
$(WORKER_LIB): $(call obj,$(WORKER_SRC)) $(if $(WORKER_SRC),,$(COMMON_LIB))
	@rm -f $@; ar rcs $@ $(call obj,$(WORKER_SRC))

$(BENCH_LIB): $(call obj,$(BENCH_SRC)) $(if $(BENCH_SRC),,$(COMMON_LIB))
	@rm -f $@; ar rcs $@ $(call obj,$(BENCH_SRC))
$(BUILD)/obj/bench/%.o $(BUILD)/obj/tests/unit/test_bench_%.o: CPPFLAGS += -Ibench/sim

$(BUILD)/antre-gateway: $(BUILD)/obj/gateway/main.o $(GATEWAY_LIB) $(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)
$(BUILD)/antre-worker: $(BUILD)/obj/worker/main.o $(WORKER_LIB) $(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(WORKER_LIBS)
$(BUILD)/antre-bench: $(BUILD)/obj/bench/sim/main.o $(BENCH_LIB) $(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(WORKER_LIBS)
# The virtual applicants' photos are real JPEGs made at start with libvips (the worker's).
$(BUILD)/obj/bench/sim/applicant.o $(BUILD)/obj/bench/sim/main.o: CFLAGS += $(WORKER_CFLAGS)
$(BUILD)/obj/worker/%.o $(BUILD)/obj/tests/unit/test_photo.o: CFLAGS += $(WORKER_CFLAGS)

# Unit tests and fuzz targets see the gateway's private headers too.
$(BUILD)/obj/tests/%.o: CPPFLAGS += -Igateway

# Unit tests may #include the .c they test (to reach statics); the archives supply the rest.
$(BUILD)/tests/test_%: $(BUILD)/obj/tests/unit/test_%.o $(GATEWAY_LIB) $(WORKER_LIB) $(BENCH_LIB) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(GATEWAY_LIB) $(WORKER_LIB) $(BENCH_LIB) $(COMMON_LIB) $(PKG_LIBS) $(WORKER_LIBS) $$(pkg-config --libs $(TEST_PKGS))

# A fuzz target built without libFuzzer: replays every file of its corpus once.
$(BUILD)/tests/fuzz_%-replay: $(BUILD)/obj/tests/fuzz/fuzz_%.o $(BUILD)/obj/tests/fuzz/replay_main.o $(GATEWAY_LIB) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(FUZZ_LIBS)
$(BUILD)/obj/tests/fuzz/replay_main.o: tests/fuzz/replay_main.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

# libFuzzer builds (clang): make fuzz, then build/fuzz/fuzz_request tests/fuzz/corpus/request
fuzz: $(if $(LUA_SRC),$(BUILD)/gen/lua_scripts.c)
	@mkdir -p build/fuzz
	for f in $(FUZZ_SRC); do n=$$(basename $$f .c); \
	  clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iinclude -Igateway $(PKG_CFLAGS) \
	    -o build/fuzz/$$n $$f $(GATEWAY_SRC) $(COMMON_SRC) $(if $(LUA_SRC),$(BUILD)/gen/lua_scripts.c) \
	    $(PKG_LIBS) $(FUZZ_LIBS) || exit 1; done

deps test-deps: PKGLIST = $(DEB_PACKAGES) $(if $(filter test-deps,$@),$(DEB_TEST_PACKAGES))
# The browser and tus tests drive Chromium and tus-js-client from Node.js: any Node.js with npm
# will do, so nodejs and npm are asked for only when there is no npm. One `apt-get update` first:
# a fresh machine may have no package lists at all. RUNLEVEL=1 keeps invoke-rc.d from starting the
# services packages bring (nginx is a test partner the tests start themselves, not a daemon on :80).
deps test-deps:
	@missing=$$(for p in $(PKGLIST); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ "$@" = test-deps ] && ! command -v npm >/dev/null; then missing="$$missing nodejs npm"; fi; \
	missing=$$(echo $$missing); \
	if [ -z "$$missing" ]; then echo "deps: all Debian packages present"; \
	elif [ "$$(id -u)" = 0 ]; then echo "deps: installing $$missing"; \
	  apt-get update -q && RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	else echo "deps: missing Debian packages: $$missing"; \
	  echo "deps: run: sudo apt-get install $$missing"; exit 1; fi

# The configuration `make run` starts with (tests/fresh/run points it at a copy on free ports).
RUN_CONF ?= conf/antre.conf
run: deps
	@$(MAKE) --no-print-directory all
	@exec conf/run.sh $(BUILD) $(RUN_CONF)

unit-test: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t --jobs 1; done

fuzz-replay: $(FUZZ_REPLAY)
	@set -e; for t in $(FUZZ_REPLAY); do n=$$(basename $$t -replay); n=$${n#fuzz_}; \
	  echo "== $$t tests/fuzz/corpus/$$n"; $$t tests/fuzz/corpus/$$n; done

system-test: all
	ANTRE_BUILD=$(BUILD) /usr/bin/python3 -m pytest -q tests/system $(PYTEST_ARGS)

test: test-deps
	@$(MAKE) --no-print-directory all unit-test fuzz-replay
	@$(MAKE) --no-print-directory system-test

# antre-bench against a deployment of its own (bench/run-sim); BENCH_ARGS adds run-sim options
# (--profile, --duration, --scale, --out, and after -- antre-bench's own).
bench: all
	bench/run-sim --build $(BUILD) --out $(BUILD)/bench $(BENCH_ARGS)

bench-http: all
	bench/http-vs-nginx

clean:
	rm -rf build build-san

help:
	@sed -n '1,12p' Makefile

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
