//! Where each server's CPU time goes (the `profile` mode of
//! `benches/echo.rs`): `perf record -e cpu-clock` attached to the server
//! while the load generator runs, then `perf report` by shared object and
//! symbol (self time, no call graph).
//!
//! Each symbol's share of the samples is also given in ns per message (its
//! share × the server's CPU per message, `getrusage`), so two servers can be
//! compared line by line: the kernel's `tcp_sendmsg` costs the same on both,
//! the runtime's own symbols are what differs. `cpu-clock` is a software
//! timer (this VM has no hardware counters); sampling adds a little to
//! every server's CPU per message.
//!
//! `profile [--servers ringloop-epoll,tokio,ringloop-io_uring] [--conns C]
//! [--size B] [--secs S] [--top N] [--out FILE]`: per server, the top N
//! user-space symbols (default 20), then the top N kernel symbols.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{CLIENT_CPU, Point, Trace, fmt_num, measure, opt, read_all, size_label, write_out};

/// Sampling frequency (Hz): ~2,000 samples per second of server CPU.
const FREQ: &str = "1999";

/// One line of `perf report`: a symbol's share of the samples.
pub(super) struct Entry {
    /// Percent of all samples.
    share: f64,
    dso: String,
    kernel: bool,
    symbol: String,
}

/// Starts `perf record` on process `pid`, writing to `data`.
pub(super) fn start(pid: u32, data: &Path) -> Result<Child, String> {
    let mut t = Command::new("perf")
        .args(["record", "-e", "cpu-clock", "-F", FREQ, "-o"])
        .arg(data)
        .arg("-p")
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn perf record: {e}"))?;
    std::thread::sleep(Duration::from_millis(300));
    if let Ok(Some(st)) = t.try_wait() {
        let err = read_all(t.stderr.take());
        return Err(format!("perf record exited at once ({st}): {}", err.trim()));
    }
    Ok(t)
}

/// Reads `data` with `perf report`: every (shared object, symbol), largest
/// share first.
pub(super) fn report(data: &Path) -> Result<Vec<Entry>, String> {
    let out = Command::new("perf")
        .args(["report", "--stdio", "--no-children", "--sort", "dso,sym"])
        .args(["--percent-limit", "0", "-i"])
        .arg(data)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("perf report: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut v = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 4 || line.trim_start().starts_with('#') {
            continue;
        }
        let Some(share) = f[0].strip_suffix('%').and_then(|x| x.parse().ok()) else {
            continue;
        };
        v.push(Entry {
            share,
            dso: f[1].to_owned(),
            kernel: f[2] == "[k]",
            symbol: short_symbol(&f[3..].join(" ")),
        });
    }
    if v.is_empty() {
        return Err(format!("perf report gave no samples: {:?}", text.trim()));
    }
    v.sort_by(|a, b| b.share.total_cmp(&a.share));
    Ok(v)
}

/// Drops a Rust symbol's `::h<hash>` and caps its length.
fn short_symbol(s: &str) -> String {
    let s = match s.rfind("::h") {
        Some(i) if s.len() - i == 19 => &s[..i],
        _ => s,
    };
    let s = s.replace('|', "\\|");
    if s.chars().count() > 110 {
        s.chars().take(107).collect::<String>() + "…"
    } else {
        s
    }
}

pub(super) fn main(args: &[String]) -> Result<bool, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let servers: Vec<String> = opt(
        args,
        "--servers",
        "ringloop-epoll,tokio,ringloop-io_uring".to_owned(),
    )?
    .split(',')
    .map(str::to_owned)
    .collect();
    let conns: usize = opt(args, "--conns", 100)?;
    let size: usize = opt(args, "--size", 64)?;
    let secs: f64 = opt(args, "--secs", 3.0)?;
    let top: usize = opt(args, "--top", 20)?;
    let p = Point {
        conns,
        size,
        secs,
        warmup: 0.3,
        msgs: None,
        client_cpus: vec![CLIENT_CPU],
        server_cpus: Vec::new(),
    };
    let mut s = String::new();
    let w = &mut s;
    let _ = writeln!(
        w,
        "### Where the server's CPU time goes ({conns} connections × {}, {secs} s)\n",
        size_label(size)
    );
    let _ = writeln!(
        w,
        "`perf record -e cpu-clock -F {FREQ} -p <server pid>` while the load generator runs, \
         then `perf report --no-children --sort dso,sym`: self time per symbol (no call graph). \
         ns/msg = share × the server's CPU per message (`getrusage`, sampling included). One run \
         per server, so the absolute figures carry this machine's noise; the split is what to \
         read.\n"
    );
    let mut ok = true;
    for server in &servers {
        let m = match measure(&exe, server, &p, Trace::Record) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("[echo profile] {server}: FAILED: {e}");
                let _ = writeln!(w, "**{server}: FAILED**: {e}\n");
                ok = false;
                continue;
            }
        };
        let backend = m.server.get("backend").map_or("?", String::as_str);
        let ns = |share: f64| share / 100.0 * m.cpu_us_per_msg * 1000.0;
        let kernel: f64 = m.profile.iter().filter(|e| e.kernel).map(|e| e.share).sum();
        let user: f64 = m
            .profile
            .iter()
            .filter(|e| !e.kernel)
            .map(|e| e.share)
            .sum();
        eprintln!(
            "[echo profile] {server} ({backend}): {:.0} msgs/s, {:.2} µs/msg, kernel {kernel:.1}%",
            m.msgs_per_s, m.cpu_us_per_msg
        );
        let _ = writeln!(
            w,
            "#### {server} ({backend} backend): {} msgs/s, server CPU {:.2} µs/msg: kernel \
             {kernel:.1}% ({} ns/msg), user space {user:.1}% ({} ns/msg)\n",
            fmt_num(m.msgs_per_s),
            m.cpu_us_per_msg,
            fmt_num(ns(kernel)),
            fmt_num(ns(user))
        );
        // User space first (the runtime's own cost), then the kernel.
        let _ = writeln!(w, "| share | ns/msg | where | symbol |");
        let _ = writeln!(w, "| ---: | ---: | --- | --- |");
        for kernel in [false, true] {
            for e in m.profile.iter().filter(|e| e.kernel == kernel).take(top) {
                let _ = writeln!(
                    w,
                    "| {:.2}% | {} | {} | `{}` |",
                    e.share,
                    fmt_num(ns(e.share)),
                    if e.kernel { "kernel" } else { &e.dso },
                    e.symbol
                );
            }
        }
        let _ = writeln!(w);
    }
    println!("{s}");
    write_out(args, &s)?;
    Ok(ok)
}
