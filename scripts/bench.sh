#!/usr/bin/env bash
# Runs the ringloop-vs-tokio benchmarks RUNS times (default 3) and writes
# BENCHMARKS.md: medians over the runs of each runtime's number and of the
# ringloop/tokio ratio, with the min–max spread (see shared/BENCHMARKING.md).
#
# Usage: scripts/bench.sh            # 3 runs
#        RUNS=5 scripts/bench.sh
#
# The benches are built once; each run is then, in this order (so ringloop
# and tokio alternate throughout), the equivalent of:
#   cargo bench --bench core -- --noplot   (criterion: spawn_join, yield_many,
#                                           timers; each group runs ringloop
#                                           then tokio)
#   cargo bench --bench task_memory        (one child process per runtime and
#                                           variant, 1,000,000 tasks)
#   cargo bench --bench sleep_precision    (1,000 × sleep(1 ms) each,
#                                           alternating in rounds of 100)
# The last run of core keeps criterion's plots, for its HTML report at
# target/criterion/report/index.html. Raw logs and criterion's estimates of
# every run are kept in target/bench-runs/<timestamp>/.
#
# A benchmark that fails or exceeds its time limit is recorded as FAILED in
# the table, its log kept, and the script exits non-zero at the end.
set -uo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
RUNS=${RUNS:-3}
LIMIT=${BENCH_TIMEOUT:-1200} # seconds, per cargo bench invocation
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT="target/bench-runs/$STAMP"
mkdir -p "$OUT"
GROUPS_CORE=(spawn_join yield_many timers gather timeout_churn_ready timeout_churn_pending_once ping_pong lock_contention semaphore_uncontended semaphore_contended cross_ping_pong to_thread_round_trip threadsafe_call threadsafe_wake)
FAILED=0

