# Shared by scripts/echo_bench.sh and scripts/echo_cores_bench.sh (sourced,
# not run). Expects: SCRIPT (name for log lines), OUT (log folder), LOAD_MAX,
# LOAD_WAIT; the caller has cd'd to the repository root.

log() { printf '[%s %s] %s\n' "$SCRIPT" "$(date -u +%H:%M:%S)" "$*" >&2; }
load1() { cut -d' ' -f1 /proc/loadavg; }

# 1000 connections: 1000 client fds + 1000 server fds (the binary also
# raises its soft limit to the hard limit).
raise_fd_limit() {
    ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
    log "fd limit: $(ulimit -n)"
}

# Builds the `echo` bench binary and copies it to $OUT/echo (a concurrent
# build in this tree may overwrite target/release/deps). Sets EXE and COMMIT
# (with "+ uncommitted changes" when any of the given paths is dirty).
build_echo() {
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
    if [ -n "$(git status --porcelain -- "$@" 2>/dev/null)" ]; then
        COMMIT="$COMMIT + uncommitted changes"
    fi
    cp "$EXE" "$OUT/echo"
    EXE="$OUT/echo"
}

# Waits up to LOAD_WAIT s for the 1-minute load average to fall below
# LOAD_MAX (the 2 cores are shared with other work). Sets LOAD_START,
# LOAD_BEGIN and UNDER_LOAD (a sentence for the report).
wait_quiet() {
    LOAD_START=$(load1)
    local waited=0
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
}
