//! The multi-core echo comparison (the `multicore` mode of `benches/echo.rs`).
//!
//! Two servers, each using N cores (default 2):
//!
//! - `ringloop-<n>core`: `ringloop::Cores::new(n).pin(true)`: loop `i` on a
//!   thread pinned to CPU `i` (of the process's allowed CPUs), each with its
//!   own `SO_REUSEPORT` listener on the same port, an accept loop and a task
//!   per connection (as the single-core ringloop server). The kernel picks
//!   the listener of each new connection by a hash of its address and port;
//!   a connection stays on its loop. `ringloop-<n>core-nopin` (`--no-pin`):
//!   the same with the loops not pinned. `ringloop-<n>core-round-robin` and
//!   `ringloop-<n>core-shared` (`--distribute MODE`): the connections spread
//!   by a `ringloop::net::CoresListener` in that mode instead
//!   (`docs/design/cores-distribution.md`).
//! - `tokio-mt<n>`: tokio's multi-thread runtime with `worker_threads(n)`,
//!   one listener, the accept loop and one task per connection spawned on the
//!   workers (tasks move between workers by work stealing); the threads are
//!   not pinned (tokio does not pin).
//! - `tokio-ct<n>`: what tokio users write for thread-per-core: n threads,
//!   thread `i` pinned to CPU `i` (of the process's allowed CPUs), each
//!   with its own `current_thread` runtime and its own `SO_REUSEPORT`
//!   listener on the same port (the kernel spreads connections by a hash,
//!   as for `ringloop-<n>core`), an accept loop and a task per connection.
//!
//! Neither server process is pinned as a whole: it uses every core (or the
//! CPUs of `--server-cpus`, e.g. `0-7` on a bigger machine), and so does the
//! load generator (the same raw io-uring client as the other modes): one
//! thread per CPU of `--client-cpu` (default `0,1`; `8-15` on a bigger
//! machine), each pinned there with its share of the connections, or one
//! unpinned thread (`--client-cpu none`). With `0,1` each CPU carries one
//! ringloop core and half of the client, so neither core is favoured by
//! where the client runs.
//!
//! Each server counts, per core (ringloop) or per worker thread (tokio), the
//! bytes it echoed and the connections it accepted, and reads each such
//! thread's CPU time and run-queue wait from `/proc/self/task/<tid>/schedstat`
//! at exit; it reports them in its result line as
//! `slots=bytes/conns/cpu_us/wait_us,…` (one entry per core or worker).

use std::cell::Cell;
use std::fmt::Write as _;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering::Relaxed};

use ringloop::net::{CoresListener, Distribution};

use super::{
    BUF, Measure, Point, Trace, cell, cpus_arg, fmt_num, fmt_ratio, loadavg, localhost0, measure,
    median, opt, parse_cpus, size_label, write_out, write_port,
};

/// A multi-core server kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// `ringloop-<n>core` (loops pinned), or `ringloop-<n>core-nopin` (not
    /// pinned: the scheduler places the loop threads, as it does tokio's),
    /// with `-round-robin` or `-shared` before `-nopin` when the
    /// connections are spread that way (reuseport otherwise).
    Ringloop(usize, bool, Distribution),
    /// `tokio-mt<n>`.
    Tokio(usize),
    /// `tokio-ct<n>`: n pinned `current_thread` runtimes, one
    /// `SO_REUSEPORT` listener each.
    TokioCt(usize),
}

impl Kind {
    fn name(self) -> String {
        match self {
            Kind::Ringloop(n, pin, how) => {
                let how = match how {
                    Distribution::ReusePort => String::new(),
                    other => format!("-{other}"),
                };
                let pin = if pin { "" } else { "-nopin" };
                format!("ringloop-{n}core{how}{pin}")
            }
            Kind::Tokio(n) => format!("tokio-mt{n}"),
            Kind::TokioCt(n) => format!("tokio-ct{n}"),
        }
    }
}

