#!/usr/bin/env bash
# Regenerates BENCHMARKS.md from scratch at the current commit, every
# section with the paired method of shared/BENCHMARKING.md ("Pairs, not
# runs"): short runs of ringloop and its twin back to back, the order
# flipped every other pair, quoted as the median of the per-pair ratios with
# its interquartile range; pairs whose two runs fell in different speed
# modes (or during other processes' load, for echo) are dropped and counted.
#
# Usage: scripts/bench_all.sh                   # everything, ~50 min on 2 cores
#        QUICK=1 scripts/bench_all.sh           # smoke run: 2 pairs, short runs, a few minutes
#        ONLY='^(echo|latency)$' scripts/bench_all.sh   # a subset of the sections
#   PAIRS=10          pairs per row (QUICK: 2)
#   SECS=1.0          seconds per echo/HTTP run (QUICK: 0.3); latency runs take 2×SECS
#   CRIT_WARMUP=0.5 CRIT_MEASURE=1.0   criterion settings of one run of a pair
#   MAX_FOREIGN=0.10 RETRIES=3         echo: a round during which other processes
#                                      used more cores than this is measured again
#   MODE_GAP=0.12     echo: the same-mode rule's gap (QUICK: 10, i.e. off: 2 pairs
#                     cannot show two modes)
#   HTTP_MAX_OTHERS=0.15   HTTP: pairs during which other processes used more
#                     cores are left out (QUICK: 100)
#   IDLE_CONNS=10000  idle-memory connections (QUICK: 2000)
#   FILE_MIB=1024     the file_read file (QUICK: 64)
#
# Sections (names for ONLY), each writing its raw pairs to
# docs/bench/pairs/<stamp>-<name>*.tsv and its section to docs/bench/all/<name>.md
# (+ <name>.rows.json, the rows in machine form):
#   micro          criterion ringloop-vs-twin pairs (docs/bench/twins.txt, or the
#                  built-in list of scripts/lib/bench_all.py)
#   echo           benches/echo.rs `pairs`: 1/16/100/1000 × 64 B, 16/100 × 4 KiB;
#                  ringloop io_uring, ringloop epoll, tokio, raw io_uring loop;
#                  ringloop vs tokio and vs raw
#   bufring        echo 100 × 64 B, the bufring receive path vs one-shot reads
#                  (scripts/echo_revs_pair.py, one binary under two environments)
#   echo_cores     2 cores: ringloop Cores (pinned, round-robin CoresListener) vs
#                  tokio multi_thread (2 workers) and vs 2 pinned tokio
#                  current_thread runtimes on SO_REUSEPORT listeners; each backend
#   http           scripts/http_bench.sh (hyper, HTTP/1.1 and HTTP/2)
#   latency        benches/latency.rs: the echo_server example vs tokio at 50 % and
#                  90 % of the paired saturated rate, each backend
#   idle_memory    RSS per idle connection (scripts/idle_memory.py's measurement)
#   task_memory    benches/task_memory.rs, one pair per invocation
#   sleep          benches/sleep_precision.rs, one pair per invocation
#   files          criterion file_read pairs (cached and O_DIRECT)
#
# Refuses to run when src/, Cargo.toml or Cargo.lock have uncommitted
# changes (the numbers must belong to one commit). A section that fails is
# reported in BENCHMARKS.md as failed with the end of its log; the others
# still run, and the script exits non-zero at the end. Logs and binaries:
# target/bench-all/<stamp>/.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

if [ -n "${QUICK:-}" ]; then
    PAIRS=${PAIRS:-2}
    SECS=${SECS:-0.3}
    CRIT_WARMUP=${CRIT_WARMUP:-0.1}
    CRIT_MEASURE=${CRIT_MEASURE:-0.3}
    IDLE_CONNS=${IDLE_CONNS:-2000}
    FILE_MIB=${FILE_MIB:-64}
    MAX_FOREIGN=${MAX_FOREIGN:-100}
    RETRIES=${RETRIES:-0}
    MODE_GAP=${MODE_GAP:-10}
    HTTP_MAX_OTHERS=${HTTP_MAX_OTHERS:-100}
