#!/usr/bin/env bash
# The echo benchmark, one server core (pinned to CPU 0) and the load
# generator on CPU 1:
#   - pairs: ringloop on the epoll backend and on the io_uring backend, each
#     against tokio current_thread (epoll), in paired short runs
#     (shared/BENCHMARKING.md); raw pairs to docs/bench/pairs/<date>-echo-epoll.tsv;
#   - aa: tokio against itself in the same paired framework (64 B points):
#     the noise floor of a pair ratio here; raw pairs to <date>-echo-aa.tsv;
#   - matrix: ringloop (default backend) vs tokio vs a raw io-uring loop;
#   - syscalls: syscalls per message of ringloop-epoll, tokio,
#     ringloop-io_uring and raw (strace, and perf when present);
#   - profile: where each server's CPU time goes (perf record), when perf is
#     present.
# Writes docs/bench/echo.md. BENCHMARKS.md's echo section comes from the
# `echo` section of scripts/bench_all.sh (the same paired method, at the
# commit of every other section); this script no longer edits it.
#
# Usage: scripts/echo_bench.sh            (unattended: waits for a quiet machine)
#   STEPS="pairs aa matrix syscalls profile"  which steps (default: all five)
#   PAIRS=10 PAIR_SECS=1.5 PAIR_WARMUP=0.3 pairs settings (defaults shown)
#   MAX_FOREIGN=0.10 RETRIES=5            a round during which other processes
#                                         used > MAX_FOREIGN cores is measured
#                                         again (up to RETRIES times)
#   RUNS=3 SECS=2 WARMUP=0.3              matrix settings
#   CONNS=1,16,100,1000 SIZES=64,4096     points of pairs and matrix
#   SYSCALL_MSGS=100000 SYSCALL_RUNS=3
#   SYSCALL_SERVERS=ringloop-epoll,tokio,ringloop-io_uring,raw
#   PROFILE_POINTS="100x64 1x64 16x4096" PROFILE_SECS=3
#   LOAD_MAX=1.2 LOAD_WAIT=3600           wait up to LOAD_WAIT s for the 1-minute
#                                         load average to fall below LOAD_MAX
#                                         (LOAD_WAIT=0: do not wait)
#   STEP_LIMIT=14400                      each step is killed after this many s
#
# Steps: build (`cargo bench --bench echo --no-run`), copy the binary, wait
# for quiet, then the binary's
#   pairs    --candidates ringloop-epoll,ringloop-io_uring --baseline tokio --pairs PAIRS
#            --secs PAIR_SECS --warmup PAIR_WARMUP --conns CONNS --sizes SIZES --tsv …
#   pairs    --candidates tokio --baseline tokio … --sizes 64   (aa)
#   matrix   --runs RUNS --secs SECS --warmup WARMUP --conns CONNS --sizes SIZES
#   syscalls --msgs SYSCALL_MSGS --conns 100 --size 64 --runs SYSCALL_RUNS --servers …
#   profile  --servers ringloop-epoll,tokio,ringloop-io_uring --conns C --size B --secs PROFILE_SECS
# (the binary re-executes itself as server and client processes; see the
# doc comment of benches/echo.rs). Logs: target/bench-runs/echo-<stamp>/.
set -uo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
STEPS=${STEPS:-pairs aa matrix syscalls profile}
PAIRS=${PAIRS:-10}
PAIR_SECS=${PAIR_SECS:-1.5}
PAIR_WARMUP=${PAIR_WARMUP:-0.3}
MAX_FOREIGN=${MAX_FOREIGN:-0.10}
RETRIES=${RETRIES:-5}
RUNS=${RUNS:-3}
SECS=${SECS:-2}
WARMUP=${WARMUP:-0.3}
CONNS=${CONNS:-1,16,100,1000}
SIZES=${SIZES:-64,4096}
SYSCALL_MSGS=${SYSCALL_MSGS:-100000}
SYSCALL_RUNS=${SYSCALL_RUNS:-3}
SYSCALL_SERVERS=${SYSCALL_SERVERS:-ringloop-epoll,tokio,ringloop-io_uring,raw}
PROFILE_POINTS=${PROFILE_POINTS:-100x64 1x64 16x4096}
PROFILE_SECS=${PROFILE_SECS:-3}
LOAD_MAX=${LOAD_MAX:-1.2}
LOAD_WAIT=${LOAD_WAIT:-3600}
STEP_LIMIT=${STEP_LIMIT:-14400}
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT="target/bench-runs/echo-$STAMP"
DOC="docs/bench/echo.md"
TSV="docs/bench/pairs/$(date -u +%Y%m%d)-echo-epoll.tsv"
AA_TSV="docs/bench/pairs/$(date -u +%Y%m%d)-echo-aa.tsv"
mkdir -p "$OUT" "$(dirname "$DOC")" "$(dirname "$TSV")"