log() { printf '[bench.sh %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# run_step NAME LOGFILE CMD...: runs CMD with a time limit, output to LOGFILE.
run_step() {
    local name=$1 logf=$2
    shift 2
    log "$name: $*"
    # The 1-minute load average before each step: above ~1 means other
    # processes competed for the 2 cores during this measurement.
    printf '%s %s\n' "$name" "$(cut -d' ' -f1 /proc/loadavg)" >>"$OUT/loadavg.txt"
    timeout --signal=KILL "$LIMIT" "$@" >"$logf" 2>&1
    local rc=$?
    if [ $rc -ne 0 ]; then
        FAILED=1
        if [ $rc -eq 137 ]; then
            log "$name FAILED: killed after ${LIMIT}s (hang?), log: $logf"
        else
            log "$name FAILED (exit $rc), log: $logf"
        fi
        printf 'FAILED %s exit=%s log=%s\n' "$name" "$rc" "$logf" >>"$OUT/failures.txt"
    fi
    return $rc
}

log "building benches"
# Build once and run the binaries directly, so that every run measures the
# same code even if the sources change meanwhile (this is what `cargo bench
# --bench NAME -- ARGS` runs: `<exe> --bench ARGS`, from the package root).
if ! cargo bench --no-run --message-format=json \
    --bench core --bench combinators --bench sync --bench blocking --bench threadsafe \
    --bench task_memory --bench sleep_precision \
    >"$OUT/build.json" 2>"$OUT/build.log"; then
    log "build failed, see $OUT/build.log"
    tail -30 "$OUT/build.log" >&2
    exit 1
fi
exe_of() {
    python3 -c '
import json, sys
for line in open(sys.argv[1]):
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") \
            and m["target"]["name"] == sys.argv[2] and "bench" in m["target"]["kind"]:
        print(m["executable"])
' "$OUT/build.json" "$1" | tail -1
}
CORE_EXE=$(exe_of core)
COMB_EXE=$(exe_of combinators)
SYNC_EXE=$(exe_of sync)
BLOCK_EXE=$(exe_of blocking)
TS_EXE=$(exe_of threadsafe)
MEM_EXE=$(exe_of task_memory)
SLEEP_EXE=$(exe_of sleep_precision)
for e in "$CORE_EXE" "$COMB_EXE" "$SYNC_EXE" "$BLOCK_EXE" "$TS_EXE" "$MEM_EXE" "$SLEEP_EXE"; do
    [ -x "$e" ] || { log "bench executable not found (got '$e')"; exit 1; }
done
# Copy them: a concurrent `cargo bench`/`cargo test --release` in this tree
# would rebuild the same paths in target/release/deps from changed sources.
mkdir -p "$OUT/bin"
cp "$CORE_EXE" "$OUT/bin/core"
cp "$COMB_EXE" "$OUT/bin/combinators"
cp "$SYNC_EXE" "$OUT/bin/sync"
cp "$BLOCK_EXE" "$OUT/bin/blocking"
cp "$TS_EXE" "$OUT/bin/threadsafe"
cp "$MEM_EXE" "$OUT/bin/task_memory"
cp "$SLEEP_EXE" "$OUT/bin/sleep_precision"
CORE_EXE="$OUT/bin/core"
COMB_EXE="$OUT/bin/combinators"
SYNC_EXE="$OUT/bin/sync"
BLOCK_EXE="$OUT/bin/blocking"
TS_EXE="$OUT/bin/threadsafe"
MEM_EXE="$OUT/bin/task_memory"
SLEEP_EXE="$OUT/bin/sleep_precision"
export CRITERION_HOME="$ROOT/target/criterion"
# What was measured: HEAD plus a digest of uncommitted changes to the crate.
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=$( { git diff HEAD -- src Cargo.toml 2>/dev/null
           git ls-files --others --exclude-standard -z -- src 2>/dev/null | xargs -0 -r cat; } |
         sha1sum | cut -c1-10)
if [ -n "$(git status --porcelain -- src Cargo.toml 2>/dev/null)" ]; then
    COMMIT="$COMMIT + uncommitted changes to src/ or Cargo.toml (diff digest $DIRTY)"
fi

for i in $(seq 1 "$RUNS"); do
    log "run $i of $RUNS"
    RUN="$OUT/run$i"
    mkdir -p "$RUN"

    plot=(--noplot)
    [ "$i" -eq "$RUNS" ] && plot=()
    touch "$RUN/.start"
    run_step "core#$i" "$RUN/core.log" "$CORE_EXE" --bench "${plot[@]}"
    run_step "combinators#$i" "$RUN/combinators.log" "$COMB_EXE" --bench "${plot[@]}"
    run_step "sync#$i" "$RUN/sync.log" "$SYNC_EXE" --bench "${plot[@]}"
    run_step "blocking#$i" "$RUN/blocking.log" "$BLOCK_EXE" --bench "${plot[@]}"
    run_step "threadsafe#$i" "$RUN/threadsafe.log" "$TS_EXE" --bench "${plot[@]}"
    # Keep only estimates written by this run (a crashed bench leaves the
    # previous run's file behind).
    for g in "${GROUPS_CORE[@]}"; do
        for f in ringloop tokio; do
            est="$CRITERION_HOME/$g/$f/new/estimates.json"
            if [ -f "$est" ] && [ "$est" -nt "$RUN/.start" ]; then
                mkdir -p "$RUN/criterion/$g/$f"
                cp "$est" "$RUN/criterion/$g/$f/estimates.json"
            fi
        done
    done

    run_step "task_memory#$i" "$RUN/task_memory.log" "$MEM_EXE" --bench
    run_step "sleep_precision#$i" "$RUN/sleep_precision.log" "$SLEEP_EXE" --bench
done

log "writing BENCHMARKS.md"
CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')

OUT="$OUT" RUNS="$RUNS" CPU="$CPU" NPROC="$(nproc)" KERNEL="$(uname -r)" \
    RUSTC="$(rustc --version)" COMMIT="$COMMIT" \
    DATE="$(date -u '+%Y-%m-%d %H:%M UTC')" python3 - <<'PY' >"$ROOT/BENCHMARKS.md"
import json, os, re, statistics, glob

out = os.environ["OUT"]
runs = int(os.environ["RUNS"])


def med(xs):
    return statistics.median(xs) if xs else None


# rows: (bench, metric, unit, per-runtime values per run, target, ok(ratio, ring, tok))
values = {}  # (bench, metric) -> {"ringloop": [..], "tokio": [..], "ratio": [..]}


def add(bench, metric, ring, tok):
    d = values.setdefault((bench, metric), {"ringloop": [], "tokio": [], "ratio": []})
    if ring is not None:
        d["ringloop"].append(ring)
    if tok is not None:
        d["tokio"].append(tok)
    if ring is not None and tok not in (None, 0):
        d["ratio"].append(ring / tok)


CORE = {
    # group: (metric label, divisor to the unit, unit)
    "spawn_join": ("time per task", 10_000, "ns"),
    "yield_many": ("time per poll", 100 * 101, "ns"),
    "timers": ("wall time per run (1M sleeps)", 1e6, "ms"),
    "gather": ("time per child (10,000 gathered)", 10_000, "ns"),
    "timeout_churn_ready": ("time per wait_for, ready future", 10_000, "ns"),
    "timeout_churn_pending_once": ("time per wait_for, timer armed+cancelled", 10_000, "ns"),
    "ping_pong": ("time per round trip (Queue vs mpsc)", 10_000, "ns"),
    "lock_contention": ("time per lock+unlock, 100 tasks (Lock vs Mutex)", 10_000, "ns"),
    "semaphore_uncontended": ("time per acquire+release", 10_000, "ns"),
    "semaphore_contended": ("time per acquire+release, 100 tasks / 10 permits", 10_000, "ns"),
    "cross_ping_pong": ("time per round trip, loop<->loop on two threads (sync::cross vs tokio mpsc)", 2_000 * 1000, "µs"),
    "to_thread_round_trip": ("time per to_thread round trip (vs spawn_blocking)", 1_000 * 1000, "µs"),
    "threadsafe_call": ("time per call_soon_threadsafe round trip to a parked loop (vs Handle::spawn)", 1000, "µs"),
    "threadsafe_wake": ("time per wake of a parked task from a thread, round trip (vs Notify)", 1000, "µs"),
}


def kv(line):
    return dict(p.split("=", 1) for p in line.split() if "=" in p)


for i in range(1, runs + 1):
    run = f"{out}/run{i}"
    for g, (metric, div, unit) in CORE.items():
        got = {}
        for f in ("ringloop", "tokio"):
            p = f"{run}/criterion/{g}/{f}/estimates.json"
            if os.path.exists(p):
                with open(p) as fh:
                    got[f] = json.load(fh)["median"]["point_estimate"] / div
        add(g, f"{metric} ({unit})", got.get("ringloop"), got.get("tokio"))
    mem = {}
    try:
        for line in open(f"{run}/task_memory.log"):
            if line.startswith("RESULT task_memory") and "FAILED" not in line:
                d = kv(line)
                mem[(d["runtime"], d["variant"])] = d
    except FileNotFoundError:
        pass
    for variant in ("sleeping", "pending"):
        r, t = mem.get(("ringloop", variant)), mem.get(("tokio", variant))
        f = lambda d, k: float(d[k]) if d else None
        add(f"task_memory {variant}", "RSS per task (B)", f(r, "bytes_per_task"), f(t, "bytes_per_task"))
        add(f"task_memory {variant}", "beyond future + handle (B)", f(r, "beyond_future"), f(t, "beyond_future"))
        add(f"task_memory {variant}", "spawn 1M + first poll (ms)", f(r, "spawn_ms"), f(t, "spawn_ms"))
    sp = {}
    try:
        for line in open(f"{run}/sleep_precision.log"):
            if line.startswith("RESULT sleep_precision"):
                d = kv(line)
                sp[d["runtime"]] = d
    except FileNotFoundError:
        pass
    for q in ("p50", "p99", "max"):
        f = lambda d: float(d[f"{q}_us"]) if d else None
        add("sleep_precision", f"sleep(1 ms) overshoot {q} (µs)", f(sp.get("ringloop")), f(sp.get("tokio")))

# Targets from the issue. Each: (bench, metric) -> (text, test on the medians)
TARGETS = {
    ("spawn_join", "time per task (ns)"): ("≥ 2× tokio throughput (ratio ≤ 0.50)", lambda r, a, b: r <= 0.5),
    ("timers", "wall time per run (1M sleeps) (ms)"): ("no slower than tokio (ratio ≤ 1.00)", lambda r, a, b: r <= 1.0),
    ("gather", "time per child (10,000 gathered) (ns)"): ("≥ 1.5× tokio JoinSet throughput (ratio ≤ 0.67)", lambda r, a, b: r <= 1 / 1.5),
    ("timeout_churn_ready", "time per wait_for, ready future (ns)"): ("≥ 1.5× tokio throughput (ratio ≤ 0.67)", lambda r, a, b: r <= 1 / 1.5),
    ("timeout_churn_pending_once", "time per wait_for, timer armed+cancelled (ns)"): ("≥ 1.5× tokio throughput (ratio ≤ 0.67)", lambda r, a, b: r <= 1 / 1.5),
    ("ping_pong", "time per round trip (Queue vs mpsc) (ns)"): ("≥ 2× tokio::sync (ratio ≤ 0.50)", lambda r, a, b: r <= 0.5),
    ("lock_contention", "time per lock+unlock, 100 tasks (Lock vs Mutex) (ns)"): ("≥ 2× tokio::sync (ratio ≤ 0.50)", lambda r, a, b: r <= 0.5),
    ("semaphore_uncontended", "time per acquire+release (ns)"): ("≥ 2× tokio::sync (ratio ≤ 0.50)", lambda r, a, b: r <= 0.5),
    ("semaphore_contended", "time per acquire+release, 100 tasks / 10 permits (ns)"): ("≥ 2× tokio::sync (ratio ≤ 0.50)", lambda r, a, b: r <= 0.5),
    ("to_thread_round_trip", "time per to_thread round trip (vs spawn_blocking) (µs)"): ("no slower than tokio (ratio ≤ 1.00)", lambda r, a, b: r <= 1.0),
    ("threadsafe_wake", "time per wake of a parked task from a thread, round trip (vs Notify) (µs)"): ("no slower than tokio (ratio ≤ 1.00)", lambda r, a, b: r <= 1.0),
    ("threadsafe_call", "time per call_soon_threadsafe round trip to a parked loop (vs Handle::spawn) (µs)"): ("no slower than tokio (ratio ≤ 1.00)", lambda r, a, b: r <= 1.0),
    ("task_memory sleeping", "beyond future + handle (B)"): ("< 200 B per sleeping task beyond its future", lambda r, a, b: a < 200),
    ("sleep_precision", "sleep(1 ms) overshoot p50 (µs)"): ("p50 < 50 µs", lambda r, a, b: a < 50),
}


def fmt(x, ratio=False):
    if x is None:
        return "—"
    if ratio:
        return f"{x:.3f}"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def cell(xs, n, ratio=False):
    if not xs:
        return "FAILED"
    s = fmt(med(xs), ratio)
    if len(xs) > 1:
        s += f" ({fmt(min(xs), ratio)}–{fmt(max(xs), ratio)})"
    if len(xs) < n:
        s += f" [{len(xs)}/{n} runs]"
    return s


lines = []
w = lines.append
w("# ringloop benchmarks")
w("")
w("Generated by `scripts/bench.sh`; do not edit by hand. Rules: `shared/BENCHMARKING.md`.")
w("")
w(f"- Date: {os.environ['DATE']}")
w(f"- Machine: {os.environ['NPROC']} CPUs, {os.environ['CPU']}, Linux {os.environ['KERNEL']}")
w(f"- Toolchain: {os.environ['RUSTC']}; ringloop at {os.environ['COMMIT']}")
w(f"- Command: `scripts/bench.sh` (RUNS={runs}). It builds the benches once")
w(f"  (`cargo bench --no-run`), then runs, {runs} times in this order, the equivalent of")
w("  `cargo bench --bench core -- --noplot` and `cargo bench --bench combinators -- --noplot`, `cargo bench --bench sync -- --noplot`,")
w("  `cargo bench --bench blocking -- --noplot`, `cargo bench --bench threadsafe -- --noplot` (plots kept on the last run),")
w("  `cargo bench --bench task_memory`, `cargo bench --bench sleep_precision`")
w("- Compared with: tokio `current_thread` runtime (`enable_time`), the same workload in the same run")
w(f"- Raw logs and criterion estimates of each run: `{out}/`")
w("- Criterion's HTML report (plots of the last run): [target/criterion/report/index.html](target/criterion/report/index.html)")
load = [l.split() for l in open(f"{out}/loadavg.txt")] if os.path.exists(f"{out}/loadavg.txt") else []
if load:
    w("- 1-minute load average before each step (other processes on the 2 cores perturb results "
      "when it is above ~1): " + ", ".join(f"{n} {v}" for n, v in load))
w("")
w(f"Each cell: median over the {runs} runs, (min–max) across runs. Criterion numbers are the")
w("median of each run's samples. ratio = ringloop / tokio, computed per run; below 1 means")
w("ringloop is faster or smaller. On this shared 2-core machine a difference under ~20% in a")
w("single run is noise.")
w("")
w("| bench | metric | ringloop | tokio | ringloop/tokio | target | met? |")
w("| --- | --- | --- | --- | --- | --- | --- |")
for (bench, metric), d in values.items():
    tgt = TARGETS.get((bench, metric))
    if tgt:
        text, test = tgt
        r, a, b = med(d["ratio"]), med(d["ringloop"]), med(d["tokio"])
        met = "—" if r is None or a is None else ("met" if test(r, a, b) else "**not met**")
    else:
        text, met = "", ""
    w(f"| {bench} | {metric} | {cell(d['ringloop'], runs)} | {cell(d['tokio'], runs)} | "
      f"{cell(d['ratio'], runs, ratio=True)} | {text} | {met} |")
w("")
w("Workloads:")
w("")
w("- **gather**: 10,000 trivial children: `ringloop::gather` (spawns each as a task) vs a tokio")
w("  `JoinSet` (spawn + `join_next`); `futures::future::join_all` (polled in place, no tasks) is")
w("  measured in the same group for reference (criterion report).")
w("- **timeout_churn**: `wait_for(f, 1 s)` ×10,000 vs `tokio::time::timeout`; `ready`: `f` is ready")
w("  at once (no timer in either); `pending_once`: `f` is pending once (timer armed, then cancelled).")
w("- **sync** (`benches/sync.rs`, beside `tokio::sync` on `current_thread`): `ping_pong`, two tasks")
w("  passing a counter 10,000 times through two one-slot queues; `lock_contention`, 100 tasks")
w("  locking one lock 100 times each with a yield inside; `semaphore_*`, acquire+release alone or")
w("  by 100 tasks over 10 permits. `ping_pong/ringloop_floor` (bare wakers, no queue) is in the")
w("  criterion report: the loop's own task-switch cost under any primitive. `cross_ping_pong`: two")
w("  loops on two threads pass a counter 2,000 times through two `sync::cross` channels of one slot")
w("  (tokio: two `current_thread` runtimes and `tokio::sync::mpsc`).")
w("- **cross-thread** (runtimes on their own thread, parked when idle; tokio with `enable_all`):")
w("  `to_thread_round_trip`, 1,000 sequential `ringloop::to_thread(|| ())` awaited from a loop vs")
w("  `tokio::task::spawn_blocking`; `threadsafe_call`, a plain thread calls")
w("  `Handle::call_soon_threadsafe` (tokio: `Handle::spawn`) and waits for the callback's reply on a")
w("  std channel; `threadsafe_wake`, a plain thread wakes a task parked on a waker (tokio: `Notify`)")
w("  and waits for its reply.")
w("- **spawn_join**: inside one `run_until_complete` / `block_on`, spawn 10,000 tasks that")
w("  return at once, then await each handle. The loop/runtime is created once, outside the timing.")
w("- **yield_many**: 100 tasks each yielding 100 times (`ringloop::yield_now` /")
w("  `tokio::task::yield_now`); per poll = time / (100 × 101).")
w("- **timers**: 1,000,000 tasks each sleeping a uniform random duration in [0, 100 ms]")
w("  (xorshift64, fixed seed, µs granularity; same sequence for both), spawned then awaited;")
w("  criterion flat sampling, 10 samples. tokio's timer wheel has 1 ms granularity.")
w("- **task_memory**: one child process per runtime and variant spawns 1,000,000 tasks that")
w("  each await a 1-hour sleep (`sleeping`) or `std::future::pending()` (`pending`), waits")
w("  until each was polled once, and divides the VmRSS growth (from `/proc/self/status`) by")
w("  the number of tasks. \"beyond future + handle\" subtracts `size_of` the spawned future")
w("  and of its join handle (kept in a pre-reserved `Vec`); what remains is the runtime's own")
w("  cost: task header, allocator rounding, timer entry, run-queue slot.")
w("- **sleep_precision**: `sleep(1 ms)` awaited 1,000 times in a row on an idle loop, ringloop")
w("  and tokio alternating in rounds of 100; overshoot = elapsed − 1 ms.")
fails = f"{out}/failures.txt"
if os.path.exists(fails):
    w("")
    w("## Failures")
    w("")
    for line in open(fails):
        w(f"- `{line.strip()}`")
print("\n".join(lines))
PY

# The I/O benchmarks have their own scripts (they need a quiet machine, a
# 1 GiB file, pinned processes): append the pages they generated last.
for page in docs/bench/echo.md docs/bench/echo_cores.md docs/bench/file_read.md docs/bench/pairs.md docs/bench/http.md; do
    if [ -f "$ROOT/$page" ]; then
        case "$page" in
            docs/bench/echo.md) script=echo_bench.sh ;;
            docs/bench/echo_cores.md) script=echo_cores_bench.sh ;;
            docs/bench/pairs.md) script="pair_bench.sh BASE_REV" ;;
            docs/bench/http.md) script=http_bench.sh ;;
            *) script=file_read_bench.sh ;;
        esac
        printf '\n---\n\n*Appended from `%s` (regenerate with `scripts/%s`):*\n\n' \
            "$page" "$script" >>"$ROOT/BENCHMARKS.md"
        sed 's/^# /## /' "$ROOT/$page" >>"$ROOT/BENCHMARKS.md"
    fi
done
log "wrote BENCHMARKS.md"
if [ "$FAILED" -ne 0 ]; then
    log "some benchmarks FAILED: $OUT/failures.txt"
    exit 1
fi
