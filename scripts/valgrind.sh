#!/usr/bin/env bash
# Runs ringloop under valgrind memcheck (issue 7) and fails on any memory
# error or definite/indirect leak:
#
#   echo       tests/stress_echo.rs `valgrind_echo_64x10000`: an echo server
#              and 64 client connections × 10,000 messages (1..=512 bytes,
#              every byte checked) on one loop.
#   loop_drop  tests/stress_ops.rs `stress_loop_drop_with_ops_in_flight`:
#              3 loops, each dropped while 1,024 ops are in flight.
#
# Usage: scripts/valgrind.sh                  # both runs
#        scripts/valgrind.sh echo             # or just the named ones
# Environment (defaults): RINGLOOP_VALGRIND_CONNS (64), RINGLOOP_VALGRIND_MSGS
# (10000), RINGLOOP_VALGRIND_MSG_BYTES (512), VALGRIND_LOOP_DROPS (3),
# VALGRIND_OPS (1024), VALGRIND_TIMEOUT (3600 s per run), VALGRIND_ARGS
# (extra valgrind options, e.g. "--track-origins=yes" or
# "--gen-suppressions=all").
#
# Valgrind flags: --leak-check=full --error-exitcode=1
# --errors-for-leak-kinds=definite,indirect --suppressions=scripts/valgrind.supp
# (each suppression there is a read buffer the kernel filled through
# io_uring, which valgrind cannot see; see that file). "possibly lost"
# blocks are listed but are not errors (std keeps the main thread's handle
# in a thread-local: 48 bytes).
#
# Every ring in one thread: valgrind 3.19 holds its global lock across
# io_uring_enter (it does not know the call can block), so a loop waiting
# in the kernel stops every other thread, and a wait that another thread
# must end (a second loop, a cross-thread wake-up, the blocking pool)
# never ends. Both runs keep their loops on the test's thread.
#
# Builds the test binaries in release with debug info into target/valgrind
# (the normal target/ stays as it is). Logs: target/valgrind/logs/<run>.log
# (valgrind) and <run>.out (the test's output).
# Exit status: 0 if every run passed; 1 if one failed; 2 without valgrind.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v valgrind >/dev/null 2>&1; then
    echo "valgrind.sh: valgrind not found (apt-get install valgrind); nothing was run" >&2
    exit 2
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/valgrind}"
export CARGO_PROFILE_RELEASE_DEBUG=true
logs="$CARGO_TARGET_DIR/logs"
mkdir -p "$logs"

runs=("$@")
[ ${#runs[@]} -gt 0 ] || runs=(echo loop_drop)
for r in "${runs[@]}"; do
    case "$r" in
        echo | loop_drop) ;;
        *)
            echo "valgrind.sh: unknown run '$r' (echo, loop_drop)" >&2
            exit 1
            ;;
    esac
done

start=$SECONDS
json="$logs/build.json"
cargo test --release --no-run --test stress_echo --test stress_ops \
    --message-format=json >"$json"
# The test binary of target `$1`, from cargo's JSON messages.
exe() {
    grep "\"name\":\"$1\"" "$json" | grep '"executable":"' |
        sed 's/.*"executable":"\([^"]*\)".*/\1/' | tail -n 1
}
echo_bin=$(exe stress_echo)
ops_bin=$(exe stress_ops)
if [ -z "$echo_bin" ] || [ -z "$ops_bin" ]; then
    echo "valgrind.sh: no test binary in cargo's output ($json)" >&2
    exit 1
fi
echo "valgrind.sh: $(valgrind --version); built in $((SECONDS - start)) s"

read -r -a extra <<<"${VALGRIND_ARGS:-}"
vg=(valgrind --leak-check=full --error-exitcode=1
    --errors-for-leak-kinds=definite,indirect
    --suppressions=scripts/valgrind.supp --num-callers=40 "${extra[@]}")

failed=0
# run NAME BINARY TEST [VAR=VALUE...]: one test under valgrind, then its
# summary.
run() {
    local name=$1 bin=$2 test=$3
    shift 3
    local log="$logs/$name.log" out="$logs/$name.out" t0=$SECONDS status=0
    echo "== $name: $* $(basename "$bin") --exact $test"
    # `timeout` signals its whole process group: valgrind and the test.
    env "$@" timeout -k 30 "${VALGRIND_TIMEOUT:-3600}" \
        "${vg[@]}" --log-file="$log" \
        "$bin" --exact "$test" --ignored --nocapture --test-threads=1 \
        >"$out" 2>&1 || status=$?
    # (libtest may print `test <name> ... ` on the same line.)
    grep -o 'FIGURE .*' "$out" || true
    grep -E 'ERROR SUMMARY|definitely lost:|indirectly lost:|possibly lost:|still reachable:' \
        "$log" | sed 's/^==[0-9]*== */   /' || true
    if [ "$status" -ne 0 ]; then
        failed=1
        case $status in
            1) why="valgrind found errors (see $log)" ;;
            124 | 137) why="timed out after ${VALGRIND_TIMEOUT:-3600} s" ;;
            *) why="the test failed (see $out)" ;;
        esac
        echo "== $name: FAILED in $((SECONDS - t0)) s, exit $status: $why"
    else
        echo "== $name: ok in $((SECONDS - t0)) s"
    fi
}

for r in "${runs[@]}"; do
    case "$r" in
        echo)
            run echo "$echo_bin" valgrind_echo_64x10000 \
                RINGLOOP_VALGRIND_CONNS="${RINGLOOP_VALGRIND_CONNS:-64}" \
                RINGLOOP_VALGRIND_MSGS="${RINGLOOP_VALGRIND_MSGS:-10000}" \
                RINGLOOP_VALGRIND_MSG_BYTES="${RINGLOOP_VALGRIND_MSG_BYTES:-512}"
            ;;
        loop_drop)
            run loop_drop "$ops_bin" stress_loop_drop_with_ops_in_flight \
                RINGLOOP_STRESS_LOOP_DROPS="${VALGRIND_LOOP_DROPS:-3}" \
                RINGLOOP_STRESS_OPS="${VALGRIND_OPS:-1024}"
            ;;
    esac
done
echo "valgrind.sh: $((SECONDS - start)) s in all; $([ $failed -eq 0 ] && echo ok || echo FAILED)"
exit $failed