SCRIPT=echo_bench.sh
# shellcheck source=lib/echo_common.sh
. scripts/lib/echo_common.sh
raise_fd_limit

step() { case " $STEPS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

command -v taskset >/dev/null || log "warning: taskset not found"
if step syscalls && ! command -v strace >/dev/null; then
    log "strace is required for the syscall count"
    exit 1
fi
PERF_ARG=()
if ! command -v perf >/dev/null; then
    log "perf not found: syscalls counted with strace only, no profile"
    PERF_ARG=(--no-perf)
    STEPS=${STEPS//profile/}
fi

build_echo src Cargo.toml Cargo.lock benches/echo.rs benches/echo
wait_quiet

FAILED=0
# run_step NAME CMD…: runs the binary (at most STEP_LIMIT s: the paired
# runs wait for quiet between disturbed rounds), logging to $OUT/NAME.log.
run_step() {
    local name=$1
    shift
    log "$name: $*"
    if ! timeout --signal=KILL "$STEP_LIMIT" "$@" >"$OUT/$name.log" 2>&1; then
        FAILED=1
        log "$name FAILED, log: $OUT/$name.log"
    fi
    LOAD_AFTER[$name]=$(load1)
}
declare -A LOAD_AFTER

PAIRS_CMD=("$EXE" pairs --candidates ringloop-epoll,ringloop-io_uring --baseline tokio
    --pairs "$PAIRS" --secs "$PAIR_SECS" --warmup "$PAIR_WARMUP" --conns "$CONNS" --sizes "$SIZES"
    --max-foreign "$MAX_FOREIGN" --retries "$RETRIES" --tsv "$OUT/pairs.tsv" --out "$OUT/pairs.md")
if step pairs; then
    run_step pairs "${PAIRS_CMD[@]}"
    [ -f "$OUT/pairs.tsv" ] && cp "$OUT/pairs.tsv" "$TSV"
fi

AA_CMD=("$EXE" pairs --candidates tokio --baseline tokio
    --pairs "$PAIRS" --secs "$PAIR_SECS" --warmup "$PAIR_WARMUP" --conns "$CONNS" --sizes 64
    --max-foreign "$MAX_FOREIGN" --retries "$RETRIES" --tsv "$OUT/aa.tsv" --out "$OUT/aa.md")
if step aa; then
    run_step aa "${AA_CMD[@]}"
    [ -f "$OUT/aa.tsv" ] && cp "$OUT/aa.tsv" "$AA_TSV"
fi

MATRIX_CMD=("$EXE" matrix --runs "$RUNS" --secs "$SECS" --warmup "$WARMUP" --conns "$CONNS" --sizes "$SIZES" --out "$OUT/matrix.md")
step matrix && run_step matrix "${MATRIX_CMD[@]}"

SYS_CMD=("$EXE" syscalls --msgs "$SYSCALL_MSGS" --conns 100 --size 64 --runs "$SYSCALL_RUNS"
    --servers "$SYSCALL_SERVERS" "${PERF_ARG[@]}" --out "$OUT/syscalls.md")
step syscalls && run_step syscalls "${SYS_CMD[@]}"

if step profile; then
    : >"$OUT/profile.md"
    for pt in $PROFILE_POINTS; do
        run_step "profile-$pt" "$EXE" profile --servers ringloop-epoll,tokio,ringloop-io_uring \
            --conns "${pt%x*}" --size "${pt#*x}" --secs "$PROFILE_SECS" --out "$OUT/profile-$pt.md"
        [ -f "$OUT/profile-$pt.md" ] && cat "$OUT/profile-$pt.md" >>"$OUT/profile.md"
    done
fi

CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
TOKIO=$(awk '/^name = "tokio"$/ { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock)
loads=""
for k in "${!LOAD_AFTER[@]}"; do loads="$loads $k ${LOAD_AFTER[$k]};"; done

# section TITLE FILE WHAT: a step's output, or why it is missing.
section() {
    if [ -f "$2" ]; then
        cat "$2"
    elif step "$3"; then
        echo "**$1 FAILED**: see \`$OUT/$3.log\`"
    else
        echo "*Not run this time (STEPS=\"$STEPS\").*"
    fi
}

{
    echo "## echo"
    echo
    echo "Generated by \`scripts/echo_bench.sh\`; do not edit by hand. Rules: \`shared/BENCHMARKING.md\`."
    echo
    echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- Machine: $(nproc) CPUs, $CPU, Linux $(uname -r)"
    echo "- Versions: $(rustc --version); tokio $TOKIO; ringloop at $COMMIT"
    echo "- Command: \`STEPS=\"$STEPS\" PAIRS=$PAIRS PAIR_SECS=$PAIR_SECS CONNS=$CONNS SIZES=$SIZES scripts/echo_bench.sh\`"
    echo "  (RUNS=$RUNS SECS=$SECS WARMUP=$WARMUP SYSCALL_MSGS=$SYSCALL_MSGS SYSCALL_RUNS=$SYSCALL_RUNS), which runs"
    echo "  \`cargo bench --bench echo --no-run\`, waits for a quiet machine, then runs the binary's"
    step pairs && echo "  \`${PAIRS_CMD[*]:1}\`,"
    step aa && echo "  \`${AA_CMD[*]:1}\`,"
    step matrix && echo "  \`${MATRIX_CMD[*]:1}\`,"
    step syscalls && echo "  \`${SYS_CMD[*]:1}\`,"
    step profile && echo "  \`profile --servers ringloop-epoll,tokio,ringloop-io_uring --conns C --size B --secs $PROFILE_SECS\` for C×B in $PROFILE_POINTS,"
    echo "  (output files of the runs above named with \`--out\`/\`--tsv\` are under the raw logs folder)."
    echo "  The matrix alone: \`cargo bench --bench echo\`; a sanity check of every mode: \`cargo bench --bench echo -- --quick\`."
    echo "- Measured under load: $UNDER_LOAD. 1-minute load average after each step:$loads (at script start: $LOAD_START). Our own server and load generator keep 2 cores busy, so the load average climbs to ~2 while measuring; the pairs mode measures other processes' CPU use directly instead."
    echo "- Raw logs: \`$OUT/\`; raw pairs: \`$TSV\`"
    echo
    echo "Setup: each measurement starts a fresh server process pinned to CPU 0 (\`sched_setaffinity\`),"
    echo "listening on 127.0.0.1 port 0, and a fresh load generator pinned to CPU 1. The load generator"
    echo "is the same for all servers: a raw io-uring client with one message outstanding per"
    echo "connection (send it, receive until the whole message is back, compare every byte, repeat;"
    echo "each message carries its sequence number). After each measurement the server's count of"
    echo "received bytes must equal the client's verified messages × size, and the backend the server"
    echo "reports must be the one its name says. Servers:"
    echo
    echo "- **ringloop-epoll**: \`Builder::new().backend(Backend::Epoll).run(…)\`, a task per connection, a reusable 16 KiB \`Vec\`: \`read\` then \`write_all\`."
    echo "- **ringloop-io_uring**: the same code on \`Backend::IoUring\`. **ringloop** (matrix): the same code on the default backend (\`ringloop::run\`)."
    echo "- **tokio**: \`current_thread\` runtime (mio, epoll), the same logic with \`tokio::net\` (\`read\` then \`write_all\`)."
    echo "- **raw io-uring**: no runtime; one ring with ringloop's flags (SINGLE_ISSUER|DEFER_TASKRUN|COOP_TASKRUN|TASKRUN_FLAG),"
    echo "  one accept in flight, a recv→send state machine per connection (16 KiB buffer in a slab),"
    echo "  one \`submit_and_wait(1)\` per turn. It is the floor: what ringloop's own overhead is measured against."
    echo
    echo "All servers set TCP_NODELAY on accepted sockets. Server CPU per message: the server"
    echo "process's user + system time (\`getrusage\`) over its life, divided by the messages it echoed."
    echo
    echo "### epoll backend vs tokio, and io_uring backend vs tokio (paired runs)"
    echo
    echo "Goal (issue 14): ringloop on the epoll backend within 3% of tokio \`current_thread\` in msgs/s and"
    echo "server CPU per message. Raw per-pair figures: \`$TSV\`."
    echo
    section "pairs" "$OUT/pairs.md" pairs
    echo
    echo "**Noise floor (A/A)**: tokio against tokio in the same framework, 64 B. A ratio claim smaller"
    echo "than this spread cannot be made here. Raw pairs: \`$AA_TSV\`."
    echo
    section "A/A" "$OUT/aa.md" aa
    echo
    echo "**Matrix**: ringloop (default backend) vs tokio vs raw io-uring, rounds of one run each (not paired)."
    echo
    section "matrix" "$OUT/matrix.md" matrix
    echo
    section "syscall count" "$OUT/syscalls.md" syscalls
    echo
    if [ -s "$OUT/profile.md" ]; then
        cat "$OUT/profile.md"
    elif step profile; then
        echo "**profile FAILED**: see \`$OUT/profile-*.log\`"
    fi
} >"$ROOT/$DOC"
log "wrote $DOC"

# BENCHMARKS.md is written by scripts/bench_all.sh only (every section at
# one commit); this page is the deeper look (A/A noise floor, matrix,
# syscalls, profile) and stays beside it in docs/bench/.

if [ "$FAILED" -ne 0 ]; then
    log "some steps FAILED"
    exit 1
fi
