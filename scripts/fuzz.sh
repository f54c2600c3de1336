#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for FUZZ_SECS seconds each (default
# 60); exits non-zero on the first crash (its input is left in
# fuzz/artifacts/<target>/). Installs cargo-fuzz if missing; uses the nightly
# toolchain, or RUSTC_BOOTSTRAP=1 on stable when there is none.
#
#   scripts/fuzz.sh                 # every target, 60 s each
#   FUZZ_SECS=300 scripts/fuzz.sh timers
#   RINGLOOP_BACKEND=epoll scripts/fuzz.sh stream_reader   # on epoll only
#
# driver_ops runs each input on io_uring or epoll (its first bit picks), so
# one run gives both backends time (it prints the split); the targets that
# make their loop with EventLoop::new() follow RINGLOOP_BACKEND, which
# passes through (fuzz/README.md, "Backends").
set -euo pipefail

cd "$(dirname "$0")/../fuzz"
secs="${FUZZ_SECS:-60}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz" >&2
    cargo install --locked cargo-fuzz
fi

if cargo +nightly --version >/dev/null 2>&1; then
    fuzz() { cargo +nightly fuzz "$@"; }
else
    echo "fuzz.sh: no nightly toolchain; using RUSTC_BOOTSTRAP=1" >&2
    fuzz() { RUSTC_BOOTSTRAP=1 cargo fuzz "$@"; }
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(fuzz list)
fi

fuzz build
for t in "${targets[@]}"; do
    echo "fuzz.sh: $t for ${secs}s" >&2
    # Regression inputs first (each file one crash found and fixed).
    if [ -d "regressions/$t" ] && [ -n "$(ls -A "regressions/$t")" ]; then
        fuzz run "$t" "regressions/$t"/*
    fi
    fuzz run "$t" -- -max_total_time="$secs"
done
echo "fuzz.sh: ${#targets[@]} target(s), no crash" >&2
