//! An echo server: every byte a client sends comes back.
//!
//! ```sh
//! cargo run --release --example echo_server                 # 127.0.0.1:7878
//! cargo run --release --example echo_server -- --addr 127.0.0.1:9000
//! cargo run --release --example echo_server -- --cores 2 --pin --quiet
//! cargo run --release --example echo_server -- --cores 2 --distribute shared
//! ```
//!
//! Each connection runs in its own task: chunks arrive in buffers of the
//! loop's shared group (`BufGroup`, `recv_stream`), each written back then
//! returned, so an idle connection holds no buffer (`ECHO_READS=one-shot`
//! in the environment: one reusable 16 KiB buffer per connection instead). Clients that reset or half-close are
//! handled (a half-closed client gets its last bytes back, then the server
//! closes its side). Ctrl-C stops the server cleanly.
//!
//! `--cores N` (default 1) runs N event loops, one per thread
//! ([`ringloop::Cores`]); `--pin` pins loop `i` to the `i`-th CPU this
//! process may run on (combine with `taskset -c 0-7` to choose them).
//! `--distribute MODE` says how connections reach the loops
//! ([`ringloop::net::CoresListener`]):
//!
//! - `round-robin` (the default): loop 0 accepts every connection and hands
//!   connection `k` to loop `k mod N`, so the shares are even;
//! - `shared`: every loop accepts from the one listening socket, and the
//!   kernel picks which waiting loop gets each connection;
//! - `reuseport`: each loop has its own `SO_REUSEPORT` listener on the same
//!   address, and the kernel picks by a hash of the client's address and
//!   port (even only on average: 16 connections have split 60/40).
//!
//! A connection stays on the loop that got it. Ctrl-C stops every loop
//! (`Cores::run` cancels every loop's entry future, as `run` cancels its
//! main future: no loop awaits `ctrl_c` itself), then the server prints, per core, the connections it accepted and the
//! bytes it echoed, each with its share of the total. `--quiet` drops the
//! per-connection lines (for load tests). `scripts/cores_spread.py`
//! measures the spread of each mode with this server.

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use ringloop::net::{CoreListener, CoresListener, Distribution, TcpListener, TcpStream};
use ringloop::signal::KeyboardInterrupt;
use ringloop::{Core, Cores};

/// Where a connection's lines go and its echoed bytes are counted.
#[derive(Clone)]
struct Log {
    /// `""` with one core, `"[core 3] "` with several.
    prefix: Rc<str>,
    quiet: bool,
    /// Bytes echoed by every connection of this loop.
    bytes: Rc<Cell<u64>>,
}

async fn echo(stream: TcpStream, peer: SocketAddr, log: Log) {
    let outcome = if one_shot_reads() {
        // Boxed, so its buffer and read/write state do not size the task
        // of the default path.
        Box::pin(echo_one_shot(&stream, &log.bytes)).await
    } else {
        echo_chunks(&stream, &log.bytes).await
    };
    if log.quiet {
        return;
    }
    let p = &log.prefix;
    match outcome {
        Ok(total) => println!("{p}closed {peer} after echoing {total} bytes"),
        Err((e, total)) => println!("{p}dropped {peer} after echoing {total} bytes: {e}"),
    }
}

/// [`echo`] without the closing line (`--quiet`, for load tests), and
/// written for a small task: while the connection is idle, its task keeps
/// only the stream, the loop's byte counter and the armed receive (the
/// write's state is boxed, allocated only while a write runs), about 130
/// bytes. An idle connection then costs a few hundred bytes in all
/// (BENCHMARKS.md, "idle connections").
///
/// (Shaped for that: a plain `fn` returning an `async move` block keeps
/// one copy of the arguments instead of two, and the received item goes
/// straight into [`start_write`] instead of a local that the state machine
/// would keep across the write's await.)
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn keeps its arguments twice in the task (16 bytes more)"
)]
fn echo_quiet(stream: TcpStream, bytes: Rc<Cell<u64>>) -> impl Future<Output = ()> {
    async move {
        let Ok(group) = ringloop::net::BufGroup::loop_default() else {
            return;
        };
        let mut chunks = stream.recv_stream(&group);
        drop(group);
        // Ends at end of stream (the client closed or half-closed: we are
        // done writing too) or at an error, which only ends this connection.
        while let Some(write) = start_write(&stream, &bytes, chunks.next().await) {
            if write.await.is_err() {
                return;
            }
        }
    }
}

