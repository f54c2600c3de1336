//! Paired runs (the `pairs` mode of `benches/echo.rs`), as
//! `shared/BENCHMARKING.md` asks: short runs of each candidate server back
//! to back with the baseline, the order flipped every other round, quoted
//! as the median of the per-pair ratios with its interquartile range.
//!
//! A round runs, at one (connections, size) point, each server once, every
//! run a fresh server and load generator process (`measure`, as the other
//! modes). With the default candidates `ringloop-epoll,ringloop-io_uring`
//! and baseline `tokio`, odd rounds run `ringloop-epoll tokio
//! ringloop-io_uring` and even rounds the reverse, so each candidate runs
//! right before tokio in half of its pairs and right after it in the other
//! half, and tokio's run is shared by both pairs of a round. (With more
//! candidates, the first half runs before the baseline and the rest after.)
//!
//! Two things drop a pair, and both are counted and printed:
//!
//! - **Load.** Around each run the mode sums the CPU time (`/proc/<pid>/stat`)
//!   of every user-space process but itself and its own server and load
//!   generator: other processes' work during the run, in cores. (The
//!   machine's busy time in `/proc/stat` minus our processes' `getrusage`
//!   was tried first: it is biased by up to −0.7 cores, as loopback softirq
//!   and tick sampling are counted differently on the two sides.) A round where that exceeds
//!   `--max-foreign` (default 0.10 cores) in any run is measured again, up to
//!   `--retries` times (default 5), each time once the machine is quiet
//!   again (others below `--max-foreign` in three 2-second samples in a
//!   row, waiting at most `--quiet-wait` s, default 300); a round still disturbed then is kept
//!   in the raw file as `load` and left out of the ratios. Disturbed
//!   attempts are kept in the raw file too, as `redone`.
//! - **Mode.** This machine switches between a fast and a slow mode
//!   (BENCHMARKING.md: 190k vs 140k msgs/s for one echo server, 1.36×), and a
//!   ratio of a fast run to a slow one says nothing about the servers. The
//!   same-mode rule: at each point, each server's msgs/s over its runs is
//!   sorted, and split into a slow and a fast cluster at the largest gap
//!   between consecutive values, when that gap is at least `--mode-gap`
//!   (default 12%; the two modes are 36% apart, the runs within one mode a
//!   few % apart). A pair is same-mode when both servers split and both runs
//!   are in the same cluster (slow/slow or fast/fast), or when neither
//!   splits, or when one splits and its run is in its larger cluster (on a
//!   tie: the fast one) — the other server's runs, all alike, are then taken
//!   to be in that mode. The other pairs are dropped as `mode`. Each
//!   server's cluster is decided from its own figures only, so a server
//!   that is simply slower than the other is never dropped for it.
//!   The median ratio over all measured pairs (same-mode or not) is printed
//!   beside the same-mode one.
//!
//! A candidate may be the baseline itself (`--candidates tokio --baseline
//! tokio`): an A/A comparison, whose spread is this machine's noise floor
//! for a paired ratio.
//!
//! `--tsv FILE` writes one line per pair with both runs' absolute figures
//! (the raw numbers BENCHMARKING.md wants kept in the repository).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use super::{
    Measure, Point, Trace, fmt_num, loadavg, measure, median, opt, opt_list, size_label, write_out,
};

/// Steal time and total time from `/proc/stat`'s first line, in clock
/// ticks.
fn steal_and_total() -> Result<(u64, u64), String> {
    let text = std::fs::read_to_string("/proc/stat").map_err(|e| format!("/proc/stat: {e}"))?;
    let f: Vec<u64> = text
        .lines()
        .next()
        .filter(|l| l.starts_with("cpu "))
        .ok_or("/proc/stat has no cpu line")?
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    if f.len() < 8 {
        return Err(format!("/proc/stat cpu line too short: {f:?}"));
    }
    // user nice system idle iowait irq softirq steal [guest guest_nice]
    Ok((f[7], f[..8].iter().sum()))
}

/// CPU time (user + system, clock ticks) of every user-space process but
/// this one and its children (the servers and load generators it runs),
/// each with what it reaped from its own children (`cutime`/`cstime`: a
/// compiler that `cargo` waited for). Kernel threads are left out: the
/// softirq work of our own loopback traffic runs in them too.
fn others_ticks() -> HashMap<u32, u64> {
    let me = std::process::id();
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // After "pid (comm) ": state ppid pgrp session tty_nr tpgid flags
        // minflt cminflt majflt cmajflt utime stime cutime cstime …
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let num = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
        let ppid = num(1) as u32;
        if pid == me || ppid == me || pid == 2 || ppid == 2 {
            continue;
        }
        out.insert(pid, num(11) + num(12) + num(13) + num(14));
    }
    out
}