fi
PAIRS=${PAIRS:-10}
SECS=${SECS:-1.0}
CRIT_WARMUP=${CRIT_WARMUP:-0.5}
CRIT_MEASURE=${CRIT_MEASURE:-1.0}
IDLE_CONNS=${IDLE_CONNS:-10000}
FILE_MIB=${FILE_MIB:-1024}
MAX_FOREIGN=${MAX_FOREIGN:-0.10}
RETRIES=${RETRIES:-3}
MODE_GAP=${MODE_GAP:-0.12}
HTTP_MAX_OTHERS=${HTTP_MAX_OTHERS:-0.15}
# h2load needs time to set up its connections: an HTTP run is at least 1 s.
HTTP_SECS=$(python3 -c "print(max($SECS, 1.0))")
ONLY=${ONLY:-.}
SECTIONS=(micro echo bufring echo_cores http latency idle_memory task_memory sleep files)
# Memory figures are not subject to the speed modes: fewer pairs suffice.
MEM_PAIRS=$((PAIRS < 3 ? PAIRS : 3))
if [ "$PAIRS" -lt 1 ]; then
    echo "PAIRS must be at least 1" >&2
    exit 2
fi

log() { printf '[bench_all %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

if [ -n "$(git status --porcelain -- src Cargo.toml Cargo.lock)" ]; then
    echo "bench_all: src/, Cargo.toml or Cargo.lock has uncommitted changes; commit them first" \
        "(the numbers must belong to one commit):" >&2
    git status --short -- src Cargo.toml Cargo.lock >&2
    exit 2
fi
COMMIT=$(git rev-parse --short=10 HEAD)
export BENCH_COMMIT=$COMMIT
OTHER_DIRTY=$(git status --porcelain -- benches scripts examples | wc -l)
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RAW=docs/bench/pairs
SEC=docs/bench/all
LOGS=target/bench-all/$STAMP
mkdir -p "$RAW" "$SEC" "$LOGS/bin"
PY="python3 scripts/lib/bench_all.py"
T0=$(date +%s)
LOAD_START=$(cat /proc/loadavg)

# ------------------------------------------------------------------ build
log "building the benches and the echo_server example at $COMMIT"
BENCHES=(core combinators sync threadsafe blocking file_read file_write task_memory sleep_precision echo latency)
args=()
for b in "${BENCHES[@]}"; do args+=(--bench "$b"); done
if ! cargo bench --no-run --message-format=json "${args[@]}" >"$LOGS/build.json" 2>"$LOGS/build.log" ||
    ! cargo build --release --example echo_server 2>>"$LOGS/build.log"; then
    log "build failed, see $LOGS/build.log"
    tail -30 "$LOGS/build.log" >&2
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
        print(m["executable"])' "$LOGS/build.json" "$1" | tail -1
}
# Copies, so that a rebuild in this tree during the run cannot change them.
for b in "${BENCHES[@]}"; do
    e=$(exe_of "$b")
    [ -x "$e" ] || { log "no executable for bench $b"; exit 1; }
    cp "$e" "$LOGS/bin/$b"
done
cp target/release/examples/echo_server "$LOGS/bin/echo_server"
BIN=$ROOT/$LOGS/bin

