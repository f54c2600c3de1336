#!/usr/bin/env bash
# Runs ringloop's whole test suite (`cargo test`: the library's unit tests,
# every tests/*.rs and the doc tests) under AddressSanitizer with
# LeakSanitizer on: use-after-free, buffer overflows, double frees and
# leaked allocations (a reference cycle that keeps a loop's driver alive is
# one). Exits non-zero on any report or failed test.
#
#   scripts/asan.sh                  # everything
#   scripts/asan.sh --test tcp_echo  # extra arguments select cargo targets
#
# Needs the nightly toolchain (-Zsanitizer, -Zbuild-std: std itself is
# instrumented, so a bad free inside a std collection is caught too). Builds
# into target/asan, so the normal build in target/ is left alone. The crate
# is built at opt-level 1 (debug assertions stay on): at opt-level 0 the
# instrumented debug build is ~5x slower and the tests with time bounds (a
# 10 MiB pipe round trip in 60 s) fail for slowness alone.
#
# The kernel's writes into io_uring buffers are invisible to ASan; that is
# fine: ASan checks which memory is allocated, and the driver's invariant is
# exactly that a buffer stays allocated until its CQE.
#
# The doc tests run too: cargo hands rustdoc the instrumented std it built
# (-Zbuild-std) and RUSTDOCFLAGS carries the sanitizer flag.
#
# Reports are written to target/asan/reports/ (ASAN_OPTIONS log_path), also
# those of a child process whose stderr a test captures; they are printed,
# then counted in the summary.
set -euo pipefail
cd "$(dirname "$0")/.."

SAN_NAME=asan.sh
SAN_REPORT_KIND="AddressSanitizer and LeakSanitizer"
SAN_REPORT_RE='ERROR: \(AddressSanitizer\|LeakSanitizer\)'
# shellcheck source=lib/sanitizer_common.sh
. scripts/lib/sanitizer_common.sh
san_require_nightly

san_build_env asan address
# detect_leaks: LeakSanitizer at each test binary's exit.
# detect_stack_use_after_return: also catches a pointer into a returned
# frame (costs some speed). abort_on_error=0: exit with an error code, so
# the other binaries still run.
export ASAN_OPTIONS="detect_leaks=1:detect_stack_use_after_return=1:abort_on_error=0:log_path=$SAN_REPORTS/asan"
SAN_ENV_SHOWN="ASAN_OPTIONS=\"$ASAN_OPTIONS\""

if [ "$#" -gt 0 ]; then
    SAN_CARGO_ARGS=("$@")
else
    # No target selection: exactly what `cargo test` runs (examples are
    # built, not run).
    SAN_CARGO_ARGS=()
fi
# Nothing is skipped: no test measures RSS, and the tests that start child
# processes (tests/process.rs: sh, cat, sleep; tests/signals.rs: its own
# binary, and a fork) work under ASan; a re-executed test binary reports
# into the same directory.
SAN_TEST_ARGS=()
SAN_SKIPPED="none"
SAN_COMMAND_SHOWN="RUSTFLAGS=\"$RUSTFLAGS\" CARGO_PROFILE_DEV_OPT_LEVEL=1 cargo +nightly test -Zbuild-std --target $SAN_TARGET ${SAN_CARGO_ARGS[*]}"

san_run
exit "$SAN_STATUS"