/// Cores the other processes used between two `others_ticks` snapshots
/// `secs` apart (a process born in between counts from 0).
fn others_cores(before: &HashMap<u32, u64>, after: &HashMap<u32, u64>, secs: f64) -> f64 {
    let ticks: u64 = after
        .iter()
        .map(|(pid, &t)| t.saturating_sub(before.get(pid).copied().unwrap_or(0)))
        .sum();
    ticks as f64 / clock_ticks() / secs.max(1e-9)
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 { hz as f64 } else { 100.0 }
}

/// One server's run inside a round.
struct Run {
    m: Measure,
    backend: String,
    /// Other processes' CPU use during the run, in cores.
    foreign: f64,
    /// Steal time during the run, as a share of the machine's time.
    steal: f64,
}

/// Measures `server` once and what else ran meanwhile.
fn run_once(exe: &Path, server: &str, p: &Point) -> Result<Run, String> {
    let (steal0, total0) = steal_and_total()?;
    let others0 = others_ticks();
    let t0 = Instant::now();
    let m = measure(exe, server, p, Trace::None)?;
    let wall = t0.elapsed().as_secs_f64();
    let others1 = others_ticks();
    let (steal1, total1) = steal_and_total()?;
    Ok(Run {
        backend: m
            .server
            .get("backend")
            .cloned()
            .unwrap_or_else(|| "unknown".into()),
        foreign: others_cores(&others0, &others1, wall),
        steal: (steal1 - steal0) as f64 / (total1 - total0).max(1) as f64,
        m,
    })
}

/// A round's servers in the order they run, as slots: candidate `i` is
/// slot `i`, the baseline slot `k` (k candidates). Candidates are split
/// around the baseline; even rounds run in reverse. (Slots, not names: a
/// candidate may be the baseline itself, an A/A comparison.)
fn round_order(k: usize, round: usize) -> Vec<usize> {
    let half = k.div_ceil(2);
    let mut order: Vec<usize> = (0..half).collect();
    order.push(k);
    order.extend(half..k);
    if round % 2 == 0 {
        order.reverse();
    }
    order
}

/// The name of slot `slot`.
fn slot_name(st: &Settings, slot: usize) -> &str {
    st.candidates.get(slot).unwrap_or(&st.baseline)
}

/// What became of a round (and so of its pairs).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Status {
    Kept,
    /// Dropped: the two runs of the pair were in different modes.
    Mode,
    /// Dropped: other processes used the CPUs, and retries did not help.
    Load,
    /// Disturbed by other processes; the round was measured again.
    Redone,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Status::Kept => "kept",
            Status::Mode => "mode",
            Status::Load => "load",
            Status::Redone => "redone",
        }
    }
}

/// One attempt at a round: each slot's run (`None`: it failed).
struct Round {
    round: usize,
    attempt: usize,
    /// The slots in the order they ran.
    order: Vec<usize>,
    runs: Vec<Option<Run>>,
    load1: String,
    status: Status,
}

impl Round {
    fn run(&self, slot: usize) -> Option<&Run> {
        self.runs.get(slot).and_then(Option::as_ref)
    }
    fn foreign(&self) -> f64 {
        self.runs
            .iter()
            .flatten()
            .map(|r| r.foreign)
            .fold(0.0, f64::max)
    }
    fn steal(&self) -> f64 {
        self.runs
            .iter()
            .flatten()
            .map(|r| r.steal)
            .fold(0.0, f64::max)
    }
}

/// A server's mode split at one point: the msgs/s at and above which a run
/// is "fast", and whether the fast cluster is the larger one.
#[derive(Clone, Copy)]
struct Split {
    fast_from: f64,
    fast_is_majority: bool,
}

/// Splits `xs` at the largest relative gap between consecutive sorted
/// values, when it is at least `gap`.
fn mode_split(xs: &[f64], gap: f64) -> Option<Split> {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let (i, ratio) = v
        .windows(2)
        .enumerate()
        .map(|(i, w)| (i + 1, w[1] / w[0].max(1e-9)))
        .max_by(|a, b| a.1.total_cmp(&b.1))?;
    (ratio >= 1.0 + gap).then(|| Split {
        fast_from: v[i],
        fast_is_majority: v.len() - i >= i,
    })
}