/// `ringloop-<n>core`, `tokio-mt<n>` or `tokio-ct<n>` (n ≥ 1); `None` for
/// other kinds.
pub(super) fn parse_kind(kind: &str) -> Option<Kind> {
    let n = |s: &str| s.parse::<usize>().ok().filter(|&n| n >= 1);
    if let Some(rest) = kind.strip_prefix("ringloop-") {
        let (rest, pin) = match rest.strip_suffix("-nopin") {
            Some(r) => (r, false),
            None => (rest, true),
        };
        let (rest, how) = match rest.split_once("core-") {
            Some((n, how)) => (n, how.parse().ok()?),
            None => (rest.strip_suffix("core")?, Distribution::ReusePort),
        };
        return n(rest).map(|n| Kind::Ringloop(n, pin, how));
    }
    if let Some(rest) = kind.strip_prefix("tokio-ct") {
        return n(rest).map(Kind::TokioCt);
    }
    kind.strip_prefix("tokio-mt").and_then(n).map(Kind::Tokio)
}

// ---------------------------------------------------------------------------
// Per-core counts.

/// Counts of one core (ringloop) or worker thread (tokio). Each slot is
/// written by its own thread only; the reporting thread reads it at exit.
struct Slot {
    bytes: AtomicU64,
    conns: AtomicU64,
    /// The owning thread's id, 0 while unused.
    tid: AtomicI64,
}

const MAX_SLOTS: usize = 256;
static SLOTS: [Slot; MAX_SLOTS] = [const {
    Slot {
        bytes: AtomicU64::new(0),
        conns: AtomicU64::new(0),
        tid: AtomicI64::new(0),
    }
}; MAX_SLOTS];
/// The next slot for a thread that claims one lazily (tokio's workers).
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static MY_SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// Makes slot `index` (or the next free one) the calling thread's.
fn claim(index: Option<usize>) -> usize {
    let i = index
        .unwrap_or_else(|| NEXT_SLOT.fetch_add(1, Relaxed))
        .min(MAX_SLOTS - 1);
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    SLOTS[i].tid.store(i64::from(tid), Relaxed);
    MY_SLOT.with(|s| s.set(i));
    i
}

fn my_slot() -> &'static Slot {
    let i = MY_SLOT.with(Cell::get);
    &SLOTS[if i == usize::MAX { claim(None) } else { i }]
}

/// Only the slot's own thread writes it: a plain load and store suffice.
fn add(c: &AtomicU64, n: u64) {
    c.store(c.load(Relaxed) + n, Relaxed);
}

/// (CPU time, run-queue wait) of thread `tid` of this process, in µs.
fn thread_times_us(tid: i64) -> (u64, u64) {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat"))
        .ok()
        .and_then(|s| {
            let mut f = s.split_whitespace().map(|x| x.parse::<u64>().ok());
            Some((f.next()?? / 1000, f.next()?? / 1000))
        })
        .unwrap_or((0, 0))
}

/// The bytes echoed by the multi-core servers, and the ` slots=…` field of
/// the result line (empty when no slot was used).
pub(super) fn report() -> (u64, String) {
    let used: Vec<&Slot> = SLOTS
        .iter()
        .take_while(|s| s.tid.load(Relaxed) != 0)
        .collect();
    let total = used.iter().map(|s| s.bytes.load(Relaxed)).sum();
    if used.is_empty() {
        return (0, String::new());
    }
    let fields: Vec<String> = used
        .iter()
        .map(|s| {
            let (cpu, wait) = thread_times_us(s.tid.load(Relaxed));
            format!(
                "{}/{}/{cpu}/{wait}",
                s.bytes.load(Relaxed),
                s.conns.load(Relaxed)
            )
        })
        .collect();
    (total, format!(" slots={}", fields.join(",")))
}

// ---------------------------------------------------------------------------
// Servers.

pub(super) fn serve(kind: Kind, port_file: &Path) -> io::Result<()> {
    match kind {
        Kind::Ringloop(n, pin, how) => serve_ringloop(n, pin, how, port_file),
        Kind::Tokio(n) => serve_tokio(n, port_file),
        Kind::TokioCt(n) => serve_tokio_ct(n, port_file),
    }
}