/// The write of a received chunk back to the client, counted in `bytes`;
/// `None` at the end of the stream or an error.
fn start_write<'a>(
    stream: &'a TcpStream,
    bytes: &Cell<u64>,
    item: Option<io::Result<ringloop::net::Chunk>>,
) -> Option<Pin<Box<dyn Future<Output = io::Result<()>> + 'a>>> {
    let chunk = item?.ok()?;
    bytes.set(bytes.get() + chunk.len() as u64);
    Some(Box::pin(async move { stream.write_all(chunk).await.0 }))
}

/// Echoes what arrives in chunks of the loop's shared buffer group: a
/// connection waiting for data holds no buffer (a few hundred bytes per
/// idle connection instead of 16 KiB; BENCHMARKS.md, "idle connections").
/// Counts what it echoes in `bytes`; returns its own total, also with the
/// error that ended it.
async fn echo_chunks(stream: &TcpStream, bytes: &Cell<u64>) -> Result<u64, (io::Error, u64)> {
    let group = ringloop::net::BufGroup::loop_default().map_err(|e| (e, 0))?;
    let mut chunks = stream.recv_stream(&group);
    drop(group);
    let mut total = 0u64;
    // `None`: the client half-closed (or closed): we are done writing too.
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| (e, total))?;
        let n = Box::pin(write_back(stream, chunk))
            .await
            .map_err(|e| (e, total))?;
        total += n;
        bytes.set(bytes.get() + n);
    }
    Ok(total)
}

/// Writes `chunk` back (boxed by the caller: the write's state is
/// allocated only while it runs, so an idle connection's task stays small).
async fn write_back(stream: &TcpStream, chunk: ringloop::net::Chunk) -> io::Result<u64> {
    let n = chunk.len() as u64;
    let (res, _) = stream.write_all(chunk).await;
    res.map(|()| n)
}

/// The classic loop: one reusable 16 KiB buffer per connection, read then
/// write (`ECHO_READS=one-shot`).
async fn echo_one_shot(stream: &TcpStream, bytes: &Cell<u64>) -> Result<u64, (io::Error, u64)> {
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut total = 0u64;
    loop {
        buf.clear();
        let (res, b) = stream.read(buf).await;
        let n = res.map_err(|e| (e, total))?;
        if n == 0 {
            return Ok(total);
        }
        let (res, b) = stream.write_all(b).await;
        res.map_err(|e| (e, total))?;
        total += n as u64;
        bytes.set(bytes.get() + n as u64);
        buf = b;
    }
}

/// `ECHO_READS=one-shot` in the environment: per-connection buffers
/// instead of the shared group (to compare the two).
fn one_shot_reads() -> bool {
    static ONE_SHOT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ONE_SHOT.get_or_init(|| std::env::var("ECHO_READS").is_ok_and(|v| v == "one-shot"))
}