/// "fast", "slow", or "one" (the server's runs at this point do not split).
fn mode_of(split: Option<Split>, x: f64) -> &'static str {
    match split {
        None => "one",
        Some(s) if x >= s.fast_from => "fast",
        Some(_) => "slow",
    }
}

/// The same-mode rule of the module docs.
fn same_mode(a: Option<Split>, xa: f64, b: Option<Split>, xb: f64) -> bool {
    let in_majority = |s: Split, x: f64| (x >= s.fast_from) == s.fast_is_majority;
    match (a, b) {
        (None, None) => true,
        (Some(s), None) => in_majority(s, xa),
        (None, Some(s)) => in_majority(s, xb),
        (Some(_), Some(_)) => mode_of(a, xa) == mode_of(b, xb),
    }
}

/// Linear-interpolated quantile (`q` in 0..=1) of `xs`.
fn quantile(xs: &[f64], q: f64) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    let pos = q * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

/// One candidate's pairs at one point.
#[derive(Default)]
struct Summary {
    conns: usize,
    size: usize,
    candidate: String,
    backend: String,
    /// Same-mode pairs: (candidate, baseline) msgs/s and CPU µs per message.
    kept: Vec<[(f64, f64); 2]>,
    /// Throughput ratio of every measured pair, same-mode or not.
    all_tput: Vec<f64>,
    dropped_mode: usize,
    dropped_load: usize,
    failed: usize,
}

/// "0.987 (0.975–0.994)": median (interquartile range).
fn ratio_cell(xs: &[f64]) -> String {
    if xs.is_empty() {
        return "—".to_owned();
    }
    format!(
        "{:.3} ({:.3}–{:.3})",
        median(xs),
        quantile(xs, 0.25),
        quantile(xs, 0.75)
    )
}

/// Where the interquartile range of candidate/baseline msgs/s lies
/// against the ±3% band.
fn tput_verdict(xs: &[f64]) -> &'static str {
    let (q1, q3) = (quantile(xs, 0.25), quantile(xs, 0.75));
    if xs.is_empty() {
        "—"
    } else if q1 > 1.03 {
        "ahead by > 3%"
    } else if q1 >= 0.97 {
        "within 3% (or ahead)"
    } else if q3 < 0.97 {
        "**behind by > 3%**"
    } else {
        "not settled (IQR spans 0.97)"
    }
}

/// The same for CPU per message (lower is better).
fn cpu_verdict(xs: &[f64]) -> &'static str {
    let (q1, q3) = (quantile(xs, 0.25), quantile(xs, 0.75));
    if xs.is_empty() {
        "—"
    } else if q3 < 0.97 {
        "cheaper by > 3%"
    } else if q3 <= 1.03 {
        "within 3% (or cheaper)"
    } else if q1 > 1.03 {
        "**costs > 3% more**"
    } else {
        "not settled (IQR spans 1.03)"
    }
}

const TSV_HEADER: &str = "conns\tsize\tround\tattempt\torder\tcandidate\tcand_backend\tbaseline\t\
cand_msgs_s\tbase_msgs_s\ttput_ratio\tcand_cpu_us_msg\tbase_cpu_us_msg\tcpu_ratio\t\
cand_p50_us\tbase_p50_us\tcand_p99_us\tbase_p99_us\tcand_mode\tbase_mode\t\
foreign_cores\tsteal_pct\tload1\tstatus";

struct Settings {
    candidates: Vec<String>,
    baseline: String,
    pairs: usize,
    max_foreign: f64,
    retries: usize,
    /// Seconds to wait for quiet before measuring a disturbed round again.
    quiet_wait: f64,
    mode_gap: f64,
}

/// Waits (up to `--quiet-wait` s) until other processes used at most
/// `--max-foreign` cores in each of three 2-second samples in a row
/// (nothing of ours runs then): their load comes in bursts.
fn wait_quiet(st: &Settings) {
    let t0 = Instant::now();
    let mut quiet = 0;
    while quiet < 3 && t0.elapsed().as_secs_f64() < st.quiet_wait {
        let a = others_ticks();
        std::thread::sleep(Duration::from_secs(2));
        let busy = others_cores(&a, &others_ticks(), 2.0);
        quiet = if busy <= st.max_foreign { quiet + 1 } else { 0 };
    }
    eprintln!(
        "[echo pairs] {} after waiting {:.0} s",
        if quiet >= 3 { "quiet" } else { "still busy" },
        t0.elapsed().as_secs_f64()
    );
}

