#!/usr/bin/env python3
"""Memory per idle connection of an echo server: RSS growth per connection
after N connections that each made one round trip and then stay open, idle.

For each server (in alternating order, ROUNDS times):
  1. start it (pinned to CPU 0), wait until it listens;
  2. read its VmRSS from /proc/<pid>/status (the baseline: no connection);
  3. open N connections from this process (pinned to CPU 1), each sending
     64 bytes and reading the 64 echoed bytes back (checked), then left
     open and idle;
  4. wait SETTLE seconds, read VmRSS again;
  5. report (after - before) / N in bytes, and VmHWM.
Kernel memory (socket buffers, io_uring requests) is not in VmRSS and is
not counted: this is the server process's own memory.

Servers:
  bufring   examples/echo_server (default: chunks from the loop's shared
            buffer group, `recv_stream`)
  one-shot  the same binary with ECHO_READS=one-shot (a 16 KiB buffer per
            connection, `read`)
  tokio     the tokio current_thread twin of benches/echo.rs
            (`echo-* server tokio <port-file>`), if --echo-bench names it
Each also on the epoll backend with --epoll (RINGLOOP_BACKEND=epoll).

Usage:
  cargo build --release --example echo_server
  cargo bench --bench echo --no-run   # for the tokio twin (optional)
  scripts/idle_memory.py [--conns 10000] [--rounds 3] [--settle 1.0]
      [--servers bufring,one-shot,tokio] [--epoll]
      [--echo-server target/release/examples/echo_server]
      [--echo-bench target/release/deps/echo-HASH] [--out FILE.md]
The file descriptor limit (RLIMIT_NOFILE) is raised to its hard limit for
this process and the servers; N must stay below it.
"""

import argparse
import glob
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{key} not in /proc/{pid}/status")


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and want + 64 > hard:
        sys.exit(f"--conns {want} needs more fds than the hard limit {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def start_example(exe, env):
    p = subprocess.Popen(
        ["taskset", "-c", "0", exe, "--addr", "127.0.0.1:0", "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    line = p.stdout.readline()
    if "listening on" not in line:
        p.kill()
        raise RuntimeError(f"echo_server did not start: {line!r} {p.stderr.read()!r}")
    addr = line.split("listening on ")[1].split()[0]
    host, port = addr.rsplit(":", 1)
    backend = line.rsplit("(", 1)[1].split()[0]
    return p, (host, int(port)), backend


def start_bench(exe, kind, env):
    port_file = tempfile.mktemp(prefix="idle-memory-", suffix=".port")
    p = subprocess.Popen(
        [exe, "server", kind, port_file],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    deadline = time.time() + 10
    while time.time() < deadline:
        if os.path.exists(port_file) and os.path.getsize(port_file) > 0:
            time.sleep(0.05)
            with open(port_file) as f:
                port = int(f.read().strip())
            os.unlink(port_file)
            return p, ("127.0.0.1", port), "epoll"
        if p.poll() is not None:
            break
        time.sleep(0.02)
    p.kill()
    raise RuntimeError(f"bench server {kind} did not start: {p.stderr.read()!r}")


def open_idle(addr, n):
    """n connections, one 64-byte round trip each (checked), left open."""
    conns = []
    for i in range(n):
        s = socket.create_connection(addr)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        msg = (i.to_bytes(8, "little") * 8)[:64]
        s.sendall(msg)
        got = b""
        while len(got) < len(msg):
            part = s.recv(len(msg) - len(got))
            if not part:
                raise RuntimeError(f"connection {i}: closed after {len(got)} bytes")
            got += part
        if got != msg:
            raise RuntimeError(f"connection {i}: echoed bytes differ")
        conns.append(s)
    return conns


def measure(server, args):
    env = dict(os.environ)
    if args.epoll:
        env["RINGLOOP_BACKEND"] = "epoll"
    if server == "bufring":
        env.pop("ECHO_READS", None)
        p, addr, backend = start_example(args.echo_server, env)
    elif server == "one-shot":
        env["ECHO_READS"] = "one-shot"
        p, addr, backend = start_example(args.echo_server, env)
    elif server == "tokio":
        p, addr, backend = start_bench(args.echo_bench, "tokio", env)
    else:
        raise RuntimeError(f"unknown server {server}")
    conns = []
    try:
        time.sleep(0.2)
        before = status(p.pid, "VmRSS")
        conns = open_idle(addr, args.conns)
        time.sleep(args.settle)
        after = status(p.pid, "VmRSS")
        hwm = status(p.pid, "VmHWM")
        if p.poll() is not None:
            raise RuntimeError(f"{server} exited: {p.stderr.read()!r}")
        return {
            "server": server,
            "backend": backend,
            "before": before,
            "after": after,
            "hwm": hwm,
            "per_conn": (after - before) / args.conns,
        }
    finally:
        for s in conns:
            s.close()
        p.kill()
        p.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--conns", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--settle", type=float, default=1.0)
    ap.add_argument("--servers", default="bufring,one-shot,tokio")
    ap.add_argument("--epoll", action="store_true")
    ap.add_argument(
        "--echo-server", default=os.path.join(ROOT, "target/release/examples/echo_server")
    )
    ap.add_argument("--echo-bench", default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    servers = args.servers.split(",")
    if "tokio" in servers and args.echo_bench is None:
        found = sorted(
            (f for f in glob.glob(os.path.join(ROOT, "target/release/deps/echo-*"))
             if os.access(f, os.X_OK) and not f.endswith(".d")),
            key=os.path.getmtime,
        )
        if found:
            args.echo_bench = found[-1]
        else:
            print("no benches/echo binary (cargo bench --bench echo --no-run): skipping tokio")
            servers.remove("tokio")
    raise_nofile(args.conns)
    os.sched_setaffinity(0, {1})
    results = {s: [] for s in servers}
    for r in range(args.rounds):
        order = servers if r % 2 == 0 else list(reversed(servers))
        for s in order:
            m = measure(s, args)
            results[s].append(m)
            print(
                f"round {r + 1} {s:9} ({m['backend']}): {m['before'] / 1024:.0f} KiB -> "
                f"{m['after'] / 1024:.0f} KiB, {m['per_conn']:.0f} B per connection "
                f"(VmHWM {m['hwm'] / 1024:.0f} KiB)",
                flush=True,
            )
    lines = [
        f"RSS growth per idle connection, {args.conns} connections each after one "
        f"64 B round trip ({args.rounds} rounds; median, min–max):",
        "",
        "| server | backend | bytes per connection | min–max | RSS before → after (KiB, median) |",
        "|---|---|---:|---|---|",
    ]
    for s in servers:
        per = [m["per_conn"] for m in results[s]]
        before = statistics.median(m["before"] for m in results[s]) / 1024
        after = statistics.median(m["after"] for m in results[s]) / 1024
        lines.append(
            f"| {s} | {results[s][0]['backend']} | {statistics.median(per):.0f} | "
            f"{min(per):.0f}–{max(per):.0f} | {before:.0f} → {after:.0f} |"
        )
    text = "\n".join(lines)
    print()
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