# ------------------------------------------------------------------ sections
FAILED=()
RAN=()
# section NAME ESTIMATE_S FUNCTION: runs FUNCTION (output to its log) when
# NAME matches ONLY; a failure becomes a failed section.
section() {
    local name=$1 est=$2 fn=$3
    [[ $name =~ $ONLY ]] || return 0
    RAN+=("$name")
    log "section $name: estimated $((est / 60)) min $((est % 60)) s"
    local t=$(date +%s)
    "$fn" >"$LOGS/$name.log" 2>&1
    local rc=$?
    log "section $name: $(($(date +%s) - t)) s, exit $rc"
    if [ $rc -ne 0 ]; then
        FAILED+=("$name")
        tail -5 "$LOGS/$name.log" >&2
        # A section that failed half-way may have written its rows: keep
        # them beside the failure only when there are none.
        if [ ! -s "$SEC/$name.md" ] || [ "$SEC/$name.md" -ot "$LOGS/build.log" ]; then
            $PY failed --section "$name" --title "$name" --md "$SEC/$name.md" \
                --rows "$SEC/$name.rows.json" --log "$LOGS/$name.log" --rc "$rc" >/dev/null
        else
            printf '\n**This section exited with status %s** (log: `%s`); its rows above are what it measured.\n' \
                "$rc" "$LOGS/$name.log" >>"$SEC/$name.md"
        fi
    fi
}
out() { # the section's outputs
    echo --md "$SEC/$1.md" --rows "$SEC/$1.rows.json"
}
crit_bins() {
    local b
    for b in core combinators sync threadsafe blocking file_read file_write; do echo "$b=$BIN/$b"; done
}
TWINS=docs/bench/twins.txt
crit_rows() { # the number of twin rows of targets matching $1
    python3 - "$TWINS" "$1" <<'PY'
import importlib.util, re, sys
spec = importlib.util.spec_from_file_location("b", "scripts/lib/bench_all.py")
b = importlib.util.module_from_spec(spec); spec.loader.exec_module(b)
rows, _ = b.load_twins(sys.argv[1])
print(sum(1 for r in rows if re.search(sys.argv[2], r[0])))
PY
}
crit_est() { # rows -> seconds
    python3 -c "print(int($1 * $PAIRS * 2 * ($CRIT_WARMUP + $CRIT_MEASURE + 1.2)))"
}
run_est() { # runs per pair, points -> seconds (a run: SECS + warm-up + start-up)
    python3 -c "print(int($1 * $2 * $PAIRS * ($SECS + 0.3 + 0.5)))"
}

s_micro() {
    $PY criterion --section micro --title "Micro-benchmarks (criterion), ringloop vs twin" $(out micro) \
        --twins "$TWINS" --targets '^(?!file_(read|write)$)' --bins $(crit_bins) --pairs "$PAIRS" \
        --warmup "$CRIT_WARMUP" --measure "$CRIT_MEASURE" --raw "$RAW/$STAMP-micro.tsv"
}

echo_pairs() { # tsv, extra args...
    local tsv=$1
    shift
    "$BIN/echo" pairs --pairs "$PAIRS" --secs "$SECS" --warmup 0.3 --max-foreign "$MAX_FOREIGN" \
        --retries "$RETRIES" --quiet-wait 120 --mode-gap "$MODE_GAP" --tsv "$tsv" "$@"
}
s_echo() {
    local a=$RAW/$STAMP-echo-64B.tsv b=$RAW/$STAMP-echo-4KiB.tsv rc=0
    local servers=(--candidates ringloop-epoll,ringloop-io_uring,raw --baseline tokio)
    echo_pairs "$a" "${servers[@]}" --conns 1,16,100,1000 --sizes 64 || rc=1
    echo_pairs "$b" "${servers[@]}" --conns 16,100 --sizes 4096 || rc=1
    $PY echo --section echo --title "Echo, one server core" $(out echo) --tsv "$a" "$b" \
        --compare ringloop-io_uring:tokio:"ringloop io_uring vs tokio" \
        ringloop-epoll:tokio:"ringloop epoll vs tokio" \
        ringloop-io_uring:raw:"ringloop io_uring vs raw io_uring loop" \
        ringloop-epoll:raw:"ringloop epoll vs raw io_uring loop" \
        --target "1x64:ringloop-io_uring:raw:cpu:1.0:lower:server CPU per msg ≤ the raw loop's (issue 16)" \
        --intro "- Server pinned to CPU 0, the load generator (a raw io_uring client, checks every byte) to CPU 1; each connection keeps one message outstanding." \
        --intro "- Servers (benches/echo.rs): \`ringloop-io_uring\`, \`ringloop-epoll\` (the same code, backend forced), \`tokio\` (current_thread, epoll), \`raw\` (a hand-written io_uring loop with ringloop's ring flags)." \
        --intro "- Command: \`echo pairs --candidates ringloop-epoll,ringloop-io_uring,raw --baseline tokio --pairs $PAIRS --secs $SECS --warmup 0.3 --max-foreign $MAX_FOREIGN --retries $RETRIES\` at 1/16/100/1000 × 64 B and 16/100 × 4 KiB. A round runs all four servers, so ringloop vs raw is a pair from the same round; a pair is dropped when either run was dropped by the echo \`pairs\` mode (\`mode\`: the runs fell in different speed modes; \`load\`: other processes used > $MAX_FOREIGN cores)." \
        || rc=1
    return $rc
}