/// The sockets are bound (and listening) before the loops start, so the
/// port file is written before any loop runs.
fn serve_ringloop(n: usize, pin: bool, how: Distribution, port_file: &Path) -> io::Result<()> {
    let listener = CoresListener::bind(localhost0(), n, how)?;
    write_port(port_file, listener.local_addr().port())?;
    let outs = ringloop::Cores::new(n)
        .pin(pin)
        .run(move |core| ringloop_core(core, listener.clone()))
        .map_err(|e| io::Error::other(e.to_string()))?;
    outs.into_iter().collect()
}

async fn ringloop_core(
    core: ringloop::Core,
    listener: CoresListener<ringloop::net::TcpListener>,
) -> io::Result<()> {
    claim(Some(core.index()));
    let listener = listener.for_core(&core)?;
    let slot = my_slot();
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        add(&slot.conns, 1);
        ringloop::spawn(ringloop_conn(stream, slot)).detach();
    }
}

async fn ringloop_conn(stream: ringloop::net::TcpStream, slot: &'static Slot) {
    let mut buf = Vec::with_capacity(BUF);
    loop {
        buf.clear();
        let (res, b) = stream.read(buf).await;
        let n = match res {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        add(&slot.bytes, n as u64);
        let (res, b) = stream.write_all(b).await;
        if res.is_err() {
            return;
        }
        buf = b;
    }
}

fn serve_tokio(n: usize, port_file: &Path) -> io::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(n)
        .enable_io()
        .build()?;
    let port_file = port_file.to_owned();
    rt.block_on(async move {
        // The accept loop runs on a worker, not on this (block_on) thread.
        let accept = tokio::spawn(async move {
            let listener = tokio::net::TcpListener::bind(localhost0()).await?;
            write_port(&port_file, listener.local_addr()?.port())?;
            loop {
                let (stream, _) = listener.accept().await?;
                stream.set_nodelay(true)?;
                add(&my_slot().conns, 1);
                tokio::spawn(tokio_conn(stream));
            }
        });
        accept.await.map_err(io::Error::other)?
    })
}

/// The CPUs this process may run on, in order (`sched_getaffinity`).
fn allowed_cpus() -> io::Result<Vec<usize>> {
    // SAFETY: `set` is a plain bitmask that sched_getaffinity fills; its
    // size is passed with it, and CPU_ISSET reads bits below that size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(e.kind(), format!("sched_getaffinity: {e}")));
        }
        let max = 8 * std::mem::size_of::<libc::cpu_set_t>();
        Ok((0..max).filter(|&c| libc::CPU_ISSET(c, &set)).collect())
    }
}

