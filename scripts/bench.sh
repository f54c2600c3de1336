#!/usr/bin/env bash
# The micro-benchmarks, task memory, sleep precision and file reads, ringloop
# vs its twins, in paired short runs (shared/BENCHMARKING.md, "Pairs, not
# runs"). This used to take medians of whole runs, which this machine's
# speed modes turn into false wins; it is now the `micro`, `task_memory`,
# `sleep` and `files` sections of scripts/bench_all.sh, which regenerates
# those sections of BENCHMARKS.md (and marks the others as measured at
# their own commit).
#
# Usage: scripts/bench.sh               # PAIRS=10
#        PAIRS=12 scripts/bench.sh      # any bench_all.sh knob applies
ONLY=${ONLY:-^(micro|task_memory|sleep|files)$} exec "$(dirname "$0")/bench_all.sh" "$@"