s_bufring() {
    local t=$RAW/$STAMP-bufring.tsv
    python3 scripts/echo_revs_pair.py --base "$BIN/echo" --new "$BIN/echo" --kind ringloop-io_uring \
        --new-env RINGLOOP_ECHO_RECV=bufring --points 100x64,1x64 --pairs "$PAIRS" --secs "$SECS" \
        --out "$t" || return 1
    $PY bufring --section bufring --title "Echo receive path: buffer ring vs one-shot reads (io_uring)" \
        $(out bufring) --tsv "$t" \
        --intro "- The same benches/echo.rs binary, kind \`ringloop-io_uring\`, with \`RINGLOOP_ECHO_RECV=bufring\` (new) and without (one-shot reads into a per-connection buffer): \`scripts/echo_revs_pair.py --kind ringloop-io_uring --new-env RINGLOOP_ECHO_RECV=bufring --points 100x64,1x64 --pairs $PAIRS --secs $SECS\`." \
        --intro "- Ratios are bufring / one-shot (a ringloop-internal comparison: not in the \"does not win\" list unless its target is not met)."
}

s_echo_cores() {
    local rc=0 tsvs=() be t
    for be in io_uring epoll; do
        t=$RAW/$STAMP-echo_cores-$be.tsv
        tsvs+=("$t")
        RINGLOOP_BACKEND=$be echo_pairs "$t" --candidates tokio-mt2,tokio-ct2 \
            --baseline ringloop-2core-round-robin --client-cpu 0,1 --conns 100,1000 --sizes 64 || rc=1
        # The 4 KiB point, appended to the same file (without its header).
        RINGLOOP_BACKEND=$be echo_pairs "$t.4k" --candidates tokio-mt2,tokio-ct2 \
            --baseline ringloop-2core-round-robin --client-cpu 0,1 --conns 16 --sizes 4096 || rc=1
        tail -n +2 "$t.4k" >>"$t" && rm -f "$t.4k"
    done
    $PY echo --section echo_cores_io_uring --title "Echo, two cores, ringloop on io_uring" $(out echo_cores_io_uring) \
        --tsv "${tsvs[0]}" \
        --compare "ringloop-2core-round-robin:tokio-mt2:ringloop Cores vs tokio multi_thread(2)" \
        "ringloop-2core-round-robin:tokio-ct2:ringloop Cores vs 2 pinned tokio current_thread" \
        --intro "- ringloop: \`ringloop::Cores::new(2)\`, loops pinned to CPUs 0 and 1, one \`CoresListener\` in round-robin mode (\`RINGLOOP_BACKEND=io_uring\`). Twins: tokio \`multi_thread\` with 2 workers (one listener, work stealing, not pinned: what tokio does by default), and 2 tokio \`current_thread\` runtimes on threads pinned to CPUs 0 and 1, each with its own \`SO_REUSEPORT\` listener (what tokio users write for thread-per-core). Both tokio servers run on epoll." \
        --intro "- The load generator: two threads pinned to CPUs 0 and 1, half the connections each. Command: \`RINGLOOP_BACKEND=io_uring echo pairs --candidates tokio-mt2,tokio-ct2 --baseline ringloop-2core-round-robin --client-cpu 0,1 --pairs $PAIRS --secs $SECS\` at 100/1000 × 64 B and 16 × 4 KiB; ratios inverted to ringloop / twin." \
        || rc=1
    $PY echo --section echo_cores_epoll --title "Echo, two cores, ringloop on epoll" $(out echo_cores_epoll) \
        --tsv "${tsvs[1]}" \
        --compare "ringloop-2core-round-robin:tokio-mt2:ringloop Cores vs tokio multi_thread(2)" \
        "ringloop-2core-round-robin:tokio-ct2:ringloop Cores vs 2 pinned tokio current_thread" \
        --intro "- As the io_uring table, with \`RINGLOOP_BACKEND=epoll\`: all three servers on epoll." \
        || rc=1
    # The section's own files point at the two tables.
    cat "$SEC/echo_cores_io_uring.md" "$SEC/echo_cores_epoll.md" >"$SEC/echo_cores.md" 2>/dev/null
    python3 - "$SEC" <<'PY' || rc=1
import json, sys
d = sys.argv[1]
rows = []
for n in ("echo_cores_io_uring", "echo_cores_epoll"):
    try:
        rows += json.load(open(f"{d}/{n}.rows.json"))["rows"]
    except FileNotFoundError:
        pass
import os
json.dump({"section": "echo_cores", "commit": os.environ.get("BENCH_COMMIT", ""), "rows": rows},
          open(f"{d}/echo_cores.rows.json", "w"), indent=1)
PY
    rm -f "$SEC"/echo_cores_io_uring.* "$SEC"/echo_cores_epoll.*
    return $rc
}