/// A listening TCP socket on 127.0.0.1:`port` with `SO_REUSEPORT` set
/// before `bind`, so that several may share one port.
fn reuseport_listener(port: u16) -> io::Result<std::net::TcpListener> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let ctx = |what: &str| {
        let e = io::Error::last_os_error();
        io::Error::new(
            e.kind(),
            format!("{what} (127.0.0.1:{port}, SO_REUSEPORT): {e}"),
        )
    };
    // SAFETY: socket(2) has no memory preconditions; a non-negative result
    // is a new fd that nothing else owns, so OwnedFd may take it.
    let fd = unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(ctx("socket"));
        }
        OwnedFd::from_raw_fd(fd)
    };
    let raw = fd.as_raw_fd();
    let one: libc::c_int = 1;
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(std::net::Ipv4Addr::LOCALHOST).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: `raw` is the open socket owned by `fd`; `one` and `addr` are
    // live locals whose sizes are passed with their pointers.
    unsafe {
        if libc::setsockopt(
            raw,
            libc::SOL_SOCKET,
            libc::SO_REUSEPORT,
            std::ptr::from_ref(&one).cast(),
            std::mem::size_of_val(&one) as libc::socklen_t,
        ) != 0
        {
            return Err(ctx("setsockopt"));
        }
        if libc::bind(
            raw,
            std::ptr::from_ref(&addr).cast(),
            std::mem::size_of_val(&addr) as libc::socklen_t,
        ) != 0
        {
            return Err(ctx("bind"));
        }
        if libc::listen(raw, 1024) != 0 {
            return Err(ctx("listen"));
        }
    }
    let listener = std::net::TcpListener::from(fd);
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// `tokio-ct<n>`: every listener is bound before any thread starts, so the
/// port file is written before any runtime runs.
fn serve_tokio_ct(n: usize, port_file: &Path) -> io::Result<()> {
    let cpus = allowed_cpus()?;
    if cpus.len() < n {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("tokio-ct{n}: only {} CPUs allowed ({cpus:?})", cpus.len()),
        ));
    }
    let first = reuseport_listener(0)?;
    let port = first.local_addr()?.port();
    let mut listeners = vec![first];
    for _ in 1..n {
        listeners.push(reuseport_listener(port)?);
    }
    write_port(port_file, port)?;
    let threads: Vec<_> = listeners
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            let cpu = cpus[i];
            std::thread::spawn(move || tokio_ct_core(i, cpu, l))
        })
        .collect();
    for t in threads {
        t.join()
            .map_err(|_| io::Error::other("a tokio-ct thread panicked"))??;
    }
    Ok(())
}

fn tokio_ct_core(i: usize, cpu: usize, listener: std::net::TcpListener) -> io::Result<()> {
    super::pin(cpu)?;
    claim(Some(i));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            add(&my_slot().conns, 1);
            tokio::spawn(tokio_conn(stream));
        }
    })
}

async fn tokio_conn(mut stream: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; BUF];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // Counted on the worker that ran this read: the task may move.
        add(&my_slot().bytes, n as u64);
        if stream.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

// ---------------------------------------------------------------------------
// The comparison.

/// One server's per-core counts in one run.
struct Spread {
    bytes: Vec<f64>,
    conns: Vec<f64>,
    cpu_us: Vec<f64>,
    wait_us: Vec<f64>,
}

fn spread(m: &Measure, cores: usize) -> Result<Spread, String> {
    let slots = m
        .server
        .get("slots")
        .ok_or("the server reported no per-core counts")?;
    let mut s = Spread {
        bytes: vec![0.0; cores],
        conns: vec![0.0; cores],
        cpu_us: vec![0.0; cores],
        wait_us: vec![0.0; cores],
    };
    for (i, entry) in slots.split(',').enumerate() {
        let f: Vec<f64> = entry.split('/').filter_map(|x| x.parse().ok()).collect();
        if f.len() != 4 || i >= cores {
            return Err(format!("bad per-core counts {slots:?} for {cores} cores"));
        }
        (s.bytes[i], s.conns[i], s.cpu_us[i], s.wait_us[i]) = (f[0], f[1], f[2], f[3]);
    }
    Ok(s)
}

/// Percentages of the total.
fn shares(xs: &[f64]) -> Vec<f64> {
    let total: f64 = xs.iter().sum();
    xs.iter()
        .map(|x| if total > 0.0 { 100.0 * x / total } else { 0.0 })
        .collect()
}

/// One (conns, size) point: per run, (ringloop, tokio).
struct PointRuns {
    conns: usize,
    size: usize,
    load: String,
    runs: Vec<[Option<(Measure, Spread)>; 2]>,
}

impl PointRuns {
    fn values(&self, k: usize, f: impl Fn(&Measure, &Spread) -> f64) -> Vec<f64> {
        self.runs
            .iter()
            .filter_map(|r| r[k].as_ref().map(|(m, s)| f(m, s)))
            .collect()
    }
    fn ratios(&self, f: fn(&Measure) -> f64) -> Vec<f64> {
        self.runs
            .iter()
            .filter_map(|r| match (&r[0], &r[1]) {
                (Some((a, _)), Some((b, _))) if f(b) > 0.0 => Some(f(a) / f(b)),
                _ => None,
            })
            .collect()
    }
}

