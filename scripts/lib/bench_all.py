#!/usr/bin/env python3
"""The measuring and summarising half of scripts/bench_all.sh.

Every section of BENCHMARKS.md is produced the same way: paired short runs
(../shared/BENCHMARKING.md, "Pairs, not runs"), the raw per-pair figures
written to docs/bench/pairs/<stamp>-<name>.tsv, then a markdown section
(docs/bench/all/<name>.md) and its rows in machine form
(docs/bench/all/<name>.rows.json), from which `assemble` writes
BENCHMARKS.md and its "Where ringloop does not win" list. Nothing here
holds a measured number: every figure comes from a TSV.

Subcommands (each documented at its function):
  criterion  ringloop-vs-twin pairs of criterion benchmarks
  echo       summarise `benches/echo.rs pairs` TSVs (echo, echo 2 cores)
  bufring    summarise scripts/echo_revs_pair.py TSVs (bufring vs one-shot)
  latency    summarise `benches/latency.rs run --tsv`
  http       summarise scripts/http_bench.sh TSVs
  runs       paired runs of a binary that prints RESULT lines for both
             runtimes (task_memory, sleep_precision)
  idle       idle memory per connection (scripts/idle_memory.py's measure)
  failed     a section that failed: its error, as a section
  assemble   BENCHMARKS.md from the sections

Conventions of a row: `ratio` is ringloop / twin per pair; `better` says
which way is good for ringloop ("lower": times, CPU, bytes, latency;
"higher": throughput). A row's verdict: "no difference measurable" when
the interquartile range of its pair ratios spans 1.0, else "ringloop
ahead" or "ringloop behind". A target (only where issue 16 names one) is
"met", "not met", or "no difference measurable" (the range spans the
target's bound).
"""

import argparse
import csv
import json
import os
import re
import statistics
import subprocess
import sys
import time

# --------------------------------------------------------------------------
# Statistics.


def quartiles(xs):
    """(q1, median, q3) of xs; with one value, that value three times."""
    xs = sorted(xs)
    if not xs:
        return None
    if len(xs) == 1:
        return xs[0], xs[0], xs[0]
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[0], statistics.median(xs), q[2]


def tukey_keep(ratios):
    """Indices of the pairs kept by the same-mode rule: a pair whose ratio
    lies beyond 1.5 IQR of the pair ratios had its two runs in different
    speed modes of this machine (BENCHMARKING.md) and is dropped. Needs 4
    pairs to decide; with fewer every pair is kept."""
    if len(ratios) < 4:
        return list(range(len(ratios)))
    q1, _, q3 = quartiles(ratios)
    lo, hi = q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)
    return [i for i, r in enumerate(ratios) if lo <= r <= hi]


# Fewer kept pairs than this give a median but no verdict: their
# "interquartile range" is one or two points.
MIN_PAIRS = 3


def verdict(q, better, n):
    if q is None:
        return "no pairs kept"
    if n < MIN_PAIRS:
        return f"too few pairs ({n})"
    q1, _, q3 = q
    if q1 <= 1.0 <= q3:
        return "no difference measurable"
    ahead = q3 < 1.0 if better == "lower" else q1 > 1.0
    return "ringloop ahead" if ahead else "ringloop behind"


def target_status(q, target, absolute=None, n=0):
    """target: {"text", "bound", "on": "ratio"|"abs", "better"}.
    Ratio targets compare the pair ratios' range with the bound; absolute
    ones compare ringloop's median figure (`absolute`) with it."""
    if target is None:
        return ""
    if target["on"] == "abs":
        if absolute is None:
            return "no data"
        ok = absolute <= target["bound"] if target["better"] == "lower" else absolute >= target["bound"]
        return "met" if ok else "not met"
    if q is None:
        return "no pairs kept"
    if n < MIN_PAIRS:
        return f"too few pairs ({n})"
    q1, _, q3 = q
    b = target["bound"]
    if q1 <= b <= q3:
        return "no difference measurable"
    if target["better"] == "lower":
        return "met" if q3 < b else "not met"
    return "met" if q1 > b else "not met"


def row(section, name, metric, better, ratios, *, ring=None, twin=None, unit="",
        dropped=0, dropped_why="", target=None, internal=False, note=""):
    """One summary row. ratios: the kept pair ratios; ring/twin: the kept
    pairs' absolute figures (medians are shown beside the ratio)."""
    q = quartiles(ratios)
    ring_med = statistics.median(ring) if ring else None
    return {
        "section": section,
        "name": name,
        "metric": metric,
        "better": better,
        "unit": unit,
        "pairs": len(ratios),
        "dropped": dropped,
        "dropped_why": dropped_why,
        "q1": q and q[0],
        "median": q and q[1],
        "q3": q and q[2],
        "ring": ring_med,
        "twin": statistics.median(twin) if twin else None,
        "verdict": verdict(q, better, len(ratios)),
        "target": target["text"] if target else "",
        "status": target_status(q, target, ring_med, len(ratios)),
        "internal": internal,
        "note": note,
    }


