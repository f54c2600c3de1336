#!/usr/bin/env python3
"""User-space instructions per message of a `benches/echo.rs` server, counted
exactly with valgrind's callgrind (no sampling, no noise from other load).

The server runs under callgrind twice, echoing LOW and then HIGH messages
(1 connection by default) from the bench binary's own load generator;
(instructions at HIGH - instructions at LOW) / (HIGH - LOW) is the cost of
one message with start-up and tear-down cancelled out. Only user-space
instructions are counted (callgrind does not see the kernel), so this
measures the runtime's own work, not the syscalls it makes.

Usage:
  scripts/echo_callgrind.py BIN [--servers raw,ringloop-io_uring,tokio]
      [--conns 1] [--size 64] [--low 2000] [--high 12000] [--top 25]

Prints, per server, instructions per message and the functions with the
largest self cost per message.
"""

import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile
import time


def run(binary, kind, conns, size, msgs, outdir):
    port_file = os.path.join(outdir, f"{kind}-{msgs}.port")
    out = os.path.join(outdir, f"{kind}-{msgs}.cg")
    srv = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
         binary, "server", kind, port_file],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.time() + 120
        while not os.path.exists(port_file):
            if srv.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"{kind}: server did not start under valgrind")
            time.sleep(0.05)
        port = open(port_file).read().strip()
        cl = subprocess.run(
            [binary, "client", f"127.0.0.1:{port}", str(conns), str(size), "600",
             "--msgs", str(msgs)],
            capture_output=True, text=True, timeout=900,
        )
        if f"total_msgs={msgs}" not in cl.stdout:
            raise RuntimeError(f"{kind}: client did not echo {msgs} messages: {cl.stdout} {cl.stderr}")
        # The server blocks in the kernel under valgrind and does not exit
        # on its own: ask callgrind for a dump, then stop the server.
        subprocess.run(["callgrind_control", "-d", str(srv.pid)],
                       capture_output=True, timeout=60, check=True)
    finally:
        srv.kill()
        srv.wait()
    dumps = sorted(f for f in os.listdir(outdir) if f.startswith(f"{kind}-{msgs}.cg."))
    if not dumps:
        raise RuntimeError(f"{kind}: callgrind wrote no dump")
    return os.path.join(outdir, dumps[-1])


def self_costs(dump):
    """Self instructions by function, from callgrind_annotate's table."""
    text = subprocess.run(
        ["callgrind_annotate", "--threshold=100", "--auto=no", dump],
        capture_output=True, text=True, check=True,
    ).stdout
    costs, total, in_table = collections.Counter(), 0, False
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\(.*?\)\s+(.*)", line)
        if m and "PROGRAM TOTALS" in line:
            total = int(m.group(1).replace(",", ""))
        if "file:function" in line:
            in_table = True
            continue
        if in_table and m:
            name = re.sub(r"\s*\[[^\]]*\]$", "", m.group(2))
            costs[name.split(":", 1)[-1]] += int(m.group(1).replace(",", ""))
    return total, costs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--servers", default="raw,ringloop-io_uring,tokio")
    ap.add_argument("--conns", type=int, default=1)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--low", type=int, default=2000)
    ap.add_argument("--high", type=int, default=12000)
    ap.add_argument("--top", type=int, default=25)
    a = ap.parse_args()
    if a.high <= a.low:
        ap.error("--high must be larger than --low")
    n = a.high - a.low
    with tempfile.TemporaryDirectory(prefix="echo-callgrind-") as outdir:
        for kind in a.servers.split(","):
            lo_total, lo = self_costs(run(a.binary, kind, a.conns, a.size, a.low, outdir))
            hi_total, hi = self_costs(run(a.binary, kind, a.conns, a.size, a.high, outdir))
            print(f"### {kind}: {(hi_total - lo_total) / n:,.0f} user-space instructions per message "
                  f"({a.conns} conns x {a.size} B; runs of {a.low} and {a.high} messages)\n")
            print("| instr/msg | function (self cost) |\n| ---: | --- |")
            per = {f: (hi[f] - lo.get(f, 0)) / n for f in hi}
            top = sorted(per.items(), key=lambda x: -x[1])[: a.top]
            for f, v in (fv for fv in top if fv[1] >= 0.5):
                print(f"| {v:,.0f} | `{f[:120]}` |")
            print(flush=True)


if __name__ == "__main__":
    sys.exit(main())
