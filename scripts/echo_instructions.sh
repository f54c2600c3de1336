#!/usr/bin/env bash
# User-space instructions per echoed message of the ringloop echo server
# (benches/echo.rs `server ringloop`), counted by valgrind's cachegrind:
# deterministic where CPU time on this shared 2-core machine is not. The
# server runs under valgrind (on the backend RINGLOOP_BACKEND picks; use
# epoll: valgrind does not run io_uring rings), the client natively; the
# figure is the server's whole-run instruction count divided by the
# messages it echoed (its RESULT line's bytes / SIZE), so start-up
# (about 0.5 M instructions) is spread over the run.
#
# Usage: scripts/echo_instructions.sh ECHO_BENCH_BIN CONNS SECS [SIZE]
# prints: instructions messages instructions_per_message
set -euo pipefail
BIN=$1 CONNS=$2 SECS=$3 SIZE=${4:-64}
DIR=$(mktemp -d /tmp/echo-ir.XXXXXX)
trap 'rm -rf "$DIR"' EXIT
mkfifo "$DIR/stdin"
valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file="$DIR/cg" \
    "$BIN" server ringloop "$DIR/port" <"$DIR/stdin" >"$DIR/server" 2>"$DIR/server.err" &
VG=$!
exec 4>"$DIR/stdin" # the server stops when its stdin closes
for _ in $(seq 1 300); do [ -s "$DIR/port" ] && break; sleep 0.1; done
[ -s "$DIR/port" ] || { cat "$DIR/server.err" >&2; exit 1; }
"$BIN" client "127.0.0.1:$(cat "$DIR/port")" "$CONNS" "$SIZE" "$SECS" --warmup 0.3 >"$DIR/client"
exec 4>&-
wait $VG
IR=$(awk '/^summary:/ {print $2}' "$DIR/cg")
BYTES=$(grep '^RESULT server' "$DIR/server" | tr ' ' '\n' | awk -F= '$1 == "bytes" {print $2}')
MSGS=$((BYTES / SIZE))
echo "$IR $MSGS $(awk -v i="$IR" -v m="$MSGS" 'BEGIN {printf "%.1f", i / m}')"
