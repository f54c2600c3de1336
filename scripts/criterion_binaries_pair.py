#!/usr/bin/env python3
"""Paired short runs of one criterion benchmark in two bench binaries (the
same bench built two ways, e.g. without and with a cargo feature), as
../shared/BENCHMARKING.md asks: A B, B A, A B, ... per-pair ratios B/A,
median and interquartile range.

Usage:
  scripts/criterion_binaries_pair.py --base BIN_A --new BIN_B \
      --bench yield_many/ringloop [--bench spawn_join/ringloop ...] \
      [--pairs 10] [--warmup 0.5] [--measure 1.5] [--out FILE.tsv]

Build the binaries with, e.g.:
  cargo bench --bench core --no-run                     # prints BIN_A
  cargo bench --bench core --no-run --features tracing  # prints BIN_B
(copy each elsewhere before building the other if they share a path).

Each run is `BIN --bench <exact name> --warm-up-time W --measurement-time M
--noplot`; the figure kept is criterion's point estimate of the time per
iteration (the middle of `time: [lo mid hi]`).
"""

import argparse
import re
import statistics
import subprocess

UNITS = {"ps": 1e-3, "ns": 1.0, "µs": 1e3, "us": 1e3, "ms": 1e6, "s": 1e9}
TIME = re.compile(r"time:\s+\[\S+ \S+ (\S+) (\S+) \S+ \S+\]")


def run_one(binary, bench, warmup, measure):
    out = subprocess.run(
        [binary, "--bench", f"^{re.escape(bench)}$", "--warm-up-time", str(warmup),
         "--measurement-time", str(measure), "--noplot"],
        capture_output=True, text=True, timeout=600,
    )
    m = TIME.search(out.stdout)
    if out.returncode != 0 or m is None:
        raise RuntimeError(f"{binary} {bench}: no time in\n{out.stdout}\n{out.stderr}")
    return float(m.group(1)) * UNITS[m.group(2)]


def quartiles(xs):
    if len(xs) < 4:
        xs = sorted(xs)
        return xs[0], statistics.median(xs), xs[-1]
    q = statistics.quantiles(xs, n=4)
    return q[0], q[1], q[2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--new", required=True)
    ap.add_argument("--bench", action="append", required=True)
    ap.add_argument("--pairs", type=int, default=10)
    ap.add_argument("--warmup", type=float, default=0.5)
    ap.add_argument("--measure", type=float, default=1.5)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    bins = {"base": a.base, "new": a.new}
    rows = []
    print("| bench | new/base time (IQR) | base ns/iter (median) | new ns/iter (median) | pairs |")
    print("|---|---|---|---|---|")
    for bench in a.bench:
        ratios, base_t, new_t = [], [], []
        for i in range(a.pairs):
            order = ["base", "new"] if i % 2 == 0 else ["new", "base"]
            got = {who: None for who in order}
            for who in order:
                got[who] = run_one(bins[who], bench, a.warmup, a.measure)
            r = got["new"] / got["base"]
            rows.append((bench, i, order[0], got["base"], got["new"], r))
            ratios.append(r)
            base_t.append(got["base"])
            new_t.append(got["new"])
        q1, med, q3 = quartiles(ratios)
        print(
            f"| {bench} | {med:.3f} ({q1:.3f}-{q3:.3f}) | {statistics.median(base_t):,.0f} "
            f"| {statistics.median(new_t):,.0f} | {len(ratios)} |",
            flush=True,
        )
    if a.out:
        with open(a.out, "w") as f:
            f.write("bench\tpair\tfirst\tbase_ns\tnew_ns\tratio\n")
            for r in rows:
                f.write("\t".join(str(x) for x in r) + "\n")


if __name__ == "__main__":
    main()
