#!/usr/bin/env bash
# The two-core echo benchmark: ringloop with one event loop per core
# (`ringloop::Cores::new(2)`, one SO_REUSEPORT listener per core, pinned to
# CPUs 0 and 1) vs tokio's multi-thread runtime with 2 workers, both servers
# spread over the 2 CPUs that the load generator also uses. Runs the
# comparison once per load-generator placement and writes
# docs/bench/echo_cores.md (an `## echo, two cores` section for BENCHMARKS.md).
#
# Usage: scripts/echo_cores_bench.sh
#   RUNS=3 SECS=2 WARMUP=0.3       settings (defaults shown)
#   POINTS=100x64,1000x64,16x4096  connections x message size
#   PLACEMENTS="0,1 1 none"        where the load generator runs, one
#                                  comparison each: "0,1" = two client
#                                  threads pinned to CPUs 0 and 1, each with
#                                  half the connections; "1" = one thread on
#                                  CPU 1; "none" = one unpinned thread
#   CORES=2                        cores per server
#   SYSCALL_MSGS=100000 SYSCALL_RUNS=3   syscalls per message, with the
#                                  first placement (SYSCALL_RUNS=0: skip)
#   LOAD_MAX=1.5 LOAD_WAIT=1800    wait up to LOAD_WAIT s for the 1-minute
#                                  load average to fall below LOAD_MAX
#                                  (LOAD_WAIT=0: do not wait)
#
# Steps: build (`cargo bench --bench echo --no-run`), copy the binary, then
# per placement P:
#   <echo> multicore --cores CORES --runs RUNS --secs SECS --warmup WARMUP --points POINTS --client-cpu P
# then
#   <echo> syscalls --servers ringloop-<CORES>core,tokio-mt<CORES> --client-cpu <first P>
#          --msgs SYSCALL_MSGS --conns 100 --size 64 --runs SYSCALL_RUNS
# (the binary re-executes itself as server and client processes; see the
# doc comments of benches/echo.rs and benches/echo/multicore.rs).
# Logs: target/bench-runs/echo-cores-<stamp>/.
set -uo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
RUNS=${RUNS:-3}
SECS=${SECS:-2}
WARMUP=${WARMUP:-0.3}
POINTS=${POINTS:-100x64,1000x64,16x4096}
PLACEMENTS=${PLACEMENTS:-0,1 1 none}
CORES=${CORES:-2}
SYSCALL_MSGS=${SYSCALL_MSGS:-100000}
SYSCALL_RUNS=${SYSCALL_RUNS:-3}
LOAD_MAX=${LOAD_MAX:-1.5}
LOAD_WAIT=${LOAD_WAIT:-1800}
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT="target/bench-runs/echo-cores-$STAMP"
DOC="docs/bench/echo_cores.md"
mkdir -p "$OUT" "$(dirname "$DOC")"

