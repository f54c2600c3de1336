# Shared by scripts/asan.sh and scripts/tsan.sh (sourced, not run): checks
# the nightly toolchain, runs `cargo +nightly test -Zbuild-std` with the
# sanitizer's reports written to files, and prints a summary.
#
# Reports go to files (the sanitizer's `log_path`) rather than to stderr so
# that a report from a child process whose stderr a test captures (a test
# re-executing its own binary) is still counted.

SAN_TARGET=x86_64-unknown-linux-gnu

# san_build_env DIR SANITIZER: builds into target/DIR with
# -Zsanitizer=SANITIZER (std too, via -Zbuild-std in san_run), at opt-level
# 1 with debug assertions on (at opt-level 0 the instrumented build is ~5x
# slower and tests with time bounds fail for slowness alone); reports go to
# target/DIR/reports (SAN_REPORTS).
san_build_env() {
    export CARGO_TARGET_DIR="target/$1"
    export CARGO_PROFILE_DEV_OPT_LEVEL=1
    export RUSTFLAGS="-Zsanitizer=$2 -Cforce-frame-pointers=yes"
    export RUSTDOCFLAGS="$RUSTFLAGS"
    SAN_REPORTS="$PWD/$CARGO_TARGET_DIR/reports"
}

# Exits 2 with a clear message when there is no nightly toolchain; adds
# rust-src (needed by -Zbuild-std) when it is missing.
san_require_nightly() {
    if ! cargo +nightly --version >/dev/null 2>&1; then
        echo "$SAN_NAME: no nightly toolchain: sanitizers need nightly rustc" \
            "(rustup toolchain install nightly); nothing was run" >&2
        exit 2
    fi
    if ! rustup component list --toolchain nightly --installed 2>/dev/null |
        grep -q '^rust-src'; then
        echo "$SAN_NAME: adding rust-src to nightly (for -Zbuild-std)" >&2
        rustup component add rust-src --toolchain nightly
    fi
}

# san_run: runs `cargo test` with the arguments in the arrays SAN_CARGO_ARGS
# (targets) and SAN_TEST_ARGS (for the test binaries, e.g. --skip), with no
# fail-fast (every binary runs even after a failure), logs to
# $CARGO_TARGET_DIR/test.log, then prints the summary. Sets SAN_STATUS: 0
# when every test passed and no report was written.
san_run() {
    local log="$CARGO_TARGET_DIR/test.log"
    rm -rf "$SAN_REPORTS"
    mkdir -p "$SAN_REPORTS"
    local start=$SECONDS
    echo "$SAN_NAME: nightly $(rustc +nightly --version | cut -d' ' -f2-)" >&2
    echo "$SAN_NAME: RUSTFLAGS=\"$RUSTFLAGS\" $SAN_ENV_SHOWN" >&2
    # The build is timed apart from the run, so the figures separate them.
    cargo +nightly test -Zbuild-std --target "$SAN_TARGET" --no-run \
        "${SAN_CARGO_ARGS[@]}" 2>&1 | tail -n 3 >&2 || true
    local built=$SECONDS
    local status=0
    # `timeout` signals its whole process group: cargo and the test binary.
    timeout -k 30 "${SAN_TIMEOUT:-3600}" \
        cargo +nightly test -Zbuild-std --target "$SAN_TARGET" --no-fail-fast \
        "${SAN_CARGO_ARGS[@]}" -- "${SAN_TEST_ARGS[@]}" \
        >"$log" 2>&1 || status=$?
    local ran=$SECONDS
    san_summary "$log" "$status" $((built - start)) $((ran - built))
}

# san_summary LOG CARGO_STATUS BUILD_SECS RUN_SECS
san_summary() {
    local log=$1 status=$2 build_secs=$3 run_secs=$4
    local reports
    reports=$(cat "$SAN_REPORTS"/* 2>/dev/null | grep -c "$SAN_REPORT_RE" || true)
    # "test result:" lines (one per test binary, two for the doc tests:
    # merged and standalone). A binary that died (a sanitizer abort, a
    # crash) prints none; cargo's exit status says so.
    read -r binaries results passed failed ignored filtered < <(awk '
        /^ *(Running|Doc-tests) / { bins++ }
        /^test result:/ {
            res++
            for (i = 1; i <= NF; i++) {
                if ($(i+1) ~ /^passed/) p += $i
                if ($(i+1) ~ /^failed/) f += $i
                if ($(i+1) ~ /^ignored/) ig += $i
                if ($(i+1) == "filtered") fo += $i
            }
        }
        END { printf "%d %d %d %d %d %d\n", bins, res, p, f, ig, fo }' "$log")
    # Failures and reports in full, before the summary.
    grep -E '^test .* FAILED$|^---- .* stdout ----$|panicked at|^error' "$log" || true
    if [ -n "$(ls -A "$SAN_REPORTS")" ]; then
        echo
        echo "==== $SAN_NAME reports ($SAN_REPORTS) ===="
        for f in "$SAN_REPORTS"/*; do
            echo "---- $f"
            cat "$f"
        done
    fi

    echo
    echo "==== $SAN_NAME summary ===="
    echo "command:   $SAN_COMMAND_SHOWN"
    echo "skipped:   ${SAN_SKIPPED:-none}"
    echo "binaries:  $binaries (test binaries and doc-test runs)"
    echo "tests:     $((passed + failed)) run, $passed passed, $failed failed, $ignored ignored, $filtered filtered out"
    echo "reports:   $reports ($SAN_REPORT_KIND)"
    echo "time:      build ${build_secs} s, tests ${run_secs} s ($(nproc) cores)"
    echo "log:       $log"
    SAN_STATUS=0
    if [ "$status" -ne 0 ] || [ "$reports" -gt 0 ] || [ "$failed" -gt 0 ] ||
        [ "$results" -eq 0 ]; then
        [ "$status" -eq 124 ] && echo "result:    TIMED OUT after ${SAN_TIMEOUT:-3600} s"
        echo "result:    FAILED (cargo exit $status)"
        SAN_STATUS=1
    else
        echo "result:    ok"
    fi
}
