# tbgw — the two commands: `make run` and `make test`. See README.md.
JOBS ?= $(shell nproc)
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
CTEST_ARGS ?= --output-on-failure
# what `make run` needs: the gateway (and its modules), the demo's plugin connector, the Modbus slave
DEMO_TARGETS ?= tbgw test_connector bench_modbus_slave

.PHONY: all deps build asan fuzz test test-fast test-asan fuzz-smoke run bench package format format-check clean

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DTBGW_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)

fuzz: deps
	@CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug -DTBGW_FUZZ=ON >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS)

# The whole suite: format check, unit + integration tests, the same under ASan+UBSan, fuzz smoke runs.
test: format-check build asan fuzz
	@cd $(BUILD) && ctest $(CTEST_ARGS) -j $(JOBS)
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp ctest $(CTEST_ARGS) -j $(JOBS)
	@bash scripts/fuzz-smoke.sh $(FUZZ_BUILD)

test-asan: asan
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp ctest $(CTEST_ARGS) -j $(JOBS)

test-fast: build
	@cd $(BUILD) && ctest $(CTEST_ARGS) -j $(JOBS)

# One status line for the build (the whole output goes to $(BUILD)/build.log), then the demo.
run: deps
	@bash scripts/quiet-build.sh $(BUILD) $(JOBS) $(DEMO_TARGETS)
	@bash scripts/demo.sh

# The Debian package (a Release build of its own): build-pkg/tbgw_<version>_<arch>.deb
package: deps
	@cmake -S . -B build-pkg -DCMAKE_BUILD_TYPE=Release -DTBGW_TESTS=OFF >/dev/null
	@cmake --build build-pkg -j $(JOBS)
	@cd build-pkg && cpack -G DEB

bench: build
	@bash bench/run.sh

format:
	@clang-format -i $$(git ls-files -co --exclude-standard '*.c' '*.h')

format-check: deps
	@bad=$$(for f in $$(git ls-files -co --exclude-standard '*.c' '*.h'); do [ -f "$$f" ] && { clang-format --dry-run --Werror "$$f" >/dev/null 2>&1 || echo "$$f"; }; done); \
	if [ -n "$$bad" ]; then echo "not clang-format clean (run 'make format'):"; echo "$$bad"; exit 1; fi

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) build-pkg