def fmt_num(x):
    if x is None:
        return "—"
    if x != x:  # NaN
        return "NaN"
    a = abs(x)
    if a >= 1000:
        return f"{x:,.0f}"
    if a >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def fmt_abs(x, unit):
    """x in `unit`, times in ns scaled to µs/ms/s so the cell stays short."""
    if x is None or unit != "ns":
        return fmt_num(x) + (f" {unit}" if unit else "")
    for scale, u in ((1e9, "s"), (1e6, "ms"), (1e3, "µs")):
        if abs(x) >= scale:
            return f"{fmt_num(x / scale)} {u}"
    return f"{fmt_num(x)} ns"


def fmt_ratio(r):
    if r["median"] is None:
        return "no pairs"
    return f"{r['median']:.3f} ({r['q1']:.3f}–{r['q3']:.3f})"


def table(rows, twin_label="twin"):
    out = [
        f"| row | metric | ringloop | {twin_label} | ratio ringloop/{twin_label} (IQR) | better | pairs kept (dropped) | verdict | target | met? |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        drop = f"{r['pairs']} ({r['dropped']}{': ' + r['dropped_why'] if r['dropped'] else ''})"
        verdict_cell = r["verdict"] if r["verdict"] != "ringloop behind" else "**ringloop behind**"
        status = r["status"] if r["status"] != "not met" else "**not met**"
        out.append(
            f"| {r['name']} | {r['metric']} | {fmt_abs(r['ring'], r['unit'])} | {fmt_abs(r['twin'], r['unit'])} | "
            f"{fmt_ratio(r)} | {r['better']} | {drop} | {verdict_cell} | {r['target']} | {status} |"
        )
    return "\n".join(out)


def write_section(args, title, intro, rows, twin_label="twin", extra=""):
    text = [f"## {title}", ""]
    text += [l for l in intro]
    text += ["", table(rows, twin_label)]
    if extra:
        text += ["", extra]
    text.append("")
    with open(args.md, "w") as f:
        f.write("\n".join(text))
    with open(args.rows, "w") as f:
        json.dump({"section": args.section, "commit": os.environ.get("BENCH_COMMIT", ""),
                   "rows": rows}, f, indent=1)
    print("\n".join(text))


def read_tsv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def log(msg):
    print(f"[bench_all {time.strftime('%H:%M:%S', time.gmtime())}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# criterion pairs.

# The ringloop/twin criterion ids used when docs/bench/twins.txt is absent:
# (bench target, ringloop id, twin id, what the ratio measures).
BUILTIN_TWINS = [
    ("core", "spawn_join/ringloop", "spawn_join/tokio", "spawn + await 10,000 empty tasks"),
    ("core", "yield_many/ringloop", "yield_many/tokio",
     "100 tasks × 100 yields; tokio's yield_now also polls its I/O driver, ringloop's requeues"),
    ("core", "timers/ringloop", "timers/tokio", "1,000,000 sleeps in [0, 100 ms]"),
    ("combinators", "gather/ringloop", "gather/tokio", "gather 10,000 tasks vs JoinSet"),
    ("combinators", "gather/ringloop", "gather/futures_join_all", "gather 10,000 tasks vs join_all (no tasks)"),
    ("combinators", "timeout_churn_ready/ringloop", "timeout_churn_ready/tokio", "wait_for on a ready future"),
    ("combinators", "timeout_churn_pending_once/ringloop", "timeout_churn_pending_once/tokio",
     "wait_for, timer armed then cancelled"),
    ("sync", "ping_pong/ringloop", "ping_pong/tokio",
     "Rc (!Send) queue vs thread-safe mpsc: what thread safety costs"),
    ("sync", "lock_contention/ringloop", "lock_contention/tokio",
     "Rc Lock vs thread-safe Mutex, yield in the loop: what thread safety costs"),
    ("sync", "semaphore_uncontended/ringloop", "semaphore_uncontended/tokio",
     "Rc Semaphore vs thread-safe Semaphore: what thread safety costs"),
    ("sync", "semaphore_contended/ringloop", "semaphore_contended/tokio",
     "Rc Semaphore vs thread-safe, 100 tasks / 10 permits: what thread safety costs"),
    ("sync", "cross_ping_pong/ringloop", "cross_ping_pong/tokio", "loop↔loop channel on two threads vs mpsc"),
    ("threadsafe", "threadsafe_call/ringloop", "threadsafe_call/tokio",
     "call_soon_threadsafe to a parked loop vs Handle::spawn"),
    ("threadsafe", "threadsafe_wake/ringloop", "threadsafe_wake/tokio", "wake a parked task from a thread vs Notify"),
    ("blocking", "to_thread_round_trip/ringloop", "to_thread_round_trip/tokio", "to_thread vs spawn_blocking"),
    ("file_read", "file_read_cached/ringloop/qd1", "file_read_cached/tokio_pread/qd1",
     "4 KiB cached reads, depth 1, vs spawn_blocking + pread"),
    ("file_read", "file_read_cached/ringloop/qd1", "file_read_cached/tokio_fs/qd1",
     "4 KiB cached reads, depth 1, vs tokio::fs (seek + read: two pool trips)"),
    ("file_read", "file_read_cached/ringloop/qd64", "file_read_cached/tokio_pread/qd64",
     "4 KiB cached reads, depth 64, vs spawn_blocking + pread"),
    ("file_read", "file_read_direct/ringloop/qd1", "file_read_direct/tokio_pread/qd1",
     "4 KiB O_DIRECT reads, depth 1, vs spawn_blocking + pread"),
    ("file_read", "file_read_direct/ringloop/qd64", "file_read_direct/tokio_pread/qd64",
     "4 KiB O_DIRECT reads, depth 64, vs spawn_blocking + pread"),
]


def load_twins(path):
    """docs/bench/twins.txt rows (bench_target, ringloop_id, twin_id,
    description; `#` comments and blank lines ignored), or the built-in
    list when the file is absent."""
    if not path or not os.path.exists(path):
        return BUILTIN_TWINS, "built-in list (docs/bench/twins.txt absent)"
    out = []
    for n, line in enumerate(open(path), 1):
        line = line.rstrip("\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        f = line.split("\t")
        if len(f) < 3:
            sys.exit(f"{path}:{n}: want bench_target<TAB>ringloop_id<TAB>twin_id<TAB>description, got {line!r}")
        out.append((f[0], f[1], f[2], f[3] if len(f) > 3 else ""))
    return out, path


UNITS = {"ps": 1e-3, "ns": 1.0, "µs": 1e3, "us": 1e3, "ms": 1e6, "s": 1e9}


def criterion_once(binary, cid, warmup, measure):
    """One criterion run of exactly `cid`: its point estimate in ns."""
    cmd = [binary, "--bench", "--noplot", "--warm-up-time", str(warmup),
           "--measurement-time", str(measure), "^" + re.escape(cid) + "$"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    for line in p.stdout.splitlines():
        m = re.search(r"time:\s+\[\S+ \S+ (\S+) (\S+) \S+ \S+\]", line)
        if m:
            return float(m.group(1)) * UNITS[m.group(2)]
    raise RuntimeError(f"{cid}: no criterion estimate (exit {p.returncode}): "
                       f"{(p.stdout + p.stderr)[-400:]!r}")


def cmd_criterion(args):
    """Pairs of short criterion runs: for each (target, ringloop id, twin
    id) row, `--pairs` pairs of one run of each, the order flipped every
    other pair; ratio = ringloop ns / twin ns per pair."""
    twins, source = load_twins(args.twins)
    pick = re.compile(args.targets)
    twins = [t for t in twins if pick.search(t[0])]
    bins = dict(kv.split("=", 1) for kv in args.bins)
    per_run = args.warmup + args.measure + 1.0
    log(f"{args.section}: {len(twins)} rows × {args.pairs} pairs × 2 runs ≈ "
        f"{len(twins) * args.pairs * 2 * per_run / 60:.1f} min (from {source})")
    rows, raw = [], []
    for target, rid, tid, desc in twins:
        name = f"{rid} vs {tid}"
        if target not in bins:
            rows.append(row(args.section, name, "time per iteration", "lower", [],
                            note=f"no binary for bench target {target!r}"))
            continue
        got, failures = [], []
        for i in range(args.pairs):
            order = [("ringloop", rid), ("twin", tid)]
            if i % 2:
                order.reverse()
            res = {}
            try:
                for who, cid in order:
                    res[who] = criterion_once(bins[target], cid, args.warmup, args.measure)
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                failures.append(str(e))
                raw.append([target, rid, tid, i + 1, order[0][0], "", "", "", f"failed: {str(e)[:200]}"])
                log(f"{name} pair {i + 1}: FAILED {e}")
                continue
            got.append((i, res["ringloop"], res["twin"]))
            log(f"{name} pair {i + 1}: ringloop {res['ringloop']:.1f} ns, twin {res['twin']:.1f} ns")
            raw.append([target, rid, tid, i + 1, order[0][0], f"{res['ringloop']:.2f}",
                        f"{res['twin']:.2f}", f"{res['ringloop'] / res['twin']:.4f}", "measured"])
        ratios = [r / t for _, r, t in got]
        keep = tukey_keep(ratios)
        kept_pairs = {got[k][0] for k in keep}
        for line in raw:
            if line[0] == target and line[1] == rid and line[2] == tid and line[8] == "measured":
                line[8] = "kept" if line[3] - 1 in kept_pairs else "mode"
        dropped = len(got) - len(keep) + len(failures)
        why = []
        if len(got) - len(keep):
            why.append(f"{len(got) - len(keep)} mode")
        if failures:
            why.append(f"{len(failures)} failed")
        rows.append(row(args.section, name, "time per criterion iteration", "lower",
                        [ratios[k] for k in keep], ring=[got[k][1] for k in keep],
                        twin=[got[k][2] for k in keep], unit="ns", dropped=dropped,
                        dropped_why=", ".join(why), note=desc))
    with open(args.raw, "w") as f:
        f.write("target\tringloop_id\ttwin_id\tpair\tfirst\tringloop_ns\ttwin_ns\tratio\tstatus\n")
        for line in raw:
            f.write("\t".join(str(x) for x in line) + "\n")
    notes = "\n".join(f"- `{r['name']}`: {r['note']}" for r in rows if r["note"])
    write_section(args, args.title, [
        f"- Pairs: {args.pairs} per row, each one criterion run of the ringloop id and one of the twin id "
        f"(`<bench binary> --bench --noplot --warm-up-time {args.warmup} --measurement-time {args.measure} '^ID$'`), "
        "the order flipped every other pair.",
        f"- Rows from {source}.",
        "- Figures: criterion's point estimate per iteration (each bench's whole unit of work, see benches/); "
        "a pair whose ratio lies beyond 1.5 IQR of the row's ratios is dropped as `mode` "
        "(its two runs fell in different speed modes of this machine).",
        f"- Raw pairs: `{args.raw}`.",
    ], rows, extra="What each row measures:\n\n" + notes)
    return 0 if rows else 1


# --------------------------------------------------------------------------
# echo pairs (benches/echo.rs `pairs` TSVs).


def echo_rounds(paths):
    """{(conns, size, round, attempt): {server: record}} of the rows not
    `redone`; the baseline's figures are taken from its candidates' rows."""
    rounds = {}
    for path in paths:
        for r in read_tsv(path):
            if r["status"] == "redone":
                continue
            key = (int(r["conns"]), int(r["size"]), int(r["round"]), int(r["attempt"]))
            d = rounds.setdefault(key, {})
            d[r["candidate"]] = {"msgs": float(r["cand_msgs_s"]), "cpu": float(r["cand_cpu_us_msg"]),
                                 "p99": float(r["cand_p99_us"]), "status": r["status"],
                                 "backend": r["cand_backend"]}
            d.setdefault(r["baseline"], {"msgs": float(r["base_msgs_s"]), "cpu": float(r["base_cpu_us_msg"]),
                                         "p99": float(r["base_p99_us"]), "status": "kept",
                                         "backend": ""})
            d[r["baseline"]]["is_baseline"] = True
    return rounds


def cmd_echo(args):
    """Rows `ring:twin[:label]` from echo pairs TSVs: per (conns, size), the
    per-round ratios of ring's msgs/s and server CPU per message to twin's,
    over the rounds where both were measured and neither pair was dropped
    (`mode`/`load` in the TSV)."""
    rounds = echo_rounds(args.tsv)
    points = sorted({(k[0], k[1]) for k in rounds}, key=lambda p: (p[1], p[0]))
    targets = {}
    for t in args.target or []:
        # conns x size : ring : twin : metric : bound : better : text
        point, ring, twin, metric, bound, better, text = t.split(":", 6)
        c, s = point.split("x")
        targets[(int(c), int(s), ring, twin, metric)] = {"text": text, "bound": float(bound),
                                                         "on": "ratio", "better": better}
    rows = []
    for spec in args.compare:
        ring, twin, *label = spec.split(":")
        label = label[0] if label else f"{ring} vs {twin}"
        for (c, s) in points:
            got, dropped, why = [], 0, {}
            for key, d in sorted(rounds.items()):
                if key[:2] != (c, s):
                    continue
                if ring not in d or twin not in d:
                    continue
                st = [d[ring]["status"], d[twin]["status"]]
                bad = [x for x in st if x != "kept"]
                if bad:
                    dropped += 1
                    why[bad[0]] = why.get(bad[0], 0) + 1
                    continue
                got.append((d[ring], d[twin]))
            why_s = ", ".join(f"{n} {w}" for w, n in why.items())
            name = f"{label}, {c} × {s} B"
            for metric, key, better, unit in (("msgs/s", "msgs", "higher", ""),
                                              ("server CPU per msg", "cpu", "lower", "µs")):
                rows.append(row(args.section, name, metric, better,
                                [a[key] / b[key] for a, b in got],
                                ring=[a[key] for a, _ in got], twin=[b[key] for _, b in got],
                                unit=unit, dropped=dropped, dropped_why=why_s,
                                target=targets.get((c, s, ring, twin, key))))
    intro = [l.replace("\\n", "\n") for l in args.intro]
    intro.append("- Raw pairs: " + ", ".join(f"`{p}`" for p in args.tsv) + ".")
    write_section(args, args.title, intro, rows)
    return 0 if rows else 1


def cmd_bufring(args):
    """scripts/echo_revs_pair.py TSVs: new (bufring) / base (one-shot)."""
    rows = []
    for path in args.tsv:
        recs = read_tsv(path)
        points = sorted({(int(r["conns"]), int(r["size"])) for r in recs})
        for c, s in points:
            rs = [r for r in recs if (int(r["conns"]), int(r["size"])) == (c, s)]
            ratios = [float(r["ratio"]) for r in rs]
            keep = tukey_keep(ratios)
            kept = [rs[k] for k in keep]
            tgt = {"text": "msgs/s not below one-shot (issue 16)", "bound": 1.0, "on": "ratio",
                   "better": "higher"} if (c, s) == (100, 64) else None
            rows.append(row(args.section, f"{args.label}, {c} × {s} B", "msgs/s", "higher",
                            [float(r["ratio"]) for r in kept],
                            ring=[float(r["new_msgs_per_s"]) for r in kept],
                            twin=[float(r["base_msgs_per_s"]) for r in kept],
                            dropped=len(rs) - len(kept), dropped_why="mode" if len(rs) > len(kept) else "",
                            target=tgt, internal=True))
            rows.append(row(args.section, f"{args.label}, {c} × {s} B", "server CPU per msg", "lower",
                            [float(r["cpu_ratio"]) for r in kept],
                            ring=[float(r["new_cpu_us_per_msg"]) for r in kept],
                            twin=[float(r["base_cpu_us_per_msg"]) for r in kept], unit="µs",
                            dropped=len(rs) - len(kept), dropped_why="mode" if len(rs) > len(kept) else "",
                            internal=True))
    intro = [l.replace("\\n", "\n") for l in args.intro]
    intro.append("- Raw pairs: " + ", ".join(f"`{p}`" for p in args.tsv) + ".")
    write_section(args, args.title, intro, rows, twin_label="one-shot")
    return 0 if rows else 1


# --------------------------------------------------------------------------
# latency (benches/latency.rs `run --tsv`).


def cmd_latency(args):
    recs = [r for r in read_tsv(args.tsv)]
    rows = []
    phases = []
    for r in recs:
        if r["phase"] not in phases:
            phases.append(r["phase"])
    for ph in phases:
        rs = [r for r in recs if r["phase"] == ph]
        ok = [r for r in rs if r["status"] == "ok"]
        failed = len(rs) - len(ok)
        metrics = ([("rate", "closed-loop msgs/s", "higher", "")] if ph == "saturated" else
                   [("p50_us", "p50", "lower", "µs"), ("p99_us", "p99", "lower", "µs"),
                    ("p999_us", "p99.9", "lower", "µs"), ("max_us", "max", "lower", "µs")])
        name = "saturated" if ph == "saturated" else f"{ph} of saturated ({float(rs[0]['rate']):,.0f} msgs/s)"
        for key, metric, better, unit in metrics:
            a = [float(r[f"ringloop_{key}"]) for r in ok]
            b = [float(r[f"tokio_{key}"]) for r in ok]
            rows.append(row(args.section, name, metric, better, [x / y for x, y in zip(a, b) if y > 0],
                            ring=a, twin=b, unit=unit, dropped=failed,
                            dropped_why="failed" if failed else ""))
    intro = [l.replace("\\n", "\n") for l in args.intro]
    intro.append(f"- Raw pairs: `{args.tsv}`.")
    write_section(args, args.title, intro, rows, twin_label="tokio")
    return 0 if rows else 1


# --------------------------------------------------------------------------
# HTTP (scripts/http_bench.sh TSVs: one line per side of a pair).


def cmd_http(args):
    rows = []
    for spec in args.tsv:
        path, label, internal = spec.split("=", 2)
        recs = read_tsv(path)
        pairs = {}
        for r in recs:
            key = (int(r["conns"]), int(r["pair"]))
            side = r["side:kind"].split(":", 1)[0]
            att = int(r.get("attempt") or 0)
            d = pairs.setdefault(key, {})
            if side not in d or att >= d[side][0]:
                d[side] = (att, r)
        for c in sorted({k[0] for k in pairs}):
            both = [(d["A"][1], d["B"][1]) for k, d in sorted(pairs.items())
                    if k[0] == c and "A" in d and "B" in d and d["A"][0] == d["B"][0]]
            lost = sum(1 for k, d in pairs.items() if k[0] == c) - len(both)
            quiet = [(x, y) for x, y in both
                     if max(float(x["others_cores"]), float(y["others_cores"])) <= args.max_others]
            load = len(both) - len(quiet)
            both = quiet
            for key, metric, better, unit in (("reqs_per_s", "requests/s", "higher", ""),
                                              ("cpu_us_per_req", "server CPU per request", "lower", "µs"),
                                              ("p99_us", "p99", "lower", "µs")):
                a = [float(x[key]) for x, _ in both]
                b = [float(y[key]) for _, y in both]
                rs = [x / y for x, y in zip(a, b) if y > 0]
                keep = tukey_keep(rs) if key == "reqs_per_s" or not rs else list(range(len(rs)))
                rows.append(row(args.section, f"{label}, {c} conns", metric, better, [rs[k] for k in keep],
                                ring=[a[k] for k in keep], twin=[b[k] for k in keep], unit=unit,
                                dropped=lost + load + len(rs) - len(keep),
                                dropped_why=", ".join(w for w in (
                                    f"{load} load" if load else "",
                                    f"{len(rs) - len(keep)} mode" if len(rs) > len(keep) else "",
                                    f"{lost} unmatched" if lost else "") if w),
                                internal=internal == "internal"))
    intro = [l.replace("\\n", "\n") for l in args.intro]
    write_section(args, args.title, intro, rows)
    return 0 if rows else 1


# --------------------------------------------------------------------------
# Binaries that print RESULT lines for both runtimes in one invocation.


def kv(line):
    return dict(p.split("=", 1) for p in line.split() if "=" in p)


def cmd_runs(args):
    """Runs `--bin` `--pairs` times (each invocation measures ringloop and
    tokio, in the order the binary uses); per invocation, the ratio of
    ringloop's `--field` to tokio's, per `--group-by` value."""
    raw, per = [], {}
    failures = 0
    for i in range(args.pairs):
        p = subprocess.run([args.bin, "--bench"], capture_output=True, text=True, timeout=args.timeout)
        got = {}
        for line in p.stdout.splitlines():
            if line.startswith(f"RESULT {args.tag} ") and "FAILED" not in line:
                d = kv(line)
                got[(d["runtime"], d.get(args.group_by, ""))] = d
        if p.returncode != 0 or not got:
            failures += 1
            log(f"{args.tag} run {i + 1} FAILED (exit {p.returncode}): {(p.stdout + p.stderr)[-300:]!r}")
            continue
        for (rt, grp), d in got.items():
            raw.append([i + 1, rt, grp] + [d.get(f, "") for f in args.field])
        for grp in sorted({g for _, g in got}):
            r, t = got.get(("ringloop", grp)), got.get(("tokio", grp))
            if r and t:
                per.setdefault(grp, []).append((r, t))
        log(f"{args.tag} run {i + 1} done")
    with open(args.raw, "w") as f:
        f.write("\t".join(["run", "runtime", args.group_by or "group"] + args.field) + "\n")
        for line in raw:
            f.write("\t".join(str(x) for x in line) + "\n")
    rows = []
    for grp, pairs in sorted(per.items()):
        for fld in args.field:
            a = [float(r[fld]) for r, _ in pairs]
            b = [float(t[fld]) for _, t in pairs]
            rs = [x / y for x, y in zip(a, b) if y]
            rows.append(row(args.section, f"{args.tag} {grp}".strip(), fld, "lower", rs, ring=a, twin=b,
                            dropped=failures, dropped_why="failed" if failures else ""))
    intro = [l.replace("\\n", "\n") for l in args.intro]
    intro.append(f"- Raw runs: `{args.raw}`.")
    write_section(args, args.title, intro, rows, twin_label="tokio")
    return 0 if rows else 1


# --------------------------------------------------------------------------
# Idle memory per connection.


def cmd_idle(args):
    """Pairs of scripts/idle_memory.py measurements (its `measure`): per
    pair, each server once, order flipped every other pair; ratio of the
    RSS growth per connection to tokio's. The issue's target is absolute:
    ≤ 256 B per idle connection at 10,000 connections (the bufring
    server)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("idle_memory", args.script)
    im = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(im)
    im.raise_nofile(args.conns)
    os.sched_setaffinity(0, {1})
    servers = ["bufring", "one-shot", "tokio"]
    rows, raw = [], []
    for epoll in (False, True):
        backend = "epoll" if epoll else "io_uring"
        ns = argparse.Namespace(conns=args.conns, settle=args.settle, epoll=epoll,
                                echo_server=args.echo_server, echo_bench=args.echo_bench)
        got = {s: [] for s in servers}
        failures = 0
        for i in range(args.pairs):
            order = servers if i % 2 == 0 else list(reversed(servers))
            rec = {}
            try:
                for s in order:
                    rec[s] = im.measure(s, ns)
            except Exception as e:  # noqa: BLE001 - reported as a failed pair
                failures += 1
                log(f"idle {backend} pair {i + 1} FAILED: {e}")
                continue
            for s in servers:
                got[s].append(rec[s]["per_conn"])
                raw.append([backend, i + 1, order[0], s, rec[s]["backend"], rec[s]["before"],
                            rec[s]["after"], f"{rec[s]['per_conn']:.1f}"])
            log(f"idle {backend} pair {i + 1}: " + ", ".join(f"{s} {rec[s]['per_conn']:.0f} B" for s in servers))
        for s in ("bufring", "one-shot"):
            tgt = ({"text": "≤ 256 B per idle connection at 10,000 (issue 16)", "bound": 256.0,
                    "on": "abs", "better": "lower"} if s == "bufring" and args.conns >= 10000 else
                   {"text": "≤ 256 B per idle connection (issue 16; measured at fewer than 10,000: not the issue's point)",
                    "bound": 256.0, "on": "abs", "better": "lower"} if s == "bufring" else None)
            a, b = got[s], got["tokio"]
            rows.append(row(args.section, f"echo_server {s} ({backend}), {args.conns} conns",
                            "RSS growth per idle connection", "lower",
                            [x / y for x, y in zip(a, b) if y > 0], ring=a, twin=b, unit="B",
                            dropped=failures, dropped_why="failed" if failures else "", target=tgt,
                            note="ratio of RSS growths; tokio can be near 0, which makes the ratio large"))
    with open(args.raw, "w") as f:
        f.write("backend\tpair\tfirst\tserver\tserver_backend\trss_before\trss_after\tper_conn_b\n")
        for line in raw:
            f.write("\t".join(str(x) for x in line) + "\n")
    intro = [l.replace("\\n", "\n") for l in args.intro]
    intro.append(f"- Raw pairs: `{args.raw}`.")
    write_section(args, args.title, intro, rows, twin_label="tokio")
    return 0 if rows else 1


# --------------------------------------------------------------------------
# A failed section, and the assembly.


def cmd_failed(args):
    rows = [{"section": args.section, "name": args.title, "metric": "(section failed)", "better": "",
             "unit": "", "pairs": 0, "dropped": 0, "dropped_why": "", "q1": None, "median": None, "q3": None,
             "ring": None, "twin": None, "verdict": "failed", "target": "", "status": "", "internal": False,
             "note": ""}]
    err = open(args.log, errors="replace").read()[-3000:] if os.path.exists(args.log) else "(no log)"
    write_section(args, args.title, [
        f"**FAILED** (exit {args.rc}). Log: `{args.log}`; its end:", "", "```", err.rstrip(), "```"], [])
    with open(args.rows, "w") as f:
        json.dump({"section": args.section, "commit": os.environ.get("BENCH_COMMIT", ""), "rows": rows}, f)
    return 0


def cmd_assemble(args):
    sections = []
    for name in args.sections:
        md = os.path.join(args.dir, f"{name}.md")
        rows_p = os.path.join(args.dir, f"{name}.rows.json")
        if not os.path.exists(md) or not os.path.exists(rows_p):
            sections.append((name, None, None))
            continue
        sections.append((name, open(md).read(), json.load(open(rows_p))))
    commit = os.environ.get("BENCH_COMMIT", "")
    out = [l.replace("\\n", "\n") for l in open(args.header).read().splitlines()]
    stale = [(n, d["commit"]) for n, _, d in sections if d and d.get("commit") != commit]
    missing = [n for n, md, _ in sections if md is None]
    if stale or missing:
        out += ["", "**Not every section is from this commit:**", ""]
        out += [f"- {n}: measured at {c or 'an unknown commit'} (not re-run: ONLY=…)" for n, c in stale]
        out += [f"- {n}: never measured" for n in missing]
    # Where ringloop does not win.
    lose = []
    for n, _, d in sections:
        if not d:
            continue
        for r in d["rows"]:
            worse = r["median"] is not None and (
                r["median"] > 1.0 if r["better"] == "lower" else r["median"] < 1.0)
            no_verdict = r["verdict"] == "no pairs kept" or r["verdict"].startswith("too few")
            if r["verdict"] == "failed" or (r["target"] and r["status"] != "met") \
                    or (worse and not r["internal"]) or (no_verdict and not r["internal"]):
                lose.append(r)
    out += ["", "## Where ringloop does not win", "",
            "Generated from the rows below: every ringloop-vs-twin row whose median pair ratio is on the "
            "wrong side of 1.0 (whether or not the spread makes it measurable), every row left without "
            "a verdict (no pairs kept, or fewer than " + str(MIN_PAIRS) + "), every target not met or "
            "not shown met, and every failed section.", ""]
    if lose:
        out += ["| section | row | metric | ratio ringloop/twin (IQR) | better | verdict | target | met? |",
                "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in lose:
            out.append(f"| {r['section']} | {r['name']} | {r['metric']} | {fmt_ratio(r)} | {r['better']} | "
                       f"{r['verdict']} | {r['target']} | {r['status']} |")
    else:
        out.append("(none)")
    for n, md, _ in sections:
        out += ["", md.rstrip() if md else f"## {n}\n\n(never measured)"]
    # Pages measured by their own scripts (each names its command and
    # commit): linked, never copied, so no number here is from elsewhere.
    elsewhere = [
        ("docs/bench/one_conn.md", "1 connection × 64 B: syscalls and instructions per message vs the raw loop"),
        ("docs/bench/timers_under_load.md", "a per-connection idle timeout reset on every message, vs tokio"),
        ("docs/bench/send_zc.md", "SEND_ZC vs plain send, bulk over loopback (opt-in: it loses here)"),
        ("docs/design/fixed-files.md", "registered fds: measured with perf, not adopted"),
        ("docs/bench/tls.md", "TLS streams vs tokio-rustls"),
        ("docs/bench/kept_one_pass.md", "Kept's one-pass serve, paired against the benchmarked commit"),
    ]
    present = [(p, what) for p, what in elsewhere
               if os.path.exists(os.path.join(os.path.dirname(args.out) or ".", p))]
    if present:
        out += ["", "## Measured elsewhere (not by this script, not at this commit)", ""]
        out += [f"- [{p}]({p}): {what}" for p, what in present]
    with open(args.out, "w") as f:
        f.write("\n".join(out).rstrip() + "\n")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(p):
        p.add_argument("--section", required=True)
        p.add_argument("--title", required=True)
        p.add_argument("--md", required=True)
        p.add_argument("--rows", required=True)
        p.add_argument("--intro", action="append", default=[])

    p = sub.add_parser("criterion")
    common(p)
    p.add_argument("--twins")
    p.add_argument("--targets", default=".")
    p.add_argument("--bins", nargs="+", required=True)
    p.add_argument("--pairs", type=int, default=10)
    p.add_argument("--warmup", type=float, default=0.5)
    p.add_argument("--measure", type=float, default=1.0)
    p.add_argument("--raw", required=True)
    p.set_defaults(fn=cmd_criterion)

    p = sub.add_parser("echo")
    common(p)
    p.add_argument("--tsv", nargs="+", required=True)
    p.add_argument("--compare", nargs="+", required=True)
    p.add_argument("--target", action="append")
    p.set_defaults(fn=cmd_echo)

    p = sub.add_parser("bufring")
    common(p)
    p.add_argument("--tsv", nargs="+", required=True)
    p.add_argument("--label", default="bufring vs one-shot")
    p.set_defaults(fn=cmd_bufring)

    p = sub.add_parser("latency")
    common(p)
    p.add_argument("--tsv", required=True)
    p.set_defaults(fn=cmd_latency)

    p = sub.add_parser("http")
    common(p)
    p.add_argument("--tsv", nargs="+", required=True, help="PATH=LABEL=twin|internal")
    p.add_argument("--max-others", type=float, default=0.15,
                   help="drop a pair during which other processes used more cores (benches/http.rs's rule)")
    p.set_defaults(fn=cmd_http)

    p = sub.add_parser("runs")
    common(p)
    p.add_argument("--bin", required=True)
    p.add_argument("--tag", required=True)
    p.add_argument("--group-by", default="")
    p.add_argument("--field", nargs="+", required=True)
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--timeout", type=float, default=600)
    p.add_argument("--raw", required=True)
    p.set_defaults(fn=cmd_runs)

    p = sub.add_parser("idle")
    common(p)
    p.add_argument("--script", required=True)
    p.add_argument("--echo-server", required=True)
    p.add_argument("--echo-bench", required=True)
    p.add_argument("--conns", type=int, default=10000)
    p.add_argument("--settle", type=float, default=1.0)
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--raw", required=True)
    p.set_defaults(fn=cmd_idle)

    p = sub.add_parser("failed")
    common(p)
    p.add_argument("--log", required=True)
    p.add_argument("--rc", required=True)
    p.set_defaults(fn=cmd_failed)

    p = sub.add_parser("assemble")
    p.add_argument("--dir", required=True)
    p.add_argument("--header", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--sections", nargs="+", required=True)
    p.set_defaults(fn=cmd_assemble)

    args = ap.parse_args()
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
