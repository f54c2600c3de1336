//! An echo server: every byte a client sends comes back.
//!
//! ```sh
//! cargo run --release --example echo_server                 # 127.0.0.1:7878
//! cargo run --release --example echo_server -- --addr 127.0.0.1:9000
//! cargo run --release --example echo_server -- --cores 2 --pin --quiet
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
//! process may run on (combine with `taskset -c 0-7` to choose them). Each
//! loop binds its own listener on the same address with `SO_REUSEPORT`, so
//! the kernel spreads new connections across the loops (by a hash of the
//! client's address and port), and runs the same accept/echo loop; a
//! connection stays on the loop that accepted it. Ctrl-C stops every loop,
//! then the server prints, per core, the connections it accepted and the
//! bytes it echoed, each with its share of the total. `--quiet` drops the
//! per-connection lines (for load tests).

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::{Arc, Condvar, Mutex};

use ringloop::net::{ListenOptions, TcpListener, TcpStream};
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
    let mut total = 0u64;
    let outcome = if one_shot_reads() {
        // Boxed, so its buffer and read/write state do not size the task
        // of the default path.
        Box::pin(echo_one_shot(&stream, &log, &mut total)).await
    } else {
        echo_chunks(&stream, &log, &mut total).await
    };
    if log.quiet {
        return;
    }
    let p = &log.prefix;
    match outcome {
        Ok(()) => println!("{p}closed {peer} after echoing {total} bytes"),
        Err(e) => println!("{p}dropped {peer} after echoing {total} bytes: {e}"),
    }
}

