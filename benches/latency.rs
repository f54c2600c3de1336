//! Echo latency at a fixed request rate, corrected for coordinated
//! omission: the load generator sends each message at its scheduled time
//! (whatever the server is doing) and measures its latency from that time,
//! so a server that stalls is charged for every message the stall delays,
//! not just the one in flight.
//!
//! It measures the `echo_server` example itself (what a user runs and
//! copies) against a tokio `current_thread` twin with the same logic, so a
//! regression in the example (say, a lost `TCP_NODELAY`: Nagle plus
//! delayed ACKs hold small echoes for 40 ms) shows up here.
//!
//! Modes (the first argument; `--bench` is ignored):
//!
//! - `tokio-server PORT_FILE`: pinned to CPU 0; a tokio `current_thread`
//!   echo server on 127.0.0.1 port 0 (written to PORT_FILE), `TCP_NODELAY`
//!   on accepted sockets, a task per connection with a 16 KiB buffer, until
//!   killed.
//! - `client ADDR CONNS SIZE RATE SECS`: pinned to CPU 1. RATE 0 is closed
//!   loop (each connection keeps one message outstanding: the saturated
//!   rate). Otherwise message k is due at k / RATE seconds and goes to
//!   connection k mod CONNS; a sender thread wakes every 100 µs and sends
//!   every message then due (so up to ~100 µs of the figure is the
//!   generator's own tick, the same for every server), and a receiver
//!   thread (epoll) reads the echoes. Every message carries its scheduled
//!   time and sequence number and is checked byte for byte. Messages due
//!   in the first 0.3 s are not timed. Prints `RESULT rate=… echoed=…
//!   p50_us=… p99_us=… p999_us=… max_us=…`; a message not back within
//!   10 s of the end is an error.
//! - `run [--conns 100] [--size 64] [--secs 3] [--sat-secs 2] [--pairs 3]
//!   [--fractions 0.5,0.9] [--echo-server PATH] [--tsv FILE]`: finds the
//!   saturated rate from `pairs` closed-loop pairs (each server once per
//!   pair, the order flipped every other pair; the median of each server's
//!   rates, then the lower of the two), then for each fraction of it runs
//!   `pairs` pairs of both servers at that fixed rate, each run a fresh
//!   process; prints the medians of p50/p99/p99.9/max per server, and with
//!   `--tsv` writes every pair's figures (one line per pair, `phase`
//!   `saturated` or the fraction; a pair with a failed run is kept as
//!   `failed` and left out of the medians). `--rounds` is an old name of
//!   `--pairs`. The
//!   ringloop side is the `echo_server` example (default
//!   `target/release/examples/echo_server`), pinned to CPU 0 with
//!   `taskset`. `scripts/latency_bench.sh` builds it and runs this.
//! - no arguments (as `cargo test --benches` runs a bench): a 0.5 s sanity
//!   run of the tokio twin at 10,000 msgs/s; the numbers mean nothing.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const WARMUP: Duration = Duration::from_millis(300);
const TICK: Duration = Duration::from_micros(100);

fn bad(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what.into())
}

fn pin(cpu: usize) {
    // SAFETY: `set` is a plain bitmask set by CPU_ZERO/CPU_SET with a CPU
    // number below its size; sched_setaffinity reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set);
    }
}

fn tokio_server(port_file: &str) -> io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    pin(0);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        std::fs::write(port_file, listener.local_addr()?.port().to_string())?;
        loop {
            let (mut s, _) = listener.accept().await?;
            s.set_nodelay(true)?;
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                while let Ok(n @ 1..) = s.read(&mut buf).await {
                    if s.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    })
}

/// Message `seq`, due `due_ns` after the start: `[due_ns, seq, pattern…]`.
fn message(size: usize, seq: u64, due_ns: u64) -> Vec<u8> {
    let mut m: Vec<u8> = (0..size).map(|j| (seq as usize + j) as u8).collect();
    m[..8].copy_from_slice(&due_ns.to_le_bytes());
    m[8..16].copy_from_slice(&seq.to_le_bytes());
    m
}