/// Runs the rounds of one point, retrying disturbed ones.
fn point_rounds(exe: &Path, p: &Point, st: &Settings, failures: &mut Vec<String>) -> Vec<Round> {
    let mut rounds = Vec::new();
    for round in 1..=st.pairs {
        let order = round_order(st.candidates.len(), round);
        for attempt in 1..=st.retries + 1 {
            let load1 = loadavg();
            let mut runs: Vec<Option<Run>> = (0..order.len()).map(|_| None).collect();
            for &slot in &order {
                let server = slot_name(st, slot);
                match run_once(exe, server, p) {
                    Ok(r) => {
                        eprintln!(
                            "[echo pairs] {} conns × {} B round {round}/{} {server:>17} ({}): \
                             {:>9.0} msgs/s, server CPU {:.2} µs/msg, others {:.2} cores, \
                             steal {:.1}%",
                            p.conns,
                            p.size,
                            st.pairs,
                            r.backend,
                            r.m.msgs_per_s,
                            r.m.cpu_us_per_msg,
                            r.foreign,
                            100.0 * r.steal
                        );
                        runs[slot] = Some(r);
                    }
                    Err(e) => {
                        eprintln!(
                            "[echo pairs] {} conns × {} B round {round} {server}: FAILED: {e}",
                            p.conns, p.size
                        );
                        failures.push(format!(
                            "{} conns × {} B, round {round}, {server}: {e}",
                            p.conns, p.size
                        ));
                    }
                }
            }
            let mut r = Round {
                round,
                attempt,
                order: order.clone(),
                runs,
                load1,
                status: Status::Kept,
            };
            let disturbed = r.foreign() > st.max_foreign;
            if disturbed && attempt <= st.retries {
                eprintln!(
                    "[echo pairs] round {round}: other processes used {:.2} cores (> {}): \
                     measuring it again once they use less (waiting up to {} s)",
                    r.foreign(),
                    st.max_foreign,
                    st.quiet_wait
                );
                r.status = Status::Redone;
                rounds.push(r);
                wait_quiet(st);
                continue;
            }
            if disturbed {
                r.status = Status::Load;
            }
            rounds.push(r);
            break;
        }
    }
    rounds
}

/// Classifies the pairs of one point, appends them to `tsv` and sums them
/// up per candidate.
fn summarize(p: &Point, st: &Settings, rounds: &[Round], tsv: &mut String) -> Vec<Summary> {
    // Each server's mode split, from the rounds not dropped for load.
    let counted = || rounds.iter().filter(|r| r.status == Status::Kept);
    let split_of = |slot: usize| {
        let xs: Vec<f64> = counted()
            .filter_map(|r| r.run(slot).map(|x| x.m.msgs_per_s))
            .collect();
        mode_split(&xs, st.mode_gap)
    };
    let base = st.candidates.len();
    let base_split = split_of(base);
    let mut out = Vec::new();
    for (slot, cand) in st.candidates.iter().enumerate() {
        let cand_split = split_of(slot);
        let mut s = Summary {
            conns: p.conns,
            size: p.size,
            candidate: cand.clone(),
            ..Summary::default()
        };
        for r in rounds {
            let (Some(c), Some(b)) = (r.run(slot), r.run(base)) else {
                if r.status != Status::Redone {
                    s.failed += 1;
                }
                continue;
            };
            s.backend.clone_from(&c.backend);
            let (xc, xb) = (c.m.msgs_per_s, b.m.msgs_per_s);
            let status = match r.status {
                Status::Kept if !same_mode(cand_split, xc, base_split, xb) => Status::Mode,
                other => other,
            };
            match status {
                Status::Kept => s
                    .kept
                    .push([(xc, xb), (c.m.cpu_us_per_msg, b.m.cpu_us_per_msg)]),
                Status::Mode => s.dropped_mode += 1,
                Status::Load => s.dropped_load += 1,
                Status::Redone => {}
            }
            if matches!(status, Status::Kept | Status::Mode) {
                s.all_tput.push(xc / xb);
            }
            let order: Vec<&str> = r.order.iter().map(|&i| slot_name(st, i)).collect();
            let order = order.join(">");
            let _ = writeln!(
                tsv,
                "{}\t{}\t{}\t{}\t{order}\t{cand}\t{}\t{}\t{xc:.1}\t{xb:.1}\t{:.4}\t{:.3}\t{:.3}\t\
                 {:.4}\t{:.2}\t{:.2}\t{:.2}\t{:.2}\t{}\t{}\t{:.3}\t{:.2}\t{}\t{}",
                p.conns,
                p.size,
                r.round,
                r.attempt,
                c.backend,
                st.baseline,
                xc / xb,
                c.m.cpu_us_per_msg,
                b.m.cpu_us_per_msg,
                c.m.cpu_us_per_msg / b.m.cpu_us_per_msg,
                c.m.p50_us,
                b.m.p50_us,
                c.m.p99_us,
                b.m.p99_us,
                mode_of(cand_split, xc),
                mode_of(base_split, xb),
                r.foreign(),
                100.0 * r.steal(),
                r.load1,
                status.name()
            );
        }
        out.push(s);
    }
    out
}