/// Accepts (with `accept`) and echoes, counting connections in
/// `accepted`, until the listener fails. Ctrl-C cancels it: `run` and
/// `Cores::run` drop the main futures (no loop awaits `ctrl_c` itself).
async fn serve<F, A>(accept: F, log: &Log, accepted: &Cell<u64>) -> io::Result<()>
where
    F: Fn() -> A,
    A: Future<Output = io::Result<(TcpStream, SocketAddr)>>,
{
    loop {
        // `accept` skips connections that failed before they were accepted
        // (a client that reset, a firewall refusal): what it returns is a
        // failure of the listener itself, which ends this loop's serving and
        // is reported by `main`.
        let (stream, peer) = accept()
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("{}listener failed: {e}", log.prefix)))?;
        accepted.set(accepted.get() + 1);
        // Echoes go out as they come in: without TCP_NODELAY, Nagle holds
        // a small echo until the client's delayed ACK (up to 40 ms).
        // (A failure would only mean that; the connection still works.)
        let _ = stream.set_nodelay(true);
        if !log.quiet {
            println!("{}opened {peer}", log.prefix);
        }
        if log.quiet && !one_shot_reads() {
            ringloop::spawn(echo_quiet(stream, log.bytes.clone())).detach();
        } else {
            ringloop::spawn(echo(stream, peer, log.clone())).detach();
        }
    }
}

struct Args {
    addr: SocketAddr,
    cores: usize,
    distribute: Distribution,
    pin: bool,
    quiet: bool,
}

const USAGE: &str =
    "usage: echo_server [--addr HOST:PORT] [--cores N] [--distribute MODE] [--pin] [--quiet]
  --addr HOST:PORT    where to listen (default 127.0.0.1:7878)
  --cores N           event loops, one per thread (default 1)
  --distribute MODE   how connections reach the loops (with --cores N > 1):
                        round-robin  loop 0 accepts, hands connection k to loop k mod N (default)
                        shared       every loop accepts from the one listening socket
                        reuseport    one SO_REUSEPORT listener per loop; the kernel hashes
  --pin               pin loop i to the i-th CPU this process may run on
  --quiet             no line per connection";

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut addr = "127.0.0.1:7878".to_owned();
    let mut a = Args {
        addr: ([127, 0, 0, 1], 7878).into(),
        cores: 1,
        distribute: Distribution::default(),
        pin: false,
        quiet: false,
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => addr = args.next().ok_or("--addr needs a value")?,
            "--cores" => {
                let v = args.next().ok_or("--cores needs a value")?;
                a.cores = match v.parse() {
                    Ok(n) if n >= 1 => n,
                    _ => return Err(format!("bad --cores {v:?}: a number of at least 1")),
                };
            }
            "--distribute" => {
                let v = args.next().ok_or("--distribute needs a value")?;
                a.distribute = v.parse().map_err(|e| format!("bad --distribute: {e}"))?;
            }
            "--pin" => a.pin = true,
            "--quiet" => a.quiet = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    a.addr = addr
        .parse()
        .map_err(|e| format!("bad --addr {addr:?}: {e}"))?;
    Ok(a)
}

fn main() -> io::Result<()> {
    let args = parse_args().map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    if args.cores == 1 && !args.pin {
        return one_core(&args);
    }
    many_cores(args)
}

/// The classic single-loop server.
fn one_core(args: &Args) -> io::Result<()> {
    let (addr, quiet) = (args.addr, args.quiet);
    let served = ringloop::run(async move {
        let listener = TcpListener::bind(addr)?;
        println!(
            "echo server listening on {} ({} backend)",
            listener.local_addr()?,
            ringloop::ring_stats()?.backend
        );
        let log = Log {
            prefix: "".into(),
            quiet,
            bytes: Rc::default(),
        };
        serve(|| listener.accept(), &log, &Cell::new(0)).await
    });
    match served {
        // Ctrl-C cancelled the server: the normal way to stop it.
        Err(e) if KeyboardInterrupt::is(&e) => {
            println!("shutting down");
            Ok(())
        }
        Err(e) | Ok(Err(e)) => Err(e),
        Ok(Ok(())) => Ok(()),
    }
}

/// One loop's totals, as its entry future ended.
struct CoreStats {
    cpu: Option<usize>,
    accepted: u64,
    bytes: u64,
}

type Totals = Arc<Mutex<Vec<Option<CoreStats>>>>;

/// Writes one loop's totals into `totals` when dropped: when its entry
/// future ends, or is cancelled by Ctrl-C (its cleanup runs then).
struct Report {
    totals: Totals,
    index: usize,
    cpu: Option<usize>,
    accepted: Rc<Cell<u64>>,
    bytes: Rc<Cell<u64>>,
}

