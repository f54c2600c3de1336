#!/usr/bin/env python3
"""Paired echo runs of two server builds (two commits of ringloop, or one
build under two environments, or two server kinds of one build), as
../shared/BENCHMARKING.md asks: A B, B A, A B, ... short runs, per-pair
ratios, median and interquartile range.

Both servers are `benches/echo.rs` binaries (`server <kind> <port-file>`,
pinned to CPU 0); the load generator is the `client` mode of the NEW binary
(pinned to CPU 1), so both sides meet the same client.

Usage:
  scripts/echo_revs_pair.py --base BIN_A --new BIN_B [--kind ringloop]
      [--base-kind KIND] [--new-kind KIND]
      [--base-env K=V ...] [--new-env K=V ...] [--points 1x64,16x64,...]
      [--pairs 10] [--secs 1.5] [--warmup 0.3] [--out FILE.tsv]

Build a binary of a commit with, e.g.:
  git worktree add /tmp/base <rev> && (cd /tmp/base && cargo bench --bench echo --no-run)
and pass the `target/release/deps/echo-*` executable.

--kind names the server kind both runs use; --base-kind / --new-kind
override it for one side, so one binary can pair two kinds, e.g.
  --base BIN --new BIN --base-kind tokio-idle-timeout --new-kind ringloop-idle-timeout

Same-mode rule: a pair whose msgs/s ratio lies beyond 1.5 IQR of the
point's pair ratios is dropped (the machine switched speed modes between
its two runs); the table says how many pairs were kept.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time


def parse_result(text, tag):
    for line in text.splitlines():
        if line.startswith(tag):
            fields = {}
            for tok in line.split()[2:]:
                if "=" in tok:
                    k, v = tok.split("=", 1)
                    fields[k] = v
            return fields
    return None


def run_one(server_bin, env_extra, kind, client_bin, conns, size, secs, warmup):
    port_file = os.path.join(tempfile.gettempdir(), f"echo-pair-{os.getpid()}.port")
    if os.path.exists(port_file):
        os.remove(port_file)
    env = dict(os.environ)
    env.update(env_extra)
    srv = subprocess.Popen(
        [server_bin, "server", kind, port_file],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=env, text=True,
    )
    deadline = time.time() + 10
    while not os.path.exists(port_file):
        if time.time() > deadline or srv.poll() is not None:
            srv.kill()
            raise RuntimeError(f"server did not start: {srv.stderr.read()}")
        time.sleep(0.01)
    port = open(port_file).read().strip()
    cl = subprocess.run(
        [client_bin, "client", f"127.0.0.1:{port}", str(conns), str(size), str(secs),
         "--warmup", str(warmup)],
        capture_output=True, text=True, timeout=secs * 10 + 30,
    )
    out, err = srv.communicate(input="", timeout=30)
    os.remove(port_file)
    c = parse_result(cl.stdout, "RESULT client")
    s = parse_result(out, "RESULT server")
    if c is None or s is None:
        raise RuntimeError(f"no RESULT: client {cl.stdout} {cl.stderr} server {out} {err}")
    msgs = float(c["msgs_per_s"])
    total = float(c.get("total_msgs", c.get("msgs", "0")))
    cpu_us = float(s["user_us"]) + float(s["sys_us"])
    return msgs, (cpu_us / total if total else float("nan"))


def loadavg():
    """The 1, 5 and 15 minute load averages, as /proc/loadavg gives them."""
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def quartiles(xs):
    xs = sorted(xs)
    if len(xs) < 4:
        return xs[0], statistics.median(xs), xs[-1]
    q = statistics.quantiles(xs, n=4)
    return q[0], q[1], q[2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--new", required=True)
    ap.add_argument("--kind", default="ringloop")
    ap.add_argument("--base-kind", default=None, help="the base side's server kind (default: --kind)")
    ap.add_argument("--new-kind", default=None, help="the new side's server kind (default: --kind)")
    ap.add_argument("--base-env", action="append", default=[])
    ap.add_argument("--new-env", action="append", default=[])
    ap.add_argument("--points", default="1x64,16x64,100x64,1000x64,1x4096,16x4096,100x4096,1000x4096")
    ap.add_argument("--pairs", type=int, default=10)
    ap.add_argument("--secs", type=float, default=1.5)
    ap.add_argument("--warmup", type=float, default=0.3)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    envs = {
        "base": dict(kv.split("=", 1) for kv in a.base_env),
        "new": dict(kv.split("=", 1) for kv in a.new_env),
    }
    bins = {"base": a.base, "new": a.new}
    kinds = {"base": a.base_kind or a.kind, "new": a.new_kind or a.kind}
    rows = []
    print(f"load average at start: {loadavg()}", flush=True)
    print("| conns | size | new/base msgs/s (IQR) | new/base CPU per msg (IQR) | pairs kept/run | base msgs/s | new msgs/s |")
    print("|---|---|---|---|---|---|---|")
    for point in a.points.split(","):
        conns, size = (int(x) for x in point.split("x"))
        ratios, cpu_ratios, base_m, new_m = [], [], [], []
        for i in range(a.pairs):
            order = ["base", "new"] if i % 2 == 0 else ["new", "base"]
            got = {}
            for who in order:
                got[who] = run_one(bins[who], envs[who], kinds[who], a.new, conns, size, a.secs, a.warmup)
            r = got["new"][0] / got["base"][0]
            cr = got["new"][1] / got["base"][1]
            rows.append((conns, size, i, order[0], *got["base"], *got["new"], r, cr))
            ratios.append(r)
            cpu_ratios.append(cr)
            base_m.append(got["base"][0])
            new_m.append(got["new"][0])
        q1, med, q3 = quartiles(ratios)
        iqr = q3 - q1
        kept = [r for r in ratios if q1 - 1.5 * iqr <= r <= q3 + 1.5 * iqr]
        q1k, medk, q3k = quartiles(kept)
        c1, cm, c3 = quartiles(cpu_ratios)
        print(
            f"| {conns} | {size} | {medk:.3f} ({q1k:.3f}-{q3k:.3f}) | {cm:.3f} ({c1:.3f}-{c3:.3f}) "
            f"| {len(kept)}/{len(ratios)} | {statistics.median(base_m):,.0f} | {statistics.median(new_m):,.0f} |",
            flush=True,
        )
    print(f"load average at end: {loadavg()}", flush=True)
    if a.out:
        with open(a.out, "w") as f:
            f.write("conns\tsize\tpair\tfirst\tbase_msgs_per_s\tbase_cpu_us_per_msg\tnew_msgs_per_s\tnew_cpu_us_per_msg\tratio\tcpu_ratio\n")
            for row in rows:
                f.write("\t".join(f"{x:.4f}" if isinstance(x, float) else str(x) for x in row) + "\n")


if __name__ == "__main__":
    sys.exit(main())