struct Conn {
    stream: TcpStream,
    got: Vec<u8>,
}

fn client(addr: SocketAddr, conns: usize, size: usize, rate: f64, secs: f64) -> io::Result<()> {
    if size < 16 {
        return Err(bad("size: at least 16 bytes (time and sequence number)"));
    }
    pin(1);
    let mut writers = Vec::with_capacity(conns);
    let mut readers = HashMap::with_capacity(conns);
    for _ in 0..conns {
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        writers.push(s.try_clone()?);
        // The sockets stay blocking (the writers block on a full buffer,
        // as a stalled server makes them); reads use MSG_DONTWAIT.
        readers.insert(
            s.as_raw_fd(),
            Conn {
                stream: s,
                got: Vec::new(),
            },
        );
    }
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    let sent = Arc::new(AtomicU64::new(0));
    let closed_loop = rate == 0.0;
    // Closed loop: the receiver sends the next message on each echo.
    let sender = (!closed_loop).then(|| {
        let sent = sent.clone();
        std::thread::spawn(move || -> io::Result<()> {
            pin(1);
            let mut k: u64 = 0;
            loop {
                let now = Instant::now();
                if now >= end {
                    return Ok(());
                }
                // Every message due by now, each stamped with its own time.
                while start + Duration::from_secs_f64(k as f64 / rate) <= now {
                    let due = Duration::from_secs_f64(k as f64 / rate);
                    let conn = &mut writers[(k % conns as u64) as usize];
                    conn.write_all(&message(size, k, due.as_nanos() as u64))?;
                    k += 1;
                    sent.store(k, Ordering::Release);
                }
                std::thread::sleep(TICK);
            }
        })
    });
    let mut closed_writers = if closed_loop {
        Some(writers_of(&readers)?)
    } else {
        None
    };
    let mut next_seq = 0u64;
    if let Some(w) = &mut closed_writers {
        for s in w.values_mut() {
            s.write_all(&message(size, next_seq, 0))?;
            next_seq += 1;
        }
        sent.store(next_seq, Ordering::Release);
    }
    // SAFETY: epoll_create1 takes no pointer.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if ep < 0 {
        return Err(io::Error::last_os_error());
    }
    for &fd in readers.keys() {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: fd as u64,
        };
        // SAFETY: `ep` and `fd` are open; `ev` is a valid event.
        if unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    let mut lat_us: Vec<u32> = Vec::new();
    let mut received = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
    let finish_by = end + Duration::from_secs(10);
    let warm_ns = WARMUP.as_nanos() as u64;
    loop {
        let total = sent.load(Ordering::Acquire);
        let done_sending = Instant::now() >= end && sender.as_ref().is_none_or(|s| s.is_finished());
        if done_sending && received == sent.load(Ordering::Acquire) {
            break;
        }
        if Instant::now() > finish_by {
            return Err(io::Error::other(format!(
                "{} of {total} messages not echoed 10 s after the end",
                total - received
            )));
        }
        // SAFETY: `events` has room for its length in epoll_events.
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, 10) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for ev in &events[..n as usize] {
            let fd = ev.u64 as i32;
            let conn = readers.get_mut(&fd).expect("registered");
            loop {
                // SAFETY: `buf` is writable for its length; `fd` is open.
                let k = unsafe {
                    libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT)
                };
                match k {
                    0 => return Err(io::Error::other("the server closed a connection")),
                    1.. => conn.got.extend_from_slice(&buf[..k as usize]),
                    _ => match io::Error::last_os_error() {
                        e if e.kind() == io::ErrorKind::WouldBlock => break,
                        e if e.kind() == io::ErrorKind::Interrupted => continue,
                        e => return Err(e),
                    },
                }
            }
            let now_ns = start.elapsed().as_nanos() as u64;
            let whole = conn.got.len() / size * size;
            for m in conn.got[..whole].chunks_exact(size) {
                let due = u64::from_le_bytes(m[..8].try_into().expect("8 bytes"));
                let seq = u64::from_le_bytes(m[8..16].try_into().expect("8 bytes"));
                if m[16..] != message(size, seq, due)[16..] {
                    return Err(io::Error::other(format!("message {seq} came back altered")));
                }
                received += 1;
                if closed_loop {
                    // Timed from when it was sent (stamped in `due`).
                    if due >= warm_ns {
                        lat_us.push(((now_ns - due) / 1000) as u32);
                    }
                    if Instant::now() < end {
                        let w = closed_writers.as_mut().expect("closed loop");
                        let s = w.get_mut(&fd).expect("registered");
                        s.write_all(&message(size, next_seq, start.elapsed().as_nanos() as u64))?;
                        next_seq += 1;
                        sent.store(next_seq, Ordering::Release);
                    }
                } else if due >= warm_ns {
                    lat_us.push((now_ns.saturating_sub(due) / 1000) as u32);
                }
            }
            conn.got.drain(..whole);
        }
    }
    if let Some(s) = sender {
        s.join()
            .map_err(|_| io::Error::other("sender panicked"))??;
    }
    // SAFETY: `ep` is ours and open.
    unsafe { libc::close(ep) };
    lat_us.sort_unstable();
    let pct = |p: f64| lat_us[((lat_us.len() as f64 * p) as usize).min(lat_us.len() - 1)];
    if lat_us.is_empty() {
        return Err(io::Error::other("no message was timed"));
    }
    let timed_secs = secs - WARMUP.as_secs_f64();
    println!(
        "RESULT rate={:.0} echoed={received} p50_us={} p99_us={} p999_us={} max_us={}",
        lat_us.len() as f64 / timed_secs,
        pct(0.5),
        pct(0.99),
        pct(0.999),
        lat_us[lat_us.len() - 1]
    );
    Ok(())
}

