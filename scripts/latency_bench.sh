#!/usr/bin/env bash
# Echo latency at a fixed rate (coordinated omission corrected): the
# echo_server example against a tokio twin, 100 connections x 64 B
# (benches/latency.rs), at 50% and 90% of the saturated rate. The
# saturated rate comes from paired closed-loop runs (the median of each
# server's rates, the lower of the two); each fixed-rate point is PAIRS
# pairs, the order flipped every other pair. Prints the table; the
# per-pair figures go to the TSV named by --tsv.
#
# Usage: scripts/latency_bench.sh [run options, e.g. --pairs 10 --secs 2 --tsv FILE]
#        RINGLOOP_BACKEND=epoll scripts/latency_bench.sh   # the example on epoll
# The `latency` section of scripts/bench_all.sh runs this on both backends
# and writes its BENCHMARKS.md section. Needs a quiet machine: it warns when
# the load average is above 1.2.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --example echo_server
BIN=$(cargo bench --bench latency --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m["target"]["name"]=="latency" and m.get("executable"):
        print(m["executable"])' | tail -1)
[ -x "$BIN" ] || { echo "could not build benches/latency.rs" >&2; exit 1; }
load=$(cut -d' ' -f1 /proc/loadavg)
if awk "BEGIN{exit !($load > 1.2)}"; then
    echo "warning: load average $load > 1.2: the figures will be noisy" >&2
fi
echo "commit $(git rev-parse --short HEAD); $(date -u '+%Y-%m-%d %H:%M UTC'); kernel $(uname -r); backend ${RINGLOOP_BACKEND:-default}"
"$BIN" run --echo-server target/release/examples/echo_server "$@"