/// Echoes what arrives in chunks of the loop's shared buffer group: a
/// connection waiting for data holds no buffer (a few hundred bytes per
/// idle connection instead of 16 KiB; BENCHMARKS.md, "idle connections").
async fn echo_chunks(stream: &TcpStream, log: &Log, total: &mut u64) -> io::Result<()> {
    let mut chunks = stream.recv_stream(&ringloop::net::BufGroup::loop_default()?);
    // `None`: the client half-closed (or closed): we are done writing too.
    while let Some(chunk) = chunks.next().await {
        let n = Box::pin(write_back(stream, chunk?)).await?;
        *total += n;
        log.bytes.set(log.bytes.get() + n);
    }
    Ok(())
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
async fn echo_one_shot(stream: &TcpStream, log: &Log, total: &mut u64) -> io::Result<()> {
    let mut buf = Vec::with_capacity(16 * 1024);
    loop {
        buf.clear();
        let (res, b) = stream.read(buf).await;
        let n = res?;
        if n == 0 {
            return Ok(());
        }
        let (res, b) = stream.write_all(b).await;
        res?;
        *total += n as u64;
        log.bytes.set(log.bytes.get() + n as u64);
        buf = b;
    }
}

/// `ECHO_READS=one-shot` in the environment: per-connection buffers
/// instead of the shared group (to compare the two).
fn one_shot_reads() -> bool {
    static ONE_SHOT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ONE_SHOT.get_or_init(|| std::env::var("ECHO_READS").is_ok_and(|v| v == "one-shot"))
}

/// Accepts and echoes until Ctrl-C; returns the connections accepted.
async fn serve(listener: &TcpListener, log: &Log) -> io::Result<u64> {
    let accepted = Cell::new(0u64);
    let accept_loop = async {
        loop {
            // `accept` skips connections that failed before they were
            // accepted (a client that reset, a firewall refusal): what it
            // returns is a failure of the listener itself, which ends this
            // loop's serving and is reported by `main`.
            let (stream, peer) = listener.accept().await.map_err(|e| {
                io::Error::new(e.kind(), format!("{}listener failed: {e}", log.prefix))
            })?;
            accepted.set(accepted.get() + 1);
            if !log.quiet {
                println!("{}opened {peer}", log.prefix);
            }
            ringloop::spawn(echo(stream, peer, log.clone())).detach();
        }
    };
    let stop = ringloop::signal::ctrl_c();
    let r: io::Result<()> = futures_util::future::select(Box::pin(accept_loop), Box::pin(stop))
        .await
        .factor_first()
        .0;
    r.map(|()| accepted.get())
}

struct Args {
    addr: SocketAddr,
    cores: usize,
    pin: bool,
    quiet: bool,
}

const USAGE: &str = "usage: echo_server [--addr HOST:PORT] [--cores N] [--pin] [--quiet]
  --addr HOST:PORT  where to listen (default 127.0.0.1:7878)
  --cores N         event loops, one per thread, each with its own SO_REUSEPORT listener (default 1)
  --pin             pin loop i to the i-th CPU this process may run on
  --quiet           no line per connection";

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut addr = "127.0.0.1:7878".to_owned();
    let mut a = Args {
        addr: ([127, 0, 0, 1], 7878).into(),
        cores: 1,
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
    ringloop::run(async move {
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
        let r = serve(&listener, &log).await;
        println!("shutting down");
        r.map(drop)
    })?
}

/// What the cores agree on before serving: the address (core 0 binds
/// first, so that port 0 becomes one port for all), how many have bound,
/// and the first failure (then every core gives up).
#[derive(Default)]
struct Rendezvous {
    state: Mutex<BindState>,
    changed: Condvar,
}

#[derive(Default)]
struct BindState {
    addr: Option<SocketAddr>,
    bound: usize,
    failed: Option<String>,
}

impl Rendezvous {
    fn update(&self, f: impl FnOnce(&mut BindState)) {
        f(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()));
        self.changed.notify_all();
    }

    /// Blocks (at start-up, before this loop has any task) until `ready`.
    fn wait<T>(&self, mut ready: impl FnMut(&BindState) -> Option<T>) -> T {
        let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(v) = ready(&g) {
                return v;
            }
            g = self.changed.wait(g).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// Binds this core's `SO_REUSEPORT` listener once every core can.
fn bind_core(core: &Core, addr: SocketAddr, rv: &Rendezvous) -> io::Result<TcpListener> {
    let opts = ListenOptions {
        reuse_port: true,
        ..ListenOptions::default()
    };
    let target = if core.index() == 0 {
        Ok(addr)
    } else {
        rv.wait(|s| match (&s.failed, s.addr) {
            (Some(why), _) => Some(Err(why.clone())),
            (None, Some(a)) => Some(Ok(a)),
            (None, None) => None,
        })
    };
    let bound = target
        .map_err(io::Error::other)
        .and_then(|a| TcpListener::bind_with(a, opts).and_then(|l| Ok((l.local_addr()?, l))));
    match &bound {
        Ok((local, _)) => rv.update(|s| {
            s.addr.get_or_insert(*local);
            s.bound += 1;
        }),
        Err(e) => {
            let why = format!("core {}: {e}", core.index());
            rv.update(|s| {
                s.failed.get_or_insert(why);
            });
        }
    }
    let (_, listener) = bound?;
    // Serve only once every core listens (or give up with the others).
    let n = core.count();
    rv.wait(|s| match &s.failed {
        Some(why) => Some(Err(io::Error::other(why.clone()))),
        None => (s.bound == n).then_some(Ok(())),
    })?;
    Ok(listener)
}

/// One loop's totals at shutdown.
struct CoreStats {
    cpu: Option<usize>,
    accepted: u64,
    bytes: u64,
}

async fn core_main(
    core: Core,
    addr: SocketAddr,
    quiet: bool,
    rv: Arc<Rendezvous>,
) -> io::Result<CoreStats> {
    let listener = bind_core(&core, addr, &rv)?;
    if core.index() == 0 {
        println!(
            "echo server listening on {} with {} cores (SO_REUSEPORT){} ({} backend)",
            listener.local_addr()?,
            core.count(),
            if core.cpu().is_some() { ", pinned" } else { "" },
            ringloop::ring_stats()?.backend
        );
    }
    let log = Log {
        prefix: format!("[core {}] ", core.index()).into(),
        quiet,
        bytes: Rc::default(),
    };
    let accepted = serve(&listener, &log).await?;
    Ok(CoreStats {
        cpu: core.cpu(),
        accepted,
        bytes: log.bytes.get(),
    })
}

/// `--cores N`: one loop and one listener per core.
fn many_cores(args: Args) -> io::Result<()> {
    let (addr, quiet) = (args.addr, args.quiet);
    let rv = Arc::new(Rendezvous::default());
    let results = Cores::new(args.cores)
        .pin(args.pin)
        .thread_name("echo-core")
        .run(move |core| core_main(core, addr, quiet, rv.clone()))
        .map_err(|e| io::Error::other(e.to_string()))?;
    if results.iter().all(Result::is_err) {
        // Nothing was served (e.g. the address is taken): one error says why.
        return results
            .into_iter()
            .find_map(Result::err)
            .map_or(Ok(()), Err);
    }
    println!("shutting down");
    let mut stats = Vec::with_capacity(results.len());
    let mut first_error = None;
    for (i, r) in results.into_iter().enumerate() {
        match r {
            Ok(s) => stats.push((i, s)),
            Err(e) => {
                eprintln!("core {i} stopped early: {e}");
                first_error.get_or_insert(e);
            }
        }
    }
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