s_http() {
    local rc=0
    # Not its QUICK (0.5 s runs, too short for h2load's set-up); ONLY= so
    # that it runs every one of its sections.
    QUICK= ONLY= PAIRS=$PAIRS SECS=$HTTP_SECS scripts/http_bench.sh || rc=1
    rm -f docs/bench/http.md.tmp # left behind when it stops half-way
    local specs=() f base kind
    for f in docs/bench/http/*.tsv; do
        [ "$f" -nt "$LOGS/build.log" ] || continue # not re-measured in this run
        base=$(basename "$f" .tsv)
        cp "$f" "$RAW/$STAMP-http-$base.tsv"
        case $base in
            readiness-vs-copy* | multishot-vs-oneshot*) kind=internal ;;
            *) kind=twin ;;
        esac
        specs+=("$RAW/$STAMP-http-$base.tsv=$base=$kind")
    done
    [ ${#specs[@]} -gt 0 ] || return 1
    $PY http --section http --title "HTTP (hyper), one server core" $(out http) --tsv "${specs[@]}" \
        --max-others "$HTTP_MAX_OTHERS" \
        --intro "- \`PAIRS=$PAIRS SECS=$HTTP_SECS scripts/http_bench.sh\`: the ringloop + hyper server vs tokio current_thread + the same hyper (\`ringloop-vs-tokio-*\`, \`h2-*\`: HTTP/2 with h2load, 10 streams per connection), and ringloop against itself (\`readiness-vs-copy-*\`: the readiness path vs owned-buffer reads + copy; internal, not in the \"does not win\" list). Server on CPU 0, the load generator on CPU 1. Its own page, with more columns: docs/bench/http.md." \
        --intro "- Ratios: A / B per pair (A = ringloop, or the readiness path); pairs during which other processes used more than $HTTP_MAX_OTHERS cores dropped as \`load\` (after benches/http.rs's own retries), requests/s pairs beyond 1.5 IQR of the ratios as \`mode\`." \
        || rc=1
    return $rc
}

s_latency() {
    # The latency client does not time the first 0.3 s of a run: add it.
    local rc=0 be t sat run
    sat=$(python3 -c "print(round($SECS + 0.3, 3))")
    run=$(python3 -c "print(round(2 * $SECS + 0.3, 3))")
    for be in io_uring epoll; do
        t=$RAW/$STAMP-latency-$be.tsv
        RINGLOOP_BACKEND=$be "$BIN/latency" run --echo-server "$BIN/echo_server" --pairs "$PAIRS" \
            --secs "$run" --sat-secs "$sat" --fractions 0.5,0.9 --tsv "$t" || rc=1
        [ -f "$t" ] || continue
        $PY latency --section "latency_$be" --title "Latency at a fixed rate, ringloop on $be" \
            $(out "latency_$be") --tsv "$t" \
            --intro "- The \`echo_server\` example (\`RINGLOOP_BACKEND=$be\`, pinned to CPU 0) vs a tokio current_thread twin (epoll), 100 connections × 64 B, load generator on CPU 1. Coordinated omission corrected: message k is due at k / rate and its latency is measured from that time." \
            --intro "- The saturated rate: $PAIRS closed-loop pairs (rows \`saturated\`), the median of each server's rates, the lower of the two; then $PAIRS pairs at 50 % and at 90 % of it. Command: \`RINGLOOP_BACKEND=$be latency run --pairs $PAIRS --secs $run --sat-secs $sat --fractions 0.5,0.9 --tsv …\` (the first 0.3 s of each run are not timed)." \
            || rc=1
    done
    cat "$SEC/latency_io_uring.md" "$SEC/latency_epoll.md" >"$SEC/latency.md" 2>/dev/null
    python3 - "$SEC" <<'PY' || rc=1
import json, os, sys
d = sys.argv[1]
rows = []
for n in ("latency_io_uring", "latency_epoll"):
    if os.path.exists(f"{d}/{n}.rows.json"):
        rows += json.load(open(f"{d}/{n}.rows.json"))["rows"]
json.dump({"section": "latency", "commit": os.environ.get("BENCH_COMMIT", ""), "rows": rows},
          open(f"{d}/latency.rows.json", "w"), indent=1)
PY
    rm -f "$SEC"/latency_io_uring.* "$SEC"/latency_epoll.*
    return $rc
}

s_idle_memory() {
    $PY idle --section idle_memory --title "Memory per idle connection" $(out idle_memory) \
        --script scripts/idle_memory.py --echo-server "$BIN/echo_server" --echo-bench "$BIN/echo" \
        --conns "$IDLE_CONNS" --pairs "$MEM_PAIRS" --raw "$RAW/$STAMP-idle_memory.tsv" \
        --intro "- scripts/idle_memory.py's measurement: the server (pinned to CPU 0) gets $IDLE_CONNS connections, each makes one checked 64 B round trip and stays open; RSS growth / connections. \`bufring\`: the echo_server example (receives from the loop's shared buffer group); \`one-shot\`: the same with \`ECHO_READS=one-shot\`; twin: the tokio current_thread echo of benches/echo.rs. On io_uring, then with \`RINGLOOP_BACKEND=epoll\`." \
        --intro "- $MEM_PAIRS pairs (memory does not follow the speed modes); kernel memory (socket buffers) is not in RSS."
}

s_task_memory() {
    $PY runs --section task_memory --title "Memory per idle task" $(out task_memory) --bin "$BIN/task_memory" \
        --tag task_memory --group-by variant --field bytes_per_task beyond_future spawn_ms \
        --pairs "$MEM_PAIRS" --raw "$RAW/$STAMP-task_memory.tsv" \
        --intro "- benches/task_memory.rs, $MEM_PAIRS invocations (each one child process per runtime and variant): 1,000,000 tasks each awaiting a 1-hour sleep (\`sleeping\`) or \`pending()\`; VmRSS growth per task; \`beyond_future\` subtracts the future's and the join handle's sizes."
}

s_sleep() {
    $PY runs --section sleep --title "Sleep precision" $(out sleep) --bin "$BIN/sleep_precision" \
        --tag sleep_precision --field p50_us p99_us max_us --pairs "$PAIRS" --raw "$RAW/$STAMP-sleep.tsv" \
        --intro "- benches/sleep_precision.rs, $PAIRS invocations: \`sleep(1 ms)\` 1,000 times on an idle loop, ringloop and tokio alternating in rounds of 100; overshoot past 1 ms. tokio's timer wheel has 1 ms granularity."
}

s_files() {
    RINGLOOP_FILE_READ_MIB=$FILE_MIB $PY criterion --section files --title "File reads, ringloop vs twin" \
        $(out files) --twins "$TWINS" --targets '^file_(read|write)$' --bins $(crit_bins) --pairs "$PAIRS" \
        --warmup "$CRIT_WARMUP" --measure "$CRIT_MEASURE" --raw "$RAW/$STAMP-files.tsv" \
        --intro "- A ${FILE_MIB} MiB file (target/file_read.bin); \`file_read_cached\`: in the page cache (each run reads it whole first); \`file_read_direct\`: O_DIRECT."
}

MICRO_ROWS=$(crit_rows '^(?!file_(read|write)$)')
FILE_ROWS=$(crit_rows '^file_(read|write)$')
section micro "$(crit_est "$MICRO_ROWS")" s_micro
section echo "$(run_est 4 6)" s_echo
section bufring "$(run_est 2 2)" s_bufring
section echo_cores "$(run_est 3 6)" s_echo_cores
section http "$(python3 -c "print(int(2 * 16 * $PAIRS * ($HTTP_SECS + 0.8)))")" s_http
section latency "$(python3 -c "print(int(2 * $PAIRS * 2 * ($SECS + 0.6) + 2 * 2 * $PAIRS * 2 * (2 * $SECS + 0.6)))")" s_latency
section idle_memory "$((MEM_PAIRS * 6 * 6))" s_idle_memory
section task_memory "$((MEM_PAIRS * 15))" s_task_memory
section sleep "$((PAIRS * 3))" s_sleep
section files "$(crit_est "$FILE_ROWS")" s_files

# ------------------------------------------------------------------ assemble
T1=$(date +%s)
lockver() { grep -A1 "^name = \"$1\"\$" Cargo.lock | sed -n 's/version = "\(.*\)"/\1/p' | head -1; }
HEADER=$LOGS/header.md
{
    echo "# ringloop benchmarks"
    echo
    echo "Generated by \`scripts/bench_all.sh\`; do not edit by hand (every number below comes from the raw"
    echo "pair files it names). Method: \`shared/BENCHMARKING.md\`, \"Pairs, not runs\"."
    echo
    echo "## How to read this page"
    echo
    echo "- Every row compares ringloop with a twin (tokio, a raw io_uring loop, or another ringloop path)"
    echo "  in pairs of short runs back to back, the order flipped every other pair. The ratio is"
    echo "  ringloop / twin per pair; the cell is the median of those ratios with its interquartile range."
    echo "  \`better\` says which way favours ringloop (lower: times, CPU, bytes, latency; higher: throughput)."
    echo "- A ratio whose interquartile range spans 1.0 is \"no difference measurable\" here, whatever its median."
    echo "- Absolute figures (medians over the kept pairs) are beside each ratio; they move with the machine's"
    echo "  speed modes, the ratios much less. Pairs dropped (and why) are counted in each row."
    echo "- A target is stated where issue 16 names one: met, not met, or no difference measurable."
    echo
    echo "## This run"
    echo
    echo "- Commit: \`$(git rev-parse HEAD)\` (\`$COMMIT\`), src/ clean$([ "$OTHER_DIRTY" -gt 0 ] && echo "; benches/, scripts/ or examples/ had $OTHER_DIRTY uncommitted changes")"
    echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC'); took $(((T1 - T0) / 60)) min"
    echo "- Toolchain: $(rustc --version); tokio $(lockver tokio); hyper $(lockver hyper); hyper-util $(lockver hyper-util); io-uring $(lockver io-uring); criterion $(lockver criterion)"
    echo "- Machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); Linux $(uname -r)"
    echo "- Load average at start: $LOAD_START; at end: $(cat /proc/loadavg)"
    echo "- Command: \`$([ -n "${QUICK:-}" ] && echo "QUICK=1 ")PAIRS=$PAIRS SECS=$SECS CRIT_WARMUP=$CRIT_WARMUP CRIT_MEASURE=$CRIT_MEASURE IDLE_CONNS=$IDLE_CONNS FILE_MIB=$FILE_MIB$([ "$ONLY" != . ] && echo " ONLY='$ONLY'") scripts/bench_all.sh\`"
    [ -n "${QUICK:-}" ] && echo "- **QUICK=1: a smoke run (2 pairs of very short runs). These numbers are not measurements.**"
    echo "- Raw pairs: \`docs/bench/pairs/$STAMP-*.tsv\`; logs: \`$LOGS/\` (not in the repository)"
    [ ${#FAILED[@]} -gt 0 ] && echo "- **Failed sections: ${FAILED[*]}** (see each section)"
} >"$HEADER"
$PY assemble --dir "$SEC" --header "$HEADER" --out BENCHMARKS.md --sections "${SECTIONS[@]}" ||
    FAILED+=(assemble)
log "wrote BENCHMARKS.md in $(((T1 - T0) / 60)) min $(((T1 - T0) % 60)) s (sections run: ${RAN[*]:-none})"
if [ ${#FAILED[@]} -gt 0 ]; then
    log "FAILED sections: ${FAILED[*]}"
    exit 1
fi