fn parse_points(s: &str) -> Result<Vec<(usize, usize)>, String> {
    s.split(',')
        .map(|p| {
            let (c, b) = p
                .trim()
                .split_once('x')
                .ok_or(format!("bad point {p:?}: want CONNSxBYTES"))?;
            let c: usize = c.parse().map_err(|_| format!("bad conns in {p:?}"))?;
            let b: usize = b.parse().map_err(|_| format!("bad size in {p:?}"))?;
            if c == 0 || b == 0 {
                return Err(format!("bad point {p:?}: both at least 1"));
            }
            Ok((c, b))
        })
        .collect()
}

/// The `multicore` mode; `Ok(false)` when a measurement failed.
pub(super) fn main(args: &[String]) -> Result<bool, String> {
    let quick = args.iter().any(|a| a == "--quick");
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let cores: usize = opt(args, "--cores", 2)?;
    let runs: usize = opt(args, "--runs", if quick { 1 } else { 3 })?;
    let secs: f64 = opt(args, "--secs", if quick { 0.5 } else { 2.0 })?;
    let warmup: f64 = opt(args, "--warmup", if quick { 0.2 } else { 0.3 })?;
    let default_points = if quick {
        "100x64"
    } else {
        "100x64,1000x64,16x4096"
    };
    let points = parse_points(&opt(args, "--points", default_points.to_owned())?)?;
    let client_cpus = parse_cpus(&opt(args, "--client-cpu", "0,1".to_owned())?)?;
    let server_cpus = parse_cpus(&opt(args, "--server-cpus", "none".to_owned())?)?;
    if cores == 0 || runs == 0 {
        return Err("--cores and --runs must be at least 1".into());
    }
    let pin = !args.iter().any(|a| a == "--no-pin");
    let how: Distribution = opt(args, "--distribute", "reuseport".to_owned())?
        .parse()
        .map_err(|e| format!("--distribute: {e}"))?;
    let kinds = [Kind::Ringloop(cores, pin, how), Kind::Tokio(cores)];
    let mut failures = Vec::new();
    let mut results = Vec::new();
    for &(conns, size) in &points {
        let p = Point {
            conns,
            size,
            secs,
            warmup,
            msgs: None,
            client_cpus: client_cpus.clone(),
            server_cpus: server_cpus.clone(),
        };
        let mut pr = PointRuns {
            conns,
            size,
            load: loadavg(),
            runs: Vec::new(),
        };
        for run in 1..=runs {
            let mut row: [Option<(Measure, Spread)>; 2] = [None, None];
            for (k, kind) in kinds.iter().enumerate() {
                let name = kind.name();
                let res = measure(&exe, &name, &p, Trace::None)
                    .and_then(|m| spread(&m, cores).map(|s| (m, s)));
                match res {
                    Ok((m, s)) => {
                        let fmt = |v: &[f64]| {
                            shares(v)
                                .iter()
                                .map(|x| format!("{x:.1}%"))
                                .collect::<Vec<_>>()
                                .join(" / ")
                        };
                        eprintln!(
                            "[echo multicore] {conns} conns × {size} B run {run}/{runs} \
                             {name:>14}: {:>9.0} msgs/s, p50 {:.1} µs, p99 {:.1} µs, server \
                             CPU {:.2} µs/msg; per core: msgs {}, conns {}, CPU {}, \
                             wait {:?} ms",
                            m.msgs_per_s,
                            m.p50_us,
                            m.p99_us,
                            m.cpu_us_per_msg,
                            fmt(&s.bytes),
                            fmt(&s.conns),
                            fmt(&s.cpu_us),
                            s.wait_us
                                .iter()
                                .map(|w| (w / 1000.0).round())
                                .collect::<Vec<_>>()
                        );
                        row[k] = Some((m, s));
                    }
                    Err(e) => {
                        eprintln!(
                            "[echo multicore] {conns} conns × {size} B run {run} {name}: FAILED: {e}"
                        );
                        failures.push(format!("{conns} conns × {size} B, run {run}, {name}: {e}"));
                    }
                }
            }
            pr.runs.push(row);
        }
        results.push(pr);
    }
    let mut text = tables(&results, kinds, runs, secs, warmup, &client_cpus);
    if !server_cpus.is_empty() {
        text = format!(
            "Servers restricted to CPUs {}.\n\n{text}",
            cpus_arg(&server_cpus)
        );
    }
    if !failures.is_empty() {
        text += "\n### Failures\n\n";
        for f in &failures {
            text += &format!("- {f}\n");
        }
    }
    println!("{text}");
    write_out(args, &text)?;
    Ok(failures.is_empty())
}

