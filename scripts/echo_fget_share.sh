#!/usr/bin/env bash
# How much of the io_uring echo server's CPU goes to looking up and
# releasing the socket's `struct file` per SQE (fget/fput under
# io_file_get_normal): the most registered fds (IOSQE_FIXED_FILE) could
# save. See docs/design/fixed-files.md.
#
#   scripts/echo_fget_share.sh ECHO_BIN CONNS SIZE SECS
#
# ECHO_BIN is a benches/echo.rs executable (cargo bench --bench echo
# --no-run; target/release/deps/echo-<hash>). Runs its `server
# ringloop-io_uring` (pinned to CPU 0 by itself) and `client` (CPU 1),
# records the server with `perf record -F 9999 -g` for SECS+1 s, and
# prints both RESULT lines and the fget/fput/io_file_get_normal shares.
# Needs perf and perf_event_paranoid <= 2 (or root). Leaves nothing behind
# but the perf data in a temporary directory it removes.
set -euo pipefail
if [ $# -ne 4 ]; then
    sed -n '2,16p' "$0"
    exit 2
fi
bin=$1 conns=$2 size=$3 secs=$4
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkfifo "$dir/stdin"
"$bin" server ringloop-io_uring "$dir/port" < "$dir/stdin" > "$dir/server.out" 2>&1 &
server=$!
exec 7> "$dir/stdin" # the server echoes until its stdin closes
for _ in $(seq 100); do [ -s "$dir/port" ] && break; sleep 0.1; done
port=$(cat "$dir/port")
perf record -F 9999 -g -o "$dir/perf.data" -p "$server" -- sleep $((secs + 1)) > /dev/null 2>&1 &
perf_pid=$!
"$bin" client "127.0.0.1:$port" "$conns" "$size" "$secs" > "$dir/client.out" 2>&1
wait "$perf_pid"
exec 7>&-
wait "$server"
grep -h RESULT "$dir/client.out" "$dir/server.out"
report() { perf report -i "$dir/perf.data" "$@" --sort symbol --stdio 2> /dev/null; }
# (`head` closes the pipe early: not a failure.)
set +o pipefail
report --no-children | grep -E '^# Samples'
report --no-children | grep -E '^ +[0-9]' | head -12
report --no-children | grep -E ' (fget|fput|io_file_get_normal)\b'
report --children | grep -E ' (__do_sys_io_uring_enter|io_submit_sqes)\b' | head -2