log() { printf '[echo_cores_bench.sh %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
load1() { cut -d' ' -f1 /proc/loadavg; }

# 1000 connections: 1000 client fds + 1000 server fds (the binary also
# raises its soft limit to the hard limit).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
log "fd limit: $(ulimit -n)"

log "building"
if ! cargo bench --bench echo --no-run --message-format=json >"$OUT/build.json" 2>"$OUT/build.log"; then
    log "build failed, see $OUT/build.log"
    tail -30 "$OUT/build.log" >&2
    exit 1
fi
EXE=$(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") \
            and m["target"]["name"] == "echo" and "bench" in m["target"]["kind"]:
        print(m["executable"])
' "$OUT/build.json" | tail -1)
[ -x "$EXE" ] || { log "bench executable not found (got '$EXE')"; exit 1; }
# What was built (read now: the tree may change while the benchmark runs).
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain -- src Cargo.toml benches/echo.rs benches/echo 2>/dev/null)" ]; then
    COMMIT="$COMMIT + uncommitted changes"
fi
# A copy: a concurrent build in this tree may overwrite target/release/deps.
cp "$EXE" "$OUT/echo"
EXE="$OUT/echo"

# Wait for a quiet machine (the 2 cores are shared with other work).
LOAD_START=$(load1)
waited=0
while awk -v l="$(load1)" -v m="$LOAD_MAX" 'BEGIN { exit !(l >= m) }' && [ "$waited" -lt "$LOAD_WAIT" ]; do
    [ "$waited" -eq 0 ] && log "load average $(load1) ≥ $LOAD_MAX: waiting up to ${LOAD_WAIT}s"
    sleep 30
    waited=$((waited + 30))
done
LOAD_BEGIN=$(load1)
if awk -v l="$LOAD_BEGIN" -v m="$LOAD_MAX" 'BEGIN { exit !(l >= m) }'; then
    UNDER_LOAD="yes: the 1-minute load average was $LOAD_BEGIN (≥ $LOAD_MAX) when measuring began, after waiting ${waited}s; other processes competed for the 2 cores"
    log "measuring under load ($LOAD_BEGIN)"
else
    UNDER_LOAD="no: the 1-minute load average was $LOAD_BEGIN when measuring began (waited ${waited}s)"
fi

FAILED=0
LOADS=""
i=0
for P in $PLACEMENTS; do
    i=$((i + 1))
    CMD=("$EXE" multicore --cores "$CORES" --runs "$RUNS" --secs "$SECS" --warmup "$WARMUP" --points "$POINTS" --client-cpu "$P" --out "$OUT/placement-$i.md")
    log "placement $P: ${CMD[*]}"
    timeout --signal=KILL 3600 "${CMD[@]}" >"$OUT/placement-$i.log" 2>&1 || { FAILED=1; log "placement $P FAILED, log: $OUT/placement-$i.log"; }
    LOADS="$LOADS${LOADS:+, }after \`--client-cpu $P\`: $(load1)"
done

FIRST=${PLACEMENTS%% *}
PERF_ARG=()
command -v perf >/dev/null || PERF_ARG=(--no-perf)
if [ "$SYSCALL_RUNS" -gt 0 ] && command -v strace >/dev/null; then
    SYS_CMD=("$EXE" syscalls --servers "ringloop-${CORES}core,tokio-mt${CORES}" --client-cpu "$FIRST" --msgs "$SYSCALL_MSGS" --conns 100 --size 64 --runs "$SYSCALL_RUNS" "${PERF_ARG[@]}" --out "$OUT/syscalls.md")
    log "syscalls: ${SYS_CMD[*]}"
    timeout --signal=KILL 3600 "${SYS_CMD[@]}" >"$OUT/syscalls.log" 2>&1 || { FAILED=1; log "syscalls FAILED, log: $OUT/syscalls.log"; }
    LOADS="$LOADS, after the syscall count: $(load1)"
elif [ "$SYSCALL_RUNS" -gt 0 ]; then
    log "strace not found: no syscall count"
fi

CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
placement_title() {
    case "$1" in
        none) echo "load generator: one thread, not pinned" ;;
        *,*) echo "load generator: one thread per CPU $1, pinned, each with its share of the connections" ;;
        *) echo "load generator: one thread pinned to CPU $1" ;;
    esac
}