fn table(st: &Settings, sums: &[Summary], secs: f64, warmup: f64) -> String {
    let mut s = String::new();
    let w = &mut s;
    let _ = writeln!(
        w,
        "Paired runs: at each point, {} rounds; a round runs each server once \
         ({secs} s measured after {warmup} s of warmup, a fresh server and load generator each), \
         in the order `{}`, reversed every other round. A pair = a candidate's run and the \
         {} run of the same round; ratio = candidate / {}, computed per pair. Cells: median of \
         the same-mode pairs (interquartile range). Pairs dropped: `mode` (the two runs in \
         different modes of the machine, by the same-mode rule below), `load` (other processes \
         used more than {} cores during the round, still after {} retries). `all pairs`: the \
         median msgs/s ratio over every measured pair, same-mode or not. The verdict places the \
         interquartile range against the ±3% band: `within 3%` only when the whole range is \
         inside it.\n",
        st.pairs,
        round_order(st.candidates.len(), 1)
            .into_iter()
            .map(|i| slot_name(st, i))
            .collect::<Vec<_>>()
            .join(" → "),
        st.baseline,
        st.baseline,
        st.max_foreign,
        st.retries
    );
    let _ = writeln!(
        w,
        "| conns | size | server | backend | msgs/s | {b} msgs/s | msgs/s ratio | CPU µs/msg | \
         {b} CPU µs/msg | CPU/msg ratio | pairs kept | dropped (mode / load / failed) | \
         all pairs | msgs/s verdict | CPU verdict |",
        b = st.baseline
    );
    let _ = writeln!(
        w,
        "| ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: \
         | --- | --- |"
    );
    for x in sums {
        let cand_t: Vec<f64> = x.kept.iter().map(|k| k[0].0).collect();
        let base_t: Vec<f64> = x.kept.iter().map(|k| k[0].1).collect();
        let cand_c: Vec<f64> = x.kept.iter().map(|k| k[1].0).collect();
        let base_c: Vec<f64> = x.kept.iter().map(|k| k[1].1).collect();
        let tput: Vec<f64> = x.kept.iter().map(|k| k[0].0 / k[0].1).collect();
        let cpu: Vec<f64> = x.kept.iter().map(|k| k[1].0 / k[1].1).collect();
        let med = |v: &[f64]| {
            if v.is_empty() {
                "—".to_owned()
            } else {
                fmt_num(median(v))
            }
        };
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} / {} / {} | {} | {} | {} |",
            x.conns,
            size_label(x.size),
            x.candidate,
            if x.backend.is_empty() {
                "?"
            } else {
                &x.backend
            },
            med(&cand_t),
            med(&base_t),
            ratio_cell(&tput),
            med(&cand_c),
            med(&base_c),
            ratio_cell(&cpu),
            x.kept.len(),
            x.dropped_mode,
            x.dropped_load,
            x.failed,
            if x.all_tput.is_empty() {
                "—".to_owned()
            } else {
                format!("{:.3}", median(&x.all_tput))
            },
            tput_verdict(&tput),
            cpu_verdict(&cpu)
        );
    }
    let _ = writeln!(
        w,
        "\nSame-mode rule: at each point each server's msgs/s over its rounds is split into a \
         slow and a fast cluster at the largest gap between consecutive sorted values, if that \
         gap is ≥ {:.0}% (the machine's two modes are ~36% apart). A pair is kept when both \
         servers split and both runs are in the same cluster, when neither splits, or when one \
         splits and its run is in its larger cluster. {} is `epoll` for every row: tokio's \
         driver is mio on epoll.",
        100.0 * st.mode_gap,
        st.baseline
    );
    s
}

