#!/usr/bin/env bash
# Runs every ignored (stress) test of tests/stress_ops.rs and
# tests/stress_echo.rs in release mode, one at a time, with --nocapture;
# collects the `FIGURE name key=value ...` lines they print into a summary
# (stdout and target/stress-figures.txt; target/stress-figures-epoll.txt
# with RINGLOOP_BACKEND=epoll). Every test runs even if an earlier one
# failed; exits non-zero if any failed (or hung past STRESS_TIMEOUT).
#
#   scripts/stress.sh                  # the issue's sizes (~3 min plus the
#                                      # echo tests' own durations)
#   QUICK=1 scripts/stress.sh          # small sizes, for .ci/run (~1 min)
#   scripts/stress.sh stress_small_ring   # only tests whose name matches
#   RINGLOOP_BACKEND=epoll QUICK=1 scripts/stress.sh   # on the epoll backend
#
# Sizes (environment; QUICK=1 changes only the defaults of unset ones):
#   STORM_OPS          cancellation storm ops            1,000,000 (quick 10,000)
#   LOOP_DROPS         loops dropped with ops in flight  1,000     (quick 20)
#   LOOP_OPS           ops in flight per dropped loop    1,024
#   SMALL_RING_OPS     ops on the SQ 2 / CQ 4 ring       10,000
#   RINGLOOP_STRESS_CONNS, RINGLOOP_STRESS_SECS: echo connections and
#                      seconds (the echo tests' defaults; quick 1,000 x 5 s)
# The stress tests read RINGLOOP_STRESS_OPS both as the storm's op count and
# as the ops in flight per dropped loop: this script sets it per test from
# STORM_OPS (which defaults to RINGLOOP_STRESS_OPS when that is set) and
# LOOP_OPS. Every other variable (RINGLOOP_STRESS_SEED, RINGLOOP_BACKEND,
# ...) passes through. A test about io_uring itself (the SQ 2 / CQ 4 ring)
# skips on the epoll backend and says why; the summary lists it as "skip".
set -euo pipefail
cd "$(dirname "$0")/.."

quick="${QUICK:-}"
if [ "$quick" = 0 ]; then quick=""; fi
storm_ops="${STORM_OPS:-${RINGLOOP_STRESS_OPS:-${quick:+10000}}}"
storm_ops="${storm_ops:-1000000}"
loop_drops="${LOOP_DROPS:-${RINGLOOP_STRESS_LOOP_DROPS:-${quick:+20}}}"
loop_drops="${loop_drops:-1000}"
loop_ops="${LOOP_OPS:-1024}"
small_ring_ops="${SMALL_RING_OPS:-${RINGLOOP_STRESS_SMALL_RING_OPS:-10000}}"
if [ -n "$quick" ]; then
    export RINGLOOP_STRESS_CONNS="${RINGLOOP_STRESS_CONNS:-1000}"
    export RINGLOOP_STRESS_SECS="${RINGLOOP_STRESS_SECS:-5}"
fi
timeout_secs="${STRESS_TIMEOUT:-$([ -n "$quick" ] && echo 300 || echo 1800)}"
filter="${1:-}"

suites=(stress_ops)
if [ -f tests/stress_echo.rs ]; then
    suites+=(stress_echo)
else
    echo "stress.sh: tests/stress_echo.rs does not exist yet; skipping it" >&2
fi

start=$SECONDS
test_args=()
for s in "${suites[@]}"; do test_args+=(--test "$s"); done
# The test binaries are run directly (so `timeout` stops the test itself,
# not just cargo); cargo names them on stderr.
if ! build=$(cargo test --release --no-run "${test_args[@]}" 2>&1); then
    echo "$build" >&2
    echo "stress.sh: the build failed" >&2
    exit 1
fi
echo "$build" >&2
declare -A bins
while read -r name path; do
    bins[$name]=$path
done < <(sed -n 's/^ *Executable tests\/\(.*\)\.rs (\(.*\))$/\1 \2/p' <<<"$build")

# One summary and log per backend asked for, so the two runs of .ci/run
# keep both.
backend="${RINGLOOP_BACKEND:-}"
suffix="${backend:+-${backend//[^a-z_]/}}"
figures="target/stress-figures$suffix.txt"
log="target/stress-log$suffix.txt"
mkdir -p target
: >"$figures.tmp"
: >"$log"
failed=()
results=()

# Per-test sizes: the storm and the loop drops share RINGLOOP_STRESS_OPS.
env_for() {
    case "$1" in
        stress_cancellation_storm) echo "RINGLOOP_STRESS_OPS=$storm_ops" ;;
        stress_loop_drop_with_ops_in_flight)
            echo "RINGLOOP_STRESS_OPS=$loop_ops RINGLOOP_STRESS_LOOP_DROPS=$loop_drops" ;;
        stress_small_ring) echo "RINGLOOP_STRESS_SMALL_RING_OPS=$small_ring_ops" ;;
        *) echo "" ;;
    esac
}

for suite in "${suites[@]}"; do
    bin="${bins[$suite]:-}"
    if [ -z "$bin" ]; then
        echo "stress.sh: no test binary for $suite" >&2
        failed+=("$suite (not built)")
        continue
    fi
    mapfile -t tests < <("$bin" --ignored --list | sed -n 's/^\(.*\): test$/\1/p')
    for t in "${tests[@]}"; do
        if [ -n "$filter" ] && [[ "$t" != *"$filter"* ]]; then
            continue
        fi
        # shellcheck disable=SC2046 # word splitting of VAR=value pairs is wanted
        set -- $(env_for "$t")
        echo "==> $suite::$t ${*:-}" | tee -a "$log"
        t0=$SECONDS
        out=$(mktemp)
        status=0
        env "$@" timeout "$timeout_secs" "$bin" --ignored --exact "$t" --test-threads=1 \
            --nocapture 2>&1 | tee "$out" || status=$?
        cat "$out" >>"$log"
        took=$((SECONDS - t0))
        grep -o 'FIGURE .*' "$out" >>"$figures.tmp" || true
        if grep -q '^test result: ok. 1 passed' "$out" && [ "$status" = 0 ]; then
            if grep -q 'skipped on the epoll backend' "$out"; then
                results+=("skip   ${took}s  $suite::$t (io_uring only)")
            else
                results+=("ok     ${took}s  $suite::$t")
            fi
        else
            results+=("FAILED ${took}s  $suite::$t")
            failed+=("$suite::$t")
        fi
        rm -f "$out"
    done
done

{
    echo "# scripts/stress.sh $(date -u +%Y-%m-%dT%H:%M:%SZ)${quick:+ (QUICK)}, backend ${backend:-default (io_uring, or epoll where refused)}, $(uname -r), $(nproc) cores"
    cat "$figures.tmp"
} >"$figures"
rm -f "$figures.tmp"

echo
echo "== stress summary (${quick:+QUICK, }${backend:+RINGLOOP_BACKEND=$backend, }$((SECONDS - start)) s; full log: $log)"
printf '%s\n' "${results[@]}"
echo
cat "$figures"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "stress.sh: ${#failed[@]} failed: ${failed[*]}" >&2
    exit 1
fi
if [ "${#results[@]}" -eq 0 ]; then
    echo "stress.sh: no test matched '${filter}'" >&2
    exit 1
fi
