#!/usr/bin/env python3
"""How evenly each connection distribution of a `Cores` server spreads a
few connections: runs `examples/echo_server.rs --cores N --distribute MODE`
for every mode, connects CONNS clients (each echoes 8 bytes, checked), stops
the server with Ctrl-C and reads the per-core connection counts it prints.

Usage:
    cargo build --release --example echo_server
    scripts/cores_spread.py [--runs 20] [--conns 16] [--cores 2]
                            [--modes round-robin,shared,reuseport]
                            [--hold] [--server PATH] [--out FILE]

`--hold` keeps every connection open until all CONNS are made (default:
each client connects, echoes and closes before the next connects). The
modes alternate run by run (A B C A B C ...), so a slow spell of the
machine hits them alike. Every run's counts are printed (and written to
--out, a small text file to keep beside BENCHMARKS.md), then per mode: the
share of the busiest core (median, min-max over runs) and how many runs
had every core within 45-55 %. Ports: 127.0.0.1:0 only; every server is
stopped (SIGINT, then SIGKILL after 10 s) before the script ends.
"""

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_once(server, mode, cores, conns, hold):
    """One server process; returns the per-core connection counts."""
    proc = subprocess.Popen(
        [server, "--addr", "127.0.0.1:0", "--cores", str(cores),
         "--distribute", mode, "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        m = re.search(r"listening on (\S+):(\d+)", first)
        if not m:
            raise RuntimeError(f"unexpected first line {first!r}: {proc.stderr.read()}")
        addr = (m.group(1), int(m.group(2)))
        held = []
        for i in range(conns):
            c = socket.create_connection(addr, timeout=10)
            msg = i.to_bytes(8, "little")
            c.sendall(msg)
            got = b""
            while len(got) < 8:
                chunk = c.recv(8 - len(got))
                if not chunk:
                    raise RuntimeError(f"connection {i} closed early")
                got += chunk
            if got != msg:
                raise RuntimeError(f"connection {i}: echoed {got!r}, sent {msg!r}")
            if hold:
                held.append(c)
            else:
                c.close()
        for c in held:
            c.close()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    counts = {}
    for line in out.splitlines():
        m = re.match(r"\s*(\d+)\s+\S+\s+(\d+)\s+\S+%", line)
        if m:
            counts[int(m.group(1))] = int(m.group(2))
    per_core = [counts.get(i, 0) for i in range(cores)]
    if sum(per_core) != conns:
        raise RuntimeError(f"{mode}: counted {per_core}, expected {conns} in all:\n{out}\n{err}")
    return per_core


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--conns", type=int, default=16)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--modes", default="round-robin,shared,reuseport")
    ap.add_argument("--hold", action="store_true")
    ap.add_argument("--server", default=os.path.join(
        os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")),
        "release", "examples", "echo_server"))
    ap.add_argument("--out")
    a = ap.parse_args()
    modes = a.modes.split(",")
    backend = os.environ.get("RINGLOOP_BACKEND", "default")
    lines = [f"# cores_spread.py --runs {a.runs} --conns {a.conns} --cores {a.cores}"
             f"{' --hold' if a.hold else ''} (RINGLOOP_BACKEND={backend}),"
             f" {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}",
             "# run mode connections-per-core"]
    results = {m: [] for m in modes}
    for r in range(a.runs):
        for mode in modes:
            per_core = run_once(a.server, mode, a.cores, a.conns, a.hold)
            results[mode].append(per_core)
            lines.append(f"{r} {mode} {' '.join(map(str, per_core))}")
            print(lines[-1], flush=True)
    lines.append("# mode: busiest core's share, median (min-max); runs with every core in 45-55 %")
    for mode in modes:
        busiest = [100.0 * max(pc) / a.conns for pc in results[mode]]
        fair = sum(all(45.0 <= 100.0 * c / a.conns <= 55.0 for c in pc) for pc in results[mode])
        lines.append(f"# {mode}: {statistics.median(busiest):.1f} % ({min(busiest):.1f}-"
                     f"{max(busiest):.1f} %); {fair}/{len(busiest)} runs")
        print(lines[-1])
    if a.out:
        with open(a.out, "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