pub(super) fn main(args: &[String]) -> Result<bool, String> {
    let quick = args.iter().any(|a| a == "--quick");
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let list = |name: &str, default: &str| -> Result<Vec<String>, String> {
        Ok(opt(args, name, default.to_owned())?
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect())
    };
    let st = Settings {
        candidates: list("--candidates", "ringloop-epoll,ringloop-io_uring")?,
        baseline: opt(args, "--baseline", "tokio".to_owned())?,
        pairs: opt(args, "--pairs", if quick { 2 } else { 10 })?,
        max_foreign: opt(args, "--max-foreign", 0.10)?,
        retries: opt(args, "--retries", if quick { 0 } else { 5 })?,
        quiet_wait: opt(args, "--quiet-wait", 300.0)?,
        mode_gap: opt(args, "--mode-gap", 0.12)?,
    };
    let secs: f64 = opt(args, "--secs", if quick { 0.3 } else { 1.5 })?;
    let warmup: f64 = opt(args, "--warmup", if quick { 0.1 } else { 0.3 })?;
    let conns = opt_list(
        args,
        "--conns",
        if quick { &[100] } else { &[1, 16, 100, 1000] },
    )?;
    let sizes = opt_list(args, "--sizes", if quick { &[64] } else { &[64, 4096] })?;
    if st.pairs == 0 || st.candidates.is_empty() || conns.contains(&0) || sizes.contains(&0) {
        return Err("--pairs, --candidates, --conns and --sizes must not be empty or 0".into());
    }
    // Where the load generator runs (`--client-cpu 0,1` for the multi-core
    // kinds, as the `multicore` mode does); the one-core servers pin
    // themselves to CPU 0.
    let client_cpus =
        super::parse_cpus(&opt(args, "--client-cpu", super::CLIENT_CPU.to_string())?)?;
    let tsv_path = opt(args, "--tsv", String::new())?;
    let mut tsv_file = if tsv_path.is_empty() {
        None
    } else {
        let mut f = std::fs::File::create(&tsv_path).map_err(|e| format!("{tsv_path}: {e}"))?;
        writeln!(f, "{TSV_HEADER}").map_err(|e| format!("{tsv_path}: {e}"))?;
        Some(f)
    };
    let mut failures = Vec::new();
    let mut sums = Vec::new();
    for &size in &sizes {
        for &c in &conns {
            let p = Point {
                conns: c,
                size,
                secs,
                warmup,
                msgs: None,
                client_cpus: client_cpus.clone(),
                server_cpus: Vec::new(),
            };
            let rounds = point_rounds(&exe, &p, &st, &mut failures);
            let mut rows = String::new();
            let point_sums = summarize(&p, &st, &rounds, &mut rows);
            if let Some(f) = tsv_file.as_mut() {
                f.write_all(rows.as_bytes())
                    .map_err(|e| format!("{tsv_path}: {e}"))?;
            }
            for x in &point_sums {
                let tput: Vec<f64> = x.kept.iter().map(|k| k[0].0 / k[0].1).collect();
                let cpu: Vec<f64> = x.kept.iter().map(|k| k[1].0 / k[1].1).collect();
                eprintln!(
                    "[echo pairs] {c} conns × {size} B {} ({}) / {}: msgs/s {}, CPU/msg {}, \
                     {} pairs kept, dropped {} mode / {} load / {} failed",
                    x.candidate,
                    x.backend,
                    st.baseline,
                    ratio_cell(&tput),
                    ratio_cell(&cpu),
                    x.kept.len(),
                    x.dropped_mode,
                    x.dropped_load,
                    x.failed
                );
            }
            sums.extend(point_sums);
            // The table so far: a run stopped midway keeps its points.
            write_out(args, &report(&st, &sums, secs, warmup, &failures, false))?;
        }
    }
    let text = report(&st, &sums, secs, warmup, &failures, true);
    println!("{text}");
    write_out(args, &text)?;
    Ok(failures.is_empty())
}

/// The table, the failures, and whether every point was measured.
fn report(
    st: &Settings,
    sums: &[Summary],
    secs: f64,
    warmup: f64,
    failures: &[String],
    complete: bool,
) -> String {
    let mut text = table(st, sums, secs, warmup);
    if !complete {
        text += "\n**Incomplete**: the run stopped before its last point.\n";
    }
    if !failures.is_empty() {
        text += "\n### Failures\n\n";
        for f in failures {
            text += &format!("- {f}\n");
        }
    }
    text
}