impl Drop for Report {
    fn drop(&mut self) {
        let mut totals = self.totals.lock().unwrap_or_else(|p| p.into_inner());
        totals[self.index] = Some(CoreStats {
            cpu: self.cpu,
            accepted: self.accepted.get(),
            bytes: self.bytes.get(),
        });
    }
}

async fn core_main(
    core: Core,
    listener: CoresListener<TcpListener>,
    quiet: bool,
    totals: Totals,
) -> io::Result<()> {
    let report = Report {
        totals,
        index: core.index(),
        cpu: core.cpu(),
        accepted: Rc::default(),
        bytes: Rc::default(),
    };
    let mine: CoreListener<TcpListener> = listener.for_core(&core)?;
    if core.index() == 0 {
        println!(
            "echo server listening on {} with {} cores ({}){} ({} backend)",
            listener.local_addr(),
            core.count(),
            listener.distribution(),
            if core.cpu().is_some() { ", pinned" } else { "" },
            ringloop::ring_stats()?.backend
        );
    }
    let log = Log {
        prefix: format!("[core {}] ", core.index()).into(),
        quiet,
        bytes: report.bytes.clone(),
    };
    let served = serve(|| mine.accept(), &log, &report.accepted).await;
    if let Err(e) = &served {
        // The other loops serve on until Ctrl-C.
        eprintln!("core {} stopped early: {e}", core.index());
    }
    served
}

/// `--cores N`: one loop per core, connections spread by `--distribute`.
fn many_cores(args: Args) -> io::Result<()> {
    let quiet = args.quiet;
    // Bound before the loops start: a taken address fails here, once.
    let listener = CoresListener::bind(args.addr, args.cores, args.distribute)?;
    let totals: Totals = Arc::new(Mutex::new((0..args.cores).map(|_| None).collect()));
    let t = totals.clone();
    let ran = Cores::new(args.cores)
        .pin(args.pin)
        .thread_name("echo-core")
        .run(move |core| core_main(core, listener.clone(), quiet, t.clone()));
    let mut first_error = None;
    match ran {
        // Ctrl-C cancelled every core: the normal way to stop.
        Err(e) if e.is_interrupted() => {}
        Err(e) => return Err(e.into()),
        // Every core stopped by itself: each listener failed.
        // Every core stopped by itself (each said why): each listener failed.
        Ok(results) => first_error = results.into_iter().find_map(Result::err),
    }
    println!("shutting down");
    let stats: Vec<(usize, CoreStats)> =
        std::mem::take(&mut *totals.lock().unwrap_or_else(|p| p.into_inner()))
            .into_iter()
            .enumerate()
            .filter_map(|(i, s)| Some((i, s?)))
            .collect();
    print_stats(&stats);
    first_error.map_or(Ok(()), Err)
}

fn share(part: u64, total: u64) -> String {
    if total == 0 {
        "—".to_owned()
    } else {
        format!("{:.1}%", 100.0 * part as f64 / total as f64)
    }
}

fn print_stats(stats: &[(usize, CoreStats)]) {
    let conns: u64 = stats.iter().map(|(_, s)| s.accepted).sum();
    let bytes: u64 = stats.iter().map(|(_, s)| s.bytes).sum();
    println!(
        "{:>5} {:>4} {:>12} {:>7} {:>16} {:>7}",
        "core", "cpu", "connections", "share", "bytes echoed", "share"
    );
    for (i, s) in stats {
        let cpu = s.cpu.map_or("-".to_owned(), |c| c.to_string());
        println!(
            "{i:>5} {cpu:>4} {:>12} {:>7} {:>16} {:>7}",
            s.accepted,
            share(s.accepted, conns),
            s.bytes,
            share(s.bytes, bytes)
        );
    }
    println!("{:>5} {:>4} {conns:>12} {:>7} {bytes:>16}", "total", "", "");
}