/// Blocking write halves keyed by the read half's fd (closed loop).
fn writers_of(readers: &HashMap<i32, Conn>) -> io::Result<HashMap<i32, TcpStream>> {
    readers
        .iter()
        .map(|(&fd, c)| {
            let w = c.stream.try_clone()?;
            Ok((fd, w))
        })
        .collect()
}

/// `key=value` of a RESULT line.
fn field(line: &str, key: &str) -> f64 {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a server: the example (`echo_server` at `exe`) or the tokio twin.
fn start(kind: &str, exe: &str) -> io::Result<(Reap, SocketAddr)> {
    if kind == "ringloop" {
        let mut child = Reap(
            Command::new("taskset")
                .args(["-c", "0", exe, "--addr", "127.0.0.1:0", "--quiet"])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| io::Error::new(e.kind(), format!("{exe}: {e}")))?,
        );
        let out = child.0.stdout.take().expect("piped");
        let mut line = String::new();
        BufReader::new(out).read_line(&mut line)?;
        let addr = line
            .strip_prefix("echo server listening on ")
            .and_then(|r| r.split_whitespace().next())
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| io::Error::other(format!("echo_server said {line:?}")))?;
        return Ok((child, addr));
    }
    let port_file = std::env::temp_dir().join(format!("ringloop-latency-{}", std::process::id()));
    let _ = std::fs::remove_file(&port_file);
    let child = Reap(
        Command::new(std::env::current_exe()?)
            .arg("tokio-server")
            .arg(&port_file)
            .spawn()?,
    );
    let t0 = Instant::now();
    loop {
        if let Ok(p) = std::fs::read_to_string(&port_file)
            && let Ok(p) = p.trim().parse::<u16>()
        {
            let _ = std::fs::remove_file(&port_file);
            return Ok((child, SocketAddr::from(([127, 0, 0, 1], p))));
        }
        if t0.elapsed() > Duration::from_secs(10) {
            return Err(io::Error::other("the tokio server did not start"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// One measurement: a fresh server, one client run; the client's RESULT.
fn measure(
    kind: &str,
    exe: &str,
    conns: usize,
    size: usize,
    rate: f64,
    secs: f64,
) -> io::Result<String> {
    let (_server, addr) = start(kind, exe)?;
    let out = Command::new(std::env::current_exe()?)
        .args([
            "client",
            &addr.to_string(),
            &conns.to_string(),
            &size.to_string(),
        ])
        .args([rate.to_string(), secs.to_string()])
        .stderr(Stdio::inherit())
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    match text.lines().find(|l| l.starts_with("RESULT")) {
        Some(l) if out.status.success() => Ok(l.to_owned()),
        _ => Err(io::Error::other(format!(
            "client against {kind} failed: {text}"
        ))),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The servers, in the order of odd pairs (even pairs run the reverse).
const KINDS: [&str; 2] = ["ringloop", "tokio"];
/// The figures of a RESULT line kept per run, in TSV column order.
const KEYS: [&str; 5] = ["rate", "p50_us", "p99_us", "p999_us", "max_us"];

/// Settings of the `run` mode.
struct RunArgs {
    conns: usize,
    size: usize,
    secs: f64,
    sat_secs: f64,
    pairs: usize,
    fractions: Vec<f64>,
    exe: String,
    tsv: Option<String>,
}

fn run_args(args: &[String]) -> io::Result<RunArgs> {
    let mut r = RunArgs {
        conns: 100,
        size: 64,
        secs: 3.0,
        sat_secs: 2.0,
        pairs: 3,
        fractions: vec![0.5, 0.9],
        exe: "target/release/examples/echo_server".to_owned(),
        tsv: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut v = || it.next().ok_or_else(|| bad(format!("{a} needs a value")));
        let num = |s: &String| s.parse::<f64>().map_err(|e| bad(format!("{a}: {e}")));
        match a.as_str() {
            "--conns" => r.conns = num(v()?)? as usize,
            "--size" => r.size = num(v()?)? as usize,
            "--secs" => r.secs = num(v()?)?,
            "--sat-secs" => r.sat_secs = num(v()?)?,
            "--pairs" | "--rounds" => r.pairs = (num(v()?)? as usize).max(1),
            "--fractions" => {
                r.fractions = v()?
                    .split(',')
                    .map(|f| f.parse().map_err(|e| bad(format!("--fractions: {e}"))))
                    .collect::<Result<_, _>>()?;
            }
            "--echo-server" => r.exe = v()?.clone(),
            "--tsv" => r.tsv = Some(v()?.clone()),
            other => return Err(bad(format!("unknown argument {other:?}"))),
        }
    }
    if r.conns == 0 || r.size < 16 || r.secs <= 0.0 || r.sat_secs <= 0.0 {
        return Err(bad(
            "--conns must be ≥ 1, --size ≥ 16 (the header), --secs and --sat-secs > 0",
        ));
    }
    Ok(r)
}

/// `pairs` pairs of runs of both servers at `rate` (0: closed loop), the
/// order flipped every other pair. Each pair's figures (`KEYS`, ringloop's
/// then tokio's) are appended to `tsv` under `phase`; a pair with a failed
/// run is kept there as `failed` and left out of the result.
fn pairs_at(
    r: &RunArgs,
    phase: &str,
    rate: f64,
    secs: f64,
    tsv: &mut String,
) -> Vec<[[f64; KEYS.len()]; 2]> {
    let mut kept = Vec::new();
    for i in 0..r.pairs {
        let order = if i % 2 == 0 { [0, 1] } else { [1, 0] };
        let mut got = [[f64::NAN; KEYS.len()]; 2];
        let mut status = "ok".to_owned();
        for k in order {
            match measure(KINDS[k], &r.exe, r.conns, r.size, rate, secs) {
                Ok(line) => {
                    eprintln!("{phase} pair {} {}: {line}", i + 1, KINDS[k]);
                    got[k] = KEYS.map(|key| field(&line, key));
                }
                Err(e) => {
                    eprintln!("{phase} pair {} {}: FAILED: {e}", i + 1, KINDS[k]);
                    status = format!("failed: {}", e.to_string().replace(['\t', '\n'], " "));
                }
            }
        }
        let cells: Vec<String> = got.iter().flatten().map(|x| format!("{x:.1}")).collect();
        let _ = writeln!(
            tsv,
            "{phase}\t{rate:.0}\t{}\t{}\t{}\t{status}",
            i + 1,
            KINDS[order[0]],
            cells.join("\t")
        );
        if status == "ok" {
            kept.push(got);
        }
    }
    kept
}

/// The TSV header of `run --tsv` (one line per pair).
fn tsv_header() -> String {
    let mut h = String::from("phase\trate\tpair\tfirst");
    for kind in KINDS {
        for key in KEYS {
            h += &format!("\t{kind}_{key}");
        }
    }
    h + "\tstatus"
}

fn run(args: &[String]) -> io::Result<()> {
    let r = run_args(args)?;
    let mut tsv = tsv_header() + "\n";
    // The saturated rate: closed-loop pairs; the median of each server's
    // rates, then the lower of the two, so both servers can carry the load.
    let sat = pairs_at(&r, "saturated", 0.0, r.sat_secs, &mut tsv);
    if sat.is_empty() {
        return Err(io::Error::other(format!(
            "no closed-loop pair succeeded, no saturated rate:\n{tsv}"
        )));
    }
    let sat_rate = |k: usize| median(sat.iter().map(|p| p[k][0]).collect());
    let saturated = sat_rate(0).min(sat_rate(1));
    println!(
        "saturated (closed loop, {} conns x {} B, median of {} pairs): ringloop {:.0}, tokio {:.0} msgs/s",
        r.conns,
        r.size,
        sat.len(),
        sat_rate(0),
        sat_rate(1)
    );
    println!(
        "\n{} connections x {} B, {} pairs of {} s per point, order flipped every other pair; load {}\n",
        r.conns,
        r.size,
        r.pairs,
        r.secs,
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    println!("| load | rate msgs/s | server | p50 µs | p99 µs | p99.9 µs | max µs |");
    println!("|---|---|---|---|---|---|---|");
    for &f in &r.fractions {
        let rate = (saturated * f).round();
        let got = pairs_at(&r, &format!("{:.0}%", f * 100.0), rate, r.secs, &mut tsv);
        if got.is_empty() {
            println!(
                "| {:.0}% | {rate:.0} | (every pair failed) | | | | |",
                f * 100.0
            );
            continue;
        }
        for (k, kind) in KINDS.iter().enumerate() {
            let m = |i: usize| median(got.iter().map(|p| p[k][i]).collect());
            println!(
                "| {:.0}% | {rate:.0} | {kind} | {:.0} | {:.0} | {:.0} | {:.0} |",
                f * 100.0,
                m(1),
                m(2),
                m(3),
                m(4)
            );
        }
    }
    if let Some(path) = &r.tsv {
        std::fs::write(path, &tsv).map_err(|e| io::Error::new(e.kind(), format!("{path}: {e}")))?;
    }
    Ok(())
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let num = |i: usize, what: &str| -> io::Result<f64> {
        args.get(i)
            .ok_or_else(|| bad(format!("missing {what}")))?
            .parse()
            .map_err(|e| bad(format!("{what}: {e}")))
    };
    match args.first().map(String::as_str) {
        Some("tokio-server") => tokio_server(args.get(1).ok_or_else(|| bad("missing PORT_FILE"))?),
        Some("client") => client(
            args.get(1)
                .ok_or_else(|| bad("missing ADDR"))?
                .parse()
                .map_err(|e| bad(format!("ADDR: {e}")))?,
            num(2, "CONNS")? as usize,
            num(3, "SIZE")? as usize,
            num(4, "RATE")?,
            num(5, "SECS")?,
        ),
        Some("run") => run(&args[1..]),
        None => {
            let r = measure("tokio", "", 10, 64, 10_000.0, 0.5)?;
            println!("sanity (tokio twin, 10 conns, 10,000 msgs/s, 0.5 s): {r}");
            Ok(())
        }
        Some(other) => Err(bad(format!(
            "unknown mode {other:?}: tokio-server PORT_FILE | client ADDR CONNS SIZE RATE SECS | run [...]"
        ))),
    }
}
