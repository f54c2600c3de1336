#!/usr/bin/env bash
# Runs the loom models of ringloop's cross-thread code: every lib test whose
# name contains "loom" (the `loom_tests` modules under `cfg(all(test, loom))`:
# the remote queue's park/push handshake, the cross-core channel, the
# blocking pool's hand-off).
#
# Usage: scripts/loom.sh                       # every model
#        scripts/loom.sh --exact NAME          # extra arguments go to the
#                                              # test harness
#        LOOM_MAX_PREEMPTIONS=2 scripts/loom.sh
#
# Builds into target/loom, so the `--cfg loom` build does not invalidate the
# normal build in target/.
set -euo pipefail
cd "$(dirname "$0")/.."

export RUSTFLAGS="--cfg loom"
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}"
export CARGO_TARGET_DIR=target/loom

start=$SECONDS
cargo test --release --lib loom -- "$@"
echo "loom models: $((SECONDS - start)) s (LOOM_MAX_PREEMPTIONS=$LOOM_MAX_PREEMPTIONS)"
