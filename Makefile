# ringway — the front door. The real build is CMakeLists.txt; these targets wrap it.
#   make deps   install missing Debian packages (apt-get) and the npm test client
#   make build  build/ringway (release)
#   make run    deps + build + start the gateway in the foreground with defaults
#   make test   deps + build + every test through ctest
#   make bench  deps + build + micro-benchmarks and load runs (not a test)
#   make soak   build + valid, abusive and misbehaving traffic for DURATION seconds (600),
#               then the invariants checked (not a test, not in CI's default path)
#   make install  build + install under PREFIX (default /usr/local), honouring DESTDIR
#   make deb    build + a Debian package (CPack) in $(BUILD)/
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
DEB_PACKAGES := build-essential cmake ninja-build pkg-config liburing-dev libsimdjson-dev \
    libsqlite3-dev libmimalloc-dev libssl-dev libgtest-dev libbenchmark-dev node-llhttp sqlite3 \
    curl openssl gnuplot-nox chromium redis-server libpq-dev postgresql
# gnuplot-nox: make bench's plot. chromium: headless, the dashboard's browser test
# (tests/e2e/dashboard_test.cc) loads the page. redis-server: tests/e2e/redis_share_test.cc
# starts one on a spare loopback port (RINGWAY_REDIS). libpq-dev: the PostgreSQL backend's
# header (RINGWAY_DB=postgres://...; its libpq5 is dlopen'd only then, storage/pg_lib.h);
# postgresql: the throwaway server its tests start
# (tests/support/pg_server.sh, run as the postgres user).
# Node.js runs the official openai SDK tests. Checked by command, not by package: a machine
# may have node and npm from elsewhere (nodesource ships npm inside its nodejs package), and
# installing Debian's npm over that would fight it.
NODE_PACKAGES := $(shell command -v node >/dev/null 2>&1 || echo nodejs) \
    $(shell command -v npm >/dev/null 2>&1 || echo npm)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

DURATION ?= 600
PREFIX ?= /usr/local
DESTDIR ?=

.PHONY: deps build run test test-asan bench soak format format-check clean install deb

deps:
	@missing=$$(for p in $(DEB_PACKAGES); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; \
	done) ; missing="$$missing $(strip $(NODE_PACKAGES))"; missing=$$(echo $$missing); \
	if [ -n "$$missing" ]; then \
	    echo "make deps: installing $$missing"; \
	    $(SUDO) apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	else echo "make deps: all Debian packages present"; fi

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS)

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

run: build
	mkdir -p var
	./$(BUILD)/ringway

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 600

# The same tests under AddressSanitizer + UBSan in build-asan/.
test-asan: deps
	cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DRW_SANITIZE=asan-ubsan
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ctest --output-on-failure -j $(JOBS) --timeout 900

# clang-format (STYLE §8, .clang-format): `make format` rewrites, `make format-check` fails
# on any difference (CI runs it).
format:
	git ls-files '*.cc' '*.h' | xargs clang-format -i

format-check:
	@command -v clang-format >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq clang-format; }
	git ls-files '*.cc' '*.h' | xargs clang-format --dry-run --Werror

# The binary, the systemd unit and the example environment file; /etc/ringway/ringway.env
# and /etc/ringway/secret-key only when they do not exist yet (packaging/install.cmake,
# packaging/secret-key.sh).
install: build
	DESTDIR="$(DESTDIR)" cmake --install $(BUILD) --prefix "$(PREFIX)"
	sh packaging/secret-key.sh "$(DESTDIR)/etc/ringway"

# ringway_<version>_<arch>.deb in $(BUILD)/: prefix /usr, the unit enabled but not started.
deb: build
	cd $(BUILD) && cpack -G DEB

bench: build
	./bench/run.sh $(BUILD)

soak: build
	python3 bench/soak/soak.py $(BUILD) --duration $(DURATION)

clean:
	rm -rf $(BUILD) build-asan