{
    echo "## echo, $CORES cores: ringloop thread-per-core vs tokio multi-thread"
    echo
    echo "Generated by \`scripts/echo_cores_bench.sh\`; do not edit by hand. Rules: \`shared/BENCHMARKING.md\`."
    echo
    echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- Machine: $(nproc) CPUs, $CPU, Linux $(uname -r)"
    echo "- Toolchain: $(rustc --version); ringloop at $COMMIT"
    echo "- Command: \`scripts/echo_cores_bench.sh\` (RUNS=$RUNS SECS=$SECS WARMUP=$WARMUP POINTS=$POINTS PLACEMENTS=\"$PLACEMENTS\" CORES=$CORES SYSCALL_MSGS=$SYSCALL_MSGS SYSCALL_RUNS=$SYSCALL_RUNS), which runs"
    echo "  \`cargo bench --bench echo --no-run\`, then for each placement P the binary's"
    echo "  \`multicore --cores $CORES --runs $RUNS --secs $SECS --warmup $WARMUP --points $POINTS --client-cpu P\`"
    echo "  and \`syscalls --servers ringloop-${CORES}core,tokio-mt${CORES} --client-cpu ${PLACEMENTS%% *} --msgs $SYSCALL_MSGS --conns 100 --size 64 --runs $SYSCALL_RUNS\`."
    echo "  One point as a sanity check: \`cargo bench --bench echo -- multicore --quick\`."
    echo "- Measured under load: $UNDER_LOAD. Load average $LOADS (at script start: $LOAD_START)."
    echo "- Raw logs: \`$OUT/\`"
    echo
    echo "Setup: each measurement starts a fresh server process (not pinned as a whole) listening on"
    echo "127.0.0.1 port 0 and a fresh load generator: the same raw io-uring client as the one-core"
    echo "\`## echo\` benchmark (one message outstanding per connection, every echoed byte checked, the"
    echo "server's byte count checked against the client's). **The load generator shares the two"
    echo "CPUs with the server**: this machine has no third one. Servers:"
    echo
    echo "- **ringloop-${CORES}core**: \`ringloop::Cores::new($CORES).pin(true)\`: loop \`i\` on a thread pinned to CPU \`i\`,"
    echo "  each with its own \`SO_REUSEPORT\` listener on the same port (the kernel picks a listener per new"
    echo "  connection by a hash of its address and port; a connection stays on its core), an accept loop"
    echo "  and a task per connection: \`read\` then \`write_all\` with a reusable 16 KiB \`Vec\`."
    echo "- **tokio-mt${CORES}**: tokio's multi-thread runtime, \`worker_threads($CORES)\`, one listener, the accept loop"
    echo "  and a task per connection spawned on the workers (work stealing moves tasks between them);"
    echo "  the same \`read\` / \`write_all\` logic; threads not pinned (tokio does not pin)."
    echo
    echo "Spread: each server counts the bytes echoed and the connections accepted per core (ringloop)"
    echo "or per worker thread (tokio), and reads each thread's CPU time and run-queue wait from"
    echo "\`/proc/self/task/<tid>/schedstat\` at exit. Server CPU per message: the whole server process's"
    echo "user + system time (\`getrusage\`) over its life, divided by the messages it echoed."
    echo
    echo "Where the load generator runs changes the result: a pinned ringloop core that shares its CPU"
    echo "with more of the client (or with another process) gets a different share of CPU time than"
    echo "the other core (the \`CPU\` and \`wait\` columns), and serves its connections at that pace,"
    echo "since thread-per-core does not move connections between cores; tokio's work stealing evens"
    echo "its workers out. So the comparison is run once per placement:"
    echo
    echo "- \`0,1\` (**the reference**): two client threads pinned to CPUs 0 and 1, each driving half of"
    echo "  the connections on its own ring. Both CPUs carry the same client load, so neither ringloop"
    echo "  core is favoured by the placement; this is the fair comparison."
    echo "- \`1\`: one client thread pinned to CPU 1 (as in the one-core benchmark): ringloop core 1"
    echo "  shares its CPU with the whole load generator, core 0 does not."
    echo "- \`none\`: one unpinned client thread: the scheduler places it, differently from run to run."
    echo
    i=0
    for P in $PLACEMENTS; do
        i=$((i + 1))
        echo "### \`--client-cpu $P\` ($(placement_title "$P"))"
        echo
        if [ -f "$OUT/placement-$i.md" ]; then
            # The mode's own headings go one level down.
            sed 's/^### /#### /' "$OUT/placement-$i.md"
        else
            echo "**FAILED**: see \`$OUT/placement-$i.log\`"
        fi
        echo
    done
    if [ -f "$OUT/syscalls.md" ]; then
        cat "$OUT/syscalls.md"
        echo
        echo "(Load generator: \`--client-cpu $FIRST\`.)"
    elif [ "$SYSCALL_RUNS" -gt 0 ]; then
        echo "**syscall count FAILED or skipped**: see \`$OUT/syscalls.log\`"
    fi
} >"$ROOT/$DOC"

log "wrote $DOC"
if [ "$FAILED" -ne 0 ]; then
    log "some steps FAILED"
    exit 1
fi