fn pct(x: f64) -> String {
    format!("{x:.1}%")
}

fn tables(
    points: &[PointRuns],
    kinds: [Kind; 2],
    runs: usize,
    secs: f64,
    warmup: f64,
    client_cpus: &[usize],
) -> String {
    let mut s = String::new();
    let w = &mut s;
    let (rl, tk) = (kinds[0].name(), kinds[1].name());
    let (cores, pinned, spread) = match kinds[0] {
        Kind::Ringloop(n, pin, how) => (
            n,
            if pin { "true" } else { "false" },
            match how {
                Distribution::ReusePort => "one `SO_REUSEPORT` listener per core".to_owned(),
                how => format!("connections spread by a `CoresListener`, `{how}`"),
            },
        ),
        Kind::Tokio(n) => (n, "false", String::new()),
        Kind::TokioCt(n) => (
            n,
            "true",
            "one `SO_REUSEPORT` listener per thread".to_owned(),
        ),
    };
    let client = match client_cpus {
        [] => "one thread, not pinned".to_owned(),
        [c] => format!("one thread pinned to CPU {c}"),
        cs => format!(
            "{} threads, pinned to CPUs {}, each with its share of the connections",
            cs.len(),
            cpus_arg(cs)
        ),
    };
    let _ = writeln!(
        w,
        "Servers: **{rl}** (`ringloop::Cores::new({cores}).pin({pinned})`, {spread}) and **{tk}** (tokio multi-thread runtime, `worker_threads({cores})`, \
         one listener, a task per connection). Load generator: {client}. Each cell: median \
         over {runs} runs (min–max); a run = a fresh {rl} server, then a fresh {tk} server, each \
         measured for {secs} s after {warmup} s of warmup. Ratios are taken within a run. \
         `load`: the 1-minute load average when the point started.\n"
    );
    let _ = writeln!(w, "### Throughput (msgs/s; higher is better)\n");
    let _ = writeln!(w, "| conns | size | load | {rl} | {tk} | {rl}/{tk} |");
    let _ = writeln!(w, "| ---: | ---: | ---: | ---: | ---: | ---: |");
    let tput = |m: &Measure| m.msgs_per_s;
    let cpu = |m: &Measure| m.cpu_us_per_msg;
    for p in points {
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} | {} |",
            p.conns,
            size_label(p.size),
            p.load,
            cell(&p.values(0, |m, _| tput(m)), runs, fmt_num),
            cell(&p.values(1, |m, _| tput(m)), runs, fmt_num),
            cell(&p.ratios(tput), runs, fmt_ratio),
        );
    }
    let _ = writeln!(
        w,
        "\n### Server CPU per message (µs, user + system of the whole server process; lower is better)\n"
    );
    let _ = writeln!(w, "| conns | size | {rl} | {tk} | {rl}/{tk} |");
    let _ = writeln!(w, "| ---: | ---: | ---: | ---: | ---: |");
    for p in points {
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} |",
            p.conns,
            size_label(p.size),
            cell(&p.values(0, |m, _| cpu(m)), runs, fmt_num),
            cell(&p.values(1, |m, _| cpu(m)), runs, fmt_num),
            cell(&p.ratios(cpu), runs, fmt_ratio),
        );
    }
    let _ = writeln!(w, "\n### Latency p50 / p99 (µs; medians over runs)\n");
    let _ = writeln!(w, "| conns | size | {rl} | {tk} |");
    let _ = writeln!(w, "| ---: | ---: | ---: | ---: |");
    for p in points {
        let lat = |k: usize| {
            let a = p.values(k, |m, _| m.p50_us);
            let b = p.values(k, |m, _| m.p99_us);
            if a.is_empty() {
                "FAILED".to_owned()
            } else {
                format!("{} / {}", fmt_num(median(&a)), fmt_num(median(&b)))
            }
        };
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} |",
            p.conns,
            size_label(p.size),
            lat(0),
            lat(1)
        );
    }
    let _ = writeln!(
        w,
        "\n### Spread across cores (share of the server's total; median over runs, min–max)\n\n\
         `connections`: accepted by that core's listener (tokio has one listener, and a \
         connection's task may move between workers, so it has no such count). `messages`: \
         bytes echoed by that core, or for tokio by that worker thread (workers are numbered in \
         the order they first echoed). `CPU`: the thread's on-CPU time as a share of all the \
         cores' (workers') CPU time; `wait`: its time runnable but waiting for a CPU \
         (`/proc/self/task/<tid>/schedstat`), in ms over the server's life.\n"
    );
    let _ = writeln!(
        w,
        "| conns | size | server | core | connections | messages | CPU | wait (ms) |"
    );
    let _ = writeln!(
        w,
        "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |"
    );
    for p in points {
        for (k, name) in [&rl, &tk].into_iter().enumerate() {
            for c in 0..cores {
                let share = |f: fn(&Spread) -> &[f64]| p.values(k, |_, s| shares(f(s))[c]);
                let conns = if k == 0 {
                    cell(&share(|s| &s.conns), runs, pct)
                } else {
                    "—".to_owned()
                };
                let _ = writeln!(
                    w,
                    "| {} | {} | {name} | {c} | {conns} | {} | {} | {} |",
                    p.conns,
                    size_label(p.size),
                    cell(&share(|s| &s.bytes), runs, pct),
                    cell(&share(|s| &s.cpu_us), runs, pct),
                    cell(&p.values(k, |_, s| s.wait_us[c] / 1000.0), runs, fmt_num),
                );
            }
        }
    }
    let _ = writeln!(w, "\n### Targets\n");
    let _ = writeln!(w, "| conns | size | target | measured | met? |");
    let _ = writeln!(w, "| ---: | ---: | --- | --- | --- |");
    for p in points {
        let ratios = p.ratios(tput);
        let met = if ratios.is_empty() {
            "—"
        } else if median(&ratios) >= 1.0 {
            "met"
        } else {
            "**not met**"
        };
        let _ = writeln!(
            w,
            "| {} | {} | {rl} msgs/s ≥ {tk} (ratio) | {} | {met} |",
            p.conns,
            size_label(p.size),
            cell(&ratios, runs, |x| format!("{x:.3}"))
        );
        // Per run: the smallest and largest core's share of the messages.
        let lo = p.values(0, |_, s| {
            shares(&s.bytes).into_iter().fold(f64::INFINITY, f64::min)
        });
        let hi = p.values(0, |_, s| shares(&s.bytes).into_iter().fold(0.0, f64::max));
        let ok = lo
            .iter()
            .zip(&hi)
            .filter(|&(&l, &h)| l >= 40.0 && h <= 60.0)
            .count();
        let met = match (ok, lo.len()) {
            (_, 0) => "—".to_owned(),
            (k, n) if k == n => "met".to_owned(),
            (k, n) => format!("**not met** ({k} of {n} runs in range)"),
        };
        let _ = writeln!(
            w,
            "| {} | {} | each {rl} core serves 40–60% of the messages | smallest core {}, largest {} | {met} |",
            p.conns,
            size_label(p.size),
            cell(&lo, runs, pct),
            cell(&hi, runs, pct)
        );
    }
    s
}
