#!/usr/bin/env bash
# Runs ringloop's cross-thread tests under ThreadSanitizer: the library's
# unit tests (the blocking pool, the task-cell cache; the remote queue's and
# sync::cross's own unit tests are loom models, run by scripts/loom.sh) and
# every tests/*.rs that starts threads: threadsafe.rs (the remote queue and
# its eventfd wake-up, RemoteTask), cores.rs, blocking_pool.rs,
# sync_cross.rs, signals.rs, cross_thread_release.rs, event_loop.rs and
# regressions.rs (their cross-thread wakes). Exits non-zero on any data
# race report or failed test.
#
#   scripts/tsan.sh                  # the list above
#   scripts/tsan.sh --test cores     # extra arguments select cargo targets
#
# Needs the nightly toolchain (-Zsanitizer=thread requires -Zbuild-std: an
# uninstrumented std would hide every synchronisation done inside it).
# Builds into target/tsan at opt-level 1 (debug assertions stay on), for
# speed, as scripts/asan.sh does.
#
# TSan sees only synchronisation done in user space. ringloop's cross-thread
# hand-offs are ordered by atomics and locks (the remote queue pushes under
# a Mutex; the eventfd write that wakes a parked loop carries no data), so
# they need no suppression; scripts/tsan.supp lists what does, each entry
# with its reason.
#
# Reports are written to target/tsan/reports/ (TSAN_OPTIONS log_path), then
# printed and counted in the summary.
set -euo pipefail
cd "$(dirname "$0")/.."

SAN_NAME=tsan.sh
SAN_REPORT_KIND="ThreadSanitizer"
SAN_REPORT_RE='WARNING: ThreadSanitizer'
# shellcheck source=lib/sanitizer_common.sh
. scripts/lib/sanitizer_common.sh
san_require_nightly

san_build_env tsan thread
# halt_on_error=0: report every race, not just the first; the binary still
# exits with status 66 at the end when there was one.
# second_deadlock_stack: both stacks of a lock-order inversion.
export TSAN_OPTIONS="halt_on_error=0:second_deadlock_stack=1:suppressions=$PWD/scripts/tsan.supp:log_path=$SAN_REPORTS/tsan"
SAN_ENV_SHOWN="TSAN_OPTIONS=\"$TSAN_OPTIONS\""

if [ "$#" -gt 0 ]; then
    SAN_CARGO_ARGS=("$@")
else
    SAN_CARGO_ARGS=(--lib --test threadsafe --test cores --test blocking_pool
        --test sync_cross --test signals --test cross_thread_release
        --test event_loop --test regressions --test loop_sync_fidelity
        --test cores_distribution)
fi
# Skipped (by exact name): the three tests/signals.rs scenarios that send
# SIGINT to a child process (the test binary re-executed) and wait for it to
# react. TSan defers an asynchronous signal's handler until the receiving
# thread next enters a function TSan intercepts; the child's threads block
# in raw syscall(2)s TSan does not intercept (io_uring_enter in the loop,
# futex in the harness), so the handler never runs and the child hangs
# until the test's 10 s limit (seen in gdb: the kernel has delivered the
# signal, both threads sit in syscall()). Not a race and not ringloop's
# doing; they run under scripts/asan.sh and in `cargo test`. The in-process
# signal tests (raise(3), which TSan intercepts) do run here.
SAN_SKIP_TESTS=(
    x1_ctrl_c_cancels_the_main_future_and_run_returns_keyboard_interrupt
    x1_second_ctrl_c_during_cleanup_ends_the_process
    x1_user_sigint_listener_takes_precedence_over_run
)
SAN_TEST_ARGS=(--exact)
for t in "${SAN_SKIP_TESTS[@]}"; do
    SAN_TEST_ARGS+=(--skip "$t")
done
SAN_SKIPPED="${#SAN_SKIP_TESTS[@]} tests (${SAN_SKIP_TESTS[*]}): SIGINT to a child process, see the script"
SAN_COMMAND_SHOWN="RUSTFLAGS=\"$RUSTFLAGS\" CARGO_PROFILE_DEV_OPT_LEVEL=1 cargo +nightly test -Zbuild-std --target $SAN_TARGET ${SAN_CARGO_ARGS[*]}"

san_run
exit "$SAN_STATUS"
