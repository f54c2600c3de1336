#!/usr/bin/env bash
# The two-core echo benchmark, paired (shared/BENCHMARKING.md): ringloop
# `Cores` (2 loops pinned to CPUs 0 and 1, one round-robin `CoresListener`)
# against tokio's multi_thread runtime with 2 workers and against 2 pinned
# tokio current_thread runtimes with SO_REUSEPORT listeners, ringloop on
# io_uring and then on epoll, the load generator on both CPUs. It is the
# `echo_cores` section of scripts/bench_all.sh (see there, and the
# `tokio-ct<n>` kind in benches/echo/multicore.rs); this regenerates that
# section of BENCHMARKS.md.
#
# The earlier version compared pinned loops with unpinned tokio workers,
# one listener per core with work stealing, and io_uring with epoll, in
# unpaired runs; the `multicore` mode of benches/echo.rs still prints the
# per-core spread of connections and CPU for a closer look.
#
# Usage: scripts/echo_cores_bench.sh          # PAIRS=10 SECS=1.0
#        PAIRS=12 SECS=1.5 scripts/echo_cores_bench.sh
ONLY='^echo_cores$' exec "$(dirname "$0")/bench_all.sh" "$@"
