//! Loopback TCP echo: ringloop vs tokio `current_thread` vs a minimal echo
//! loop written directly on the `io-uring` crate (no runtime), all driven by
//! the same load generator.
//!
//! One binary, several modes (the first argument; `--bench`, which
//! `cargo bench` adds, is ignored):
//!
//! - `server ringloop|ringloop-io_uring|ringloop-epoll|tokio|raw
//!   <port-file>`: pins itself to CPU 0, listens on 127.0.0.1 port 0, writes
//!   the port to `<port-file>`, echoes until its stdin closes, then prints
//!   `RESULT server kind=… backend=… user_us=… sys_us=… bytes=…` (the
//!   backend it ran on, its own CPU time, `getrusage(RUSAGE_SELF)`, and the
//!   bytes it received and echoed). Its first line, `SERVER kind=…
//!   backend=…`, names the backend too. `ringloop-io_uring` and
//!   `ringloop-epoll` force the backend (`Builder::backend`) and fail if
//!   the loop runs on another; plain `ringloop` takes what `ringloop::run`
//!   picks (`RINGLOOP_BACKEND`, else io_uring with the epoll fallback). A
//!   measurement of a kind whose backend is known (`ringloop-<backend>`,
//!   `tokio`: epoll, `raw`: io_uring) fails if the result line names
//!   another.
//!   `ringloop-idle-timeout` and `tokio-idle-timeout` add a per-connection
//!   idle timeout reset on every message (see `echo/idle.rs`).
//!   The multi-core kinds `ringloop-<n>core`, `tokio-mt<n>` and `tokio-ct<n>`
//!   are not pinned
//!   as a process and add per-core counts (see `echo/multicore.rs`).
//!   `--cpus C,…` (e.g. `0-7`): the CPUs the server may use instead.
//! - `client <addr> <conns> <size> <secs> [--warmup S] [--msgs N]
//!   [--cpu C,…|none]`: pins itself to CPU 1 (or `C`; `none`: not pinned)
//!   and opens `conns` connections (with several CPUs listed: one thread per
//!   CPU, pinned there, each driving its share of the connections on its own
//!   ring); each keeps one message of
//!   `size` bytes outstanding: send it, receive until all `size` bytes are
//!   back, compare every byte with what was sent, repeat. The first 8 bytes
//!   of each message carry its sequence number, so a stale or reordered echo
//!   fails. It is a raw `io-uring` loop too (one ring, the same flags as the
//!   servers), so the load generator is the same for all three servers.
//!   Messages that start in the first `--warmup` seconds (default 0.3) are
//!   echoed and checked but not timed. New messages stop at `secs`; the ones
//!   in flight are then completed and counted. With `--msgs N` it instead
//!   sends exactly N messages in total (no warmup) and `secs` is a time limit.
//!   Prints `RESULT client … msgs_per_s=… p50_us=… p99_us=… total_msgs=…
//!   user_us=… sys_us=…` (the last two: its own CPU time).
//! - `matrix [--secs S] [--warmup S] [--runs N] [--conns 1,16,…]
//!   [--sizes 64,4096] [--out FILE]`: for each (conns, size), `runs` rounds of
//!   ringloop, tokio, raw (A B C A B C …), each a fresh server and client
//!   process (this executable, re-executed); prints markdown tables (and
//!   writes them to FILE). Default: 2 s per measurement after 0.3 s warmup,
//!   3 runs, conns 1/16/100/1000, sizes 64 B/4 KiB: about 3–4 minutes. This is
//!   what `cargo bench --bench echo` runs (it passes just `--bench`).
//!   `--quick` (`cargo bench --bench echo -- --quick`): 100 conns × 64 B,
//!   1 run, 0.5 s, as a sanity check, then the same point in `multicore` and
//!   in `pairs` (2 rounds of 0.3 s). With no arguments at all (how
//!   `cargo test --benches` / `--all-targets` runs a bench) it does the
//!   `--quick` run, so that a test pass does not take minutes.
//! - `pairs [--candidates ringloop-epoll,ringloop-io_uring] [--baseline
//!   tokio] [--pairs N] [--secs S] [--warmup S] [--conns 1,16,…] [--sizes
//!   64,4096] [--max-foreign CORES] [--retries N] [--quiet-wait S]
//!   [--mode-gap G] [--client-cpu C,…|none] [--tsv FILE] [--out FILE]
//!   [--quick]`: paired short runs
//!   as `shared/BENCHMARKING.md` asks (default 10 rounds per point, 1.5 s
//!   after 0.3 s warmup, order flipped every other round), reporting per
//!   point and candidate the median per-pair ratio to the baseline (msgs/s
//!   and server CPU per message) with its interquartile range, the pairs
//!   kept, and those dropped for a mode mismatch or for other processes'
//!   load; `--tsv` keeps every pair's figures. See `echo/pairs.rs`;
//!   `scripts/echo_bench.sh` runs it.
//! - `syscalls [--msgs N] [--conns C] [--size B] [--runs R] [--out FILE]
//!   [--servers ringloop,tokio,raw] [--client-cpu C,…|none]
//!   [--server-cpus C,…]`:
//!   for each server (any kind, e.g. `ringloop-epoll,tokio` or
//!   `ringloop-2core,tokio-mt2`), `strace -c -f -e trace=io_uring_enter,
//!   read,write,recvfrom,sendto,recvmsg,sendmsg,readv,writev,epoll_wait,
//!   epoll_pwait,epoll_pwait2,epoll_ctl,poll -p <server pid>` is attached while
//!   the client sends exactly N messages (default 100,000 over 100 conns ×
//!   64 B); prints syscalls per message (median and range over R runs,
//!   default 3).
//! - `profile [--servers ringloop-epoll,tokio,ringloop-io_uring] [--conns C]
//!   [--size B] [--secs S] [--top N] [--out FILE]`: `perf record -e
//!   cpu-clock` on each server while the client runs; prints its top
//!   user-space and kernel symbols by self time, in % and in ns per message
//!   (see `echo/profile.rs`).
//! - `multicore [--cores N] [--points 100x64,1000x64,16x4096] [--runs R]
//!   [--secs S] [--warmup S] [--client-cpu C,…|none] [--server-cpus C,…]
//!   [--no-pin] [--distribute reuseport|round-robin|shared] [--out FILE]
//!   [--quick]`:
//!   ringloop with one loop per core (`ringloop::Cores`, one `SO_REUSEPORT`
//!   listener each by default, pinned) vs tokio's multi-thread runtime with N workers,
//!   both servers spread over the CPUs the load generator also uses; prints
//!   msgs/s, CPU per message, and how the messages spread across the cores.
//!   The load generator runs one thread on each of CPUs 0 and 1 by default.
//!   See `echo/multicore.rs`; `scripts/echo_cores_bench.sh` runs it.
//!
//! Every server counts the bytes it received; after each measurement that
//! count must equal (messages the client verified) × size, or the
//! measurement fails. Server CPU per message is the server's CPU time over
//! its whole life (idle start, accepting, echoing, closing) divided by the
//! messages it echoed.
//!
//! The three servers:
//! - ringloop: `ringloop::run` (or `Builder::new().backend(…).run` for
//!   `ringloop-io_uring` and `ringloop-epoll`: the same code), an accept
//!   loop, a task per connection with a reusable 16 KiB `Vec`: `read`, then
//!   `write_all` (as `examples/echo_server.rs`).
//! - tokio: a `current_thread` runtime (`enable_io`), the same logic with
//!   `tokio::net`, `AsyncReadExt::read` and `AsyncWriteExt::write_all`.
//! - raw: one ring with SINGLE_ISSUER|DEFER_TASKRUN|COOP_TASKRUN|TASKRUN_FLAG
//!   (ringloop's flags), one accept in flight, per connection a recv→send
//!   state machine on a 16 KiB buffer held in a slab, one
//!   `submit_and_wait(1)` per turn.
//!
//! All servers set TCP_NODELAY on accepted sockets, as the client does.
//! Run the full measurement with `scripts/echo_bench.sh`.

use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use io_uring::{IoUring, Submitter, opcode, squeue, types};

#[path = "echo/idle.rs"]
mod idle;
#[path = "echo/multicore.rs"]
mod multicore;
#[path = "echo/pairs.rs"]
mod pairs;
#[path = "echo/profile.rs"]
mod profile;

const SERVER_CPU: usize = 0;
const CLIENT_CPU: usize = 1;
const SERVERS: [&str; 3] = ["ringloop", "tokio", "raw"];
/// Each server's per-connection buffer.
const BUF: usize = 16 * 1024;
/// What the servers use to move bytes and wait: io_uring, tokio (mio), and
/// ringloop's epoll backend (`recv`/`send` are `recvfrom`/`sendto` on
/// x86-64).
const STRACE_SYSCALLS: &str = "io_uring_enter,read,write,recvfrom,sendto,recvmsg,sendmsg,readv,\
                               writev,epoll_wait,epoll_pwait,epoll_pwait2,epoll_ctl,poll";

fn localhost0() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

// ---------------------------------------------------------------------------
// Process helpers.

/// Pins the calling thread (at start-up: the process) to `cpu`.
fn pin(cpu: usize) -> io::Result<()> {
    set_affinity(&[cpu])
}

/// Restricts the calling thread (at start-up: the process) to `cpus`.
fn set_affinity(cpus: &[usize]) -> io::Result<()> {
    let max = 8 * std::mem::size_of::<libc::cpu_set_t>();
    if let Some(bad) = cpus.iter().find(|&&c| c >= max) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("CPU {bad} is beyond the {max} a cpu_set_t holds"),
        ));
    }
    // SAFETY: `set` is a plain bitmask, initialised by CPU_ZERO/CPU_SET
    // with CPU numbers checked against its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        for &cpu in cpus {
            libc::CPU_SET(cpu, &mut set);
        }
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!("sched_setaffinity(CPUs {cpus:?}): {e}"),
            ));
        }
    }
    Ok(())
}

/// Raises the soft fd limit to the hard limit (1000 connections need it).
fn raise_nofile() {
    // SAFETY: plain struct in/out of get/setrlimit.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

/// This process's (user, system) CPU time in µs.
fn cpu_time_us() -> (u64, u64) {
    // SAFETY: plain struct filled by getrusage.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    (us(ru.ru_utime), us(ru.ru_stime))
}

/// Both io_uring programs here (raw server, client) use ringloop's flags.
fn build_ring(sq_entries: u32, cq_entries: u32) -> io::Result<IoUring> {
    IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_coop_taskrun()
        .setup_taskrun_flag()
        .setup_cqsize(cq_entries)
        .build(sq_entries)
}

/// Pushes `e`, first handing a full SQ to the kernel.
///
/// # Safety
///
/// The buffers `e` points to must stay valid until its completion.
unsafe fn push(
    sq: &mut squeue::SubmissionQueue<'_>,
    submitter: &Submitter<'_>,
    e: &squeue::Entry,
) -> io::Result<()> {
    if sq.is_full() {
        sq.sync();
        submitter.submit()?;
        sq.sync();
    }
    // SAFETY: by this function's contract.
    unsafe { sq.push(e) }.map_err(|_| io::Error::other("submission queue full after submit"))
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINTR | libc::EAGAIN | libc::EBUSY | libc::ETIME)
    )
}

fn errno_err(res: i32, what: &str) -> io::Error {
    let e = io::Error::from_raw_os_error(-res);
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

// ---------------------------------------------------------------------------
// Servers.

/// Bytes received (and then echoed) by this server. Only the serving thread
/// writes it; the stdin watcher reads it at exit.
static BYTES: AtomicU64 = AtomicU64::new(0);

#[inline]
fn count(n: usize) {
    BYTES.store(BYTES.load(Ordering::Relaxed) + n as u64, Ordering::Relaxed);
}

fn write_port(port_file: &Path, port: u16) -> io::Result<()> {
    let tmp = port_file.with_extension("tmp");
    std::fs::write(&tmp, format!("{port}\n"))?;
    std::fs::rename(&tmp, port_file)
}

/// `cpus`: where the server may run (empty: CPU 0 for the one-core
/// servers, anywhere for the multi-core ones).
fn server_main(kind: &str, port_file: &Path, cpus: &[usize]) -> io::Result<()> {
    let multi = multicore::parse_kind(kind);
    match (multi, cpus) {
        (None, []) => pin(SERVER_CPU)?,
        (_, []) => {}
        (None, [cpu, ..]) => pin(*cpu)?,
        (Some(_), cpus) => set_affinity(cpus)?,
    }
    let kind_owned = kind.to_owned();
    // Serve until stdin closes: then report and exit (the serving thread is
    // killed with the process, wherever it is).
    std::thread::spawn(move || {
        let mut sink = [0u8; 64];
        let mut stdin = io::stdin();
        while let Ok(n) = stdin.read(&mut sink) {
            if n == 0 {
                break;
            }
        }
        let (user, sys) = cpu_time_us();
        let (multi_bytes, per_core) = multicore::report();
        println!(
            "RESULT server kind={kind_owned} backend={} user_us={user} sys_us={sys} bytes={}\
             {per_core}",
            BACKEND.get().map_or("unknown", String::as_str),
            BYTES.load(Ordering::Relaxed) + multi_bytes
        );
        let _ = io::stdout().flush();
        std::process::exit(0);
    });
    if let Some(k) = multi {
        return multicore::serve(k, port_file);
    }
    match kind {
        "ringloop" => serve_ringloop(port_file, None),
        "ringloop-io_uring" => serve_ringloop(port_file, Some(ringloop::Backend::IoUring)),
        "ringloop-epoll" => serve_ringloop(port_file, Some(ringloop::Backend::Epoll)),
        "tokio" => {
            announce_backend(kind, "epoll");
            serve_tokio(port_file)
        }
        "raw" => {
            announce_backend(kind, "io_uring");
            serve_raw(port_file)
        }
        k if idle::KINDS.contains(&k) => idle::serve(k, port_file),
        other => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "unknown server {other:?} (ringloop|ringloop-io_uring|ringloop-epoll|tokio|raw|\
                 ringloop-<n>core|tokio-mt<n>|ringloop-idle-timeout|tokio-idle-timeout)"
            ),
        )),
    }
}

/// The backend this server process runs on, for its result line.
static BACKEND: OnceLock<String> = OnceLock::new();

/// Records the backend and prints it as the server's first line.
fn announce_backend(kind: &str, backend: &str) {
    let _ = BACKEND.set(backend.to_owned());
    println!("SERVER kind={kind} backend={backend}");
}

/// The backend a server kind must run on; `None`: whichever the loop picks
/// (`ringloop`: `RINGLOOP_BACKEND`, else io_uring with the epoll fallback).
fn expected_backend(kind: &str) -> Option<&'static str> {
    match kind {
        "ringloop-io_uring" | "raw" => Some("io_uring"),
        "ringloop-epoll" | "tokio" | "tokio-idle-timeout" => Some("epoll"),
        _ => None,
    }
}

/// `ringloop`, `ringloop-io_uring`, `ringloop-epoll`: the same server, on
/// a loop whose backend is `forced` (or chosen as `ringloop::run` does).
fn serve_ringloop(port_file: &Path, forced: Option<ringloop::Backend>) -> io::Result<()> {
    let mut builder = ringloop::Builder::new();
    if let Some(b) = forced {
        builder = builder.backend(b);
    }
    builder.run(ringloop_accept(port_file.to_owned(), forced))?
}

async fn ringloop_accept(port_file: PathBuf, forced: Option<ringloop::Backend>) -> io::Result<()> {
    // Never measure one backend under the other's name.
    let backend = ringloop::ring_stats()?.backend;
    let kind = match forced {
        None => "ringloop".to_owned(),
        Some(b) => format!("ringloop-{b}"),
    };
    announce_backend(&kind, backend.name());
    if forced.is_some_and(|b| b != backend) {
        return Err(io::Error::other(format!(
            "asked for the {} backend, the loop runs on {backend}",
            forced.map_or("", ringloop::Backend::name)
        )));
    }
    let listener = ringloop::net::TcpListener::bind(localhost0())?;
    write_port(&port_file, listener.local_addr()?.port())?;
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        ringloop::spawn(ringloop_conn(stream)).detach();
    }
}

/// `RINGLOOP_ECHO_RECV=bufring`: the ringloop server receives through
/// the loop's shared buffer group (`recv_stream`) instead of a buffer per
/// connection (`scripts/echo_revs_pair.py --base-env
/// RINGLOOP_ECHO_RECV=one-shot --new-env RINGLOOP_ECHO_RECV=bufring`
/// pairs the two).
fn bufring_recv() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("RINGLOOP_ECHO_RECV").is_ok_and(|v| v == "bufring"))
}

async fn ringloop_conn(stream: ringloop::net::TcpStream) {
    if bufring_recv() {
        return ringloop_conn_chunks(stream).await;
    }
    let mut buf = Vec::with_capacity(BUF);
    loop {
        buf.clear();
        let (res, b) = stream.read(buf).await;
        let n = match res {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        count(n);
        let (res, b) = stream.write_all(b).await;
        if res.is_err() {
            return;
        }
        buf = b;
    }
}

async fn ringloop_conn_chunks(stream: ringloop::net::TcpStream) {
    let Ok(group) = ringloop::net::BufGroup::loop_default() else {
        return;
    };
    let mut chunks = stream.recv_stream(&group);
    while let Some(Ok(chunk)) = chunks.next().await {
        count(chunk.len());
        let (res, _) = stream.write_all(chunk).await;
        if res.is_err() {
            return;
        }
    }
}

fn serve_tokio(port_file: &Path) -> io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    rt.block_on(async {
        // A `SocketAddr`, not a string: no resolver thread.
        let listener = tokio::net::TcpListener::bind(localhost0()).await?;
        write_port(port_file, listener.local_addr()?.port())?;
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
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
        count(n);
        if stream.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

struct RawConn {
    fd: RawFd,
    buf: Vec<u8>,
    len: usize,
    sent: usize,
}

const RAW_ACCEPT: u64 = u64::MAX;
const OP_RECV: u64 = 1;
const OP_SEND: u64 = 2;

fn raw_recv(key: usize, c: &mut RawConn) -> squeue::Entry {
    opcode::Recv::new(types::Fd(c.fd), c.buf.as_mut_ptr(), c.buf.len() as u32)
        .build()
        .user_data(((key as u64) << 2) | OP_RECV)
}

fn raw_send(key: usize, c: &RawConn) -> squeue::Entry {
    let rest = &c.buf[c.sent..c.len];
    opcode::Send::new(types::Fd(c.fd), rest.as_ptr(), rest.len() as u32)
        .build()
        .user_data(((key as u64) << 2) | OP_SEND)
}

fn set_nodelay(fd: RawFd) -> io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: a valid fd and a c_int option value.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The reference: what an io_uring echo server costs with no runtime.
fn serve_raw(port_file: &Path) -> io::Result<()> {
    let listener = std::net::TcpListener::bind(localhost0())?;
    let lfd = listener.as_raw_fd();
    // The same backlog as ringloop's and tokio's listeners.
    // SAFETY: a listening socket we own.
    if unsafe { libc::listen(lfd, 1024) } != 0 {
        return Err(io::Error::last_os_error());
    }
    write_port(port_file, listener.local_addr()?.port())?;
    let mut ring = build_ring(2048, 8192)?;
    let (submitter, mut sq, mut cq) = ring.split();
    let accept = opcode::Accept::new(types::Fd(lfd), std::ptr::null_mut(), std::ptr::null_mut())
        .flags(libc::SOCK_CLOEXEC)
        .build()
        .user_data(RAW_ACCEPT);
    let mut conns: slab::Slab<RawConn> = slab::Slab::new();
    // SAFETY: no buffer.
    unsafe { push(&mut sq, &submitter, &accept)? };
    loop {
        sq.sync();
        match submitter.submit_and_wait(1) {
            Ok(_) => {}
            Err(e) if is_transient(&e) => {}
            Err(e) => return Err(e),
        }
        cq.sync();
        for cqe in &mut cq {
            let (ud, res) = (cqe.user_data(), cqe.result());
            if ud == RAW_ACCEPT {
                if res >= 0 {
                    let fd = res;
                    set_nodelay(fd)?;
                    let entry = conns.vacant_entry();
                    let key = entry.key();
                    let c = entry.insert(RawConn {
                        fd,
                        buf: vec![0u8; BUF],
                        len: 0,
                        sent: 0,
                    });
                    let e = raw_recv(key, c);
                    // SAFETY: the buffer lives in the slab until the
                    // connection is closed, after its last completion.
                    unsafe { push(&mut sq, &submitter, &e)? };
                } else {
                    eprintln!("raw server: accept: {}", errno_err(res, "accept"));
                }
                // SAFETY: no buffer.
                unsafe { push(&mut sq, &submitter, &accept)? };
                continue;
            }
            let key = (ud >> 2) as usize;
            let c = &mut conns[key];
            let next = match ud & 3 {
                OP_RECV if res > 0 => {
                    count(res as usize);
                    c.len = res as usize;
                    c.sent = 0;
                    Some(raw_send(key, c))
                }
                OP_SEND if res >= 0 => {
                    c.sent += res as usize;
                    if c.sent < c.len {
                        Some(raw_send(key, c))
                    } else {
                        Some(raw_recv(key, c))
                    }
                }
                // End of stream or an error: nothing of this connection is
                // in flight any more.
                _ => None,
            };
            match next {
                // SAFETY: as above.
                Some(e) => unsafe { push(&mut sq, &submitter, &e)? },
                None => {
                    let c = conns.remove(key);
                    // SAFETY: our fd, no op in flight on it.
                    unsafe { libc::close(c.fd) };
                }
            }
        }
        cq.sync();
    }
}

// ---------------------------------------------------------------------------
// Client (load generator).

struct ClientArgs {
    addr: SocketAddr,
    conns: usize,
    size: usize,
    secs: f64,
    warmup: f64,
    msgs: Option<u64>,
    /// The CPUs to pin to: one thread per CPU, or one unpinned thread when
    /// empty.
    cpus: Vec<usize>,
}

struct ClientConn {
    fd: RawFd,
    out: Vec<u8>,
    inb: Vec<u8>,
    sent: usize,
    got: usize,
    seq: u64,
    t0: Instant,
}

const OP_C_SEND: u64 = 0;
const OP_C_RECV: u64 = 1;

fn c_send(i: usize, c: &ClientConn) -> squeue::Entry {
    let rest = &c.out[c.sent..];
    opcode::Send::new(types::Fd(c.fd), rest.as_ptr(), rest.len() as u32)
        .build()
        .user_data(((i as u64) << 1) | OP_C_SEND)
}

fn c_recv(i: usize, c: &mut ClientConn) -> squeue::Entry {
    let rest = &mut c.inb[c.got..];
    opcode::Recv::new(types::Fd(c.fd), rest.as_mut_ptr(), rest.len() as u32)
        .build()
        .user_data(((i as u64) << 1) | OP_C_RECV)
}

fn client_main(a: &ClientArgs) -> io::Result<()> {
    // One thread pinned as asked, or unpinned; several: each pinned to its
    // CPU, with its share of the connections (and of `--msgs`).
    let threads = a.cpus.len().clamp(1, a.conns);
    if threads == 1 {
        if let Some(&cpu) = a.cpus.first() {
            pin(cpu)?;
        }
    }
    let mut streams = Vec::with_capacity(a.conns);
    for _ in 0..a.conns {
        let s = std::net::TcpStream::connect(a.addr)
            .map_err(|e| io::Error::new(e.kind(), format!("connect {}: {e}", a.addr)))?;
        s.set_nodelay(true)?;
        streams.push(s);
    }
    let start = Instant::now();
    let warmup = if a.msgs.is_some() { 0.0 } else { a.warmup };
    let measure_from = start + Duration::from_secs_f64(warmup);
    let (mut lat_ns, total, end) = if threads == 1 {
        client_loop(a, &streams, 0, a.msgs, start)?
    } else {
        let per = a.conns.div_ceil(threads);
        std::thread::scope(|scope| {
            let handles: Vec<_> = streams
                .chunks(per)
                .enumerate()
                .map(|(k, chunk)| {
                    let cpu = a.cpus[k];
                    // Messages in proportion to connections, summing to `m`.
                    let upto = |i: usize| a.msgs.map(|m| m * i as u64 / a.conns as u64);
                    let msgs = upto(k * per + chunk.len())
                        .zip(upto(k * per))
                        .map(|(hi, lo)| hi - lo);
                    scope.spawn(move || {
                        pin(cpu)?;
                        client_loop(a, chunk, k * per, msgs, start)
                    })
                })
                .collect();
            let mut all = (Vec::new(), 0, start);
            for h in handles {
                let (lat, total, end) = h
                    .join()
                    .map_err(|_| io::Error::other("a client thread panicked"))??;
                all.0.extend(lat);
                all.1 += total;
                all.2 = all.2.max(end);
            }
            Ok::<_, io::Error>(all)
        })?
    };
    let window = end.duration_since(measure_from.min(end)).as_secs_f64();
    let measured = lat_ns.len() as u64;
    lat_ns.sort_unstable();
    let pct = |p: f64| -> f64 {
        if lat_ns.is_empty() {
            return 0.0;
        }
        let idx = ((lat_ns.len() as f64 * p).ceil() as usize).clamp(1, lat_ns.len()) - 1;
        f64::from(lat_ns[idx]) / 1000.0
    };
    let (user, sys) = cpu_time_us();
    println!(
        "RESULT client conns={} size={} msgs={measured} secs={window:.4} msgs_per_s={:.1} \
         p50_us={:.2} p99_us={:.2} total_msgs={total} user_us={user} sys_us={sys}",
        a.conns,
        a.size,
        measured as f64 / window.max(1e-9),
        pct(0.50),
        pct(0.99)
    );
    drop(streams);
    Ok(())
}

/// Drives `streams` (connections `base..`) on one ring until the deadline
/// (or until `msgs` messages were echoed): the latencies of the measured
/// messages in ns, the number of messages echoed, and when it ended.
fn client_loop(
    a: &ClientArgs,
    streams: &[std::net::TcpStream],
    base: usize,
    msgs: Option<u64>,
    start: Instant,
) -> io::Result<(Vec<u32>, u64, Instant)> {
    let mut conns: Vec<ClientConn> = streams
        .iter()
        .enumerate()
        .map(|(i, s)| ClientConn {
            fd: s.as_raw_fd(),
            // A pattern that differs per connection and per offset.
            out: (0..a.size)
                .map(|j| (j.wrapping_mul(31) ^ (base + i).wrapping_mul(7)) as u8)
                .collect(),
            inb: vec![0u8; a.size],
            sent: 0,
            got: 0,
            seq: 0,
            t0: Instant::now(),
        })
        .collect();

    let sq_entries = ((2 * conns.len() + 2) as u32).next_power_of_two().max(8);
    let mut ring = build_ring(sq_entries, 2 * sq_entries)?;
    let (submitter, mut sq, mut cq) = ring.split();

    let warmup = if msgs.is_some() { 0.0 } else { a.warmup };
    let measure_from = start + Duration::from_secs_f64(warmup);
    let deadline = measure_from + Duration::from_secs_f64(a.secs);
    let mut lat_ns: Vec<u32> = Vec::with_capacity(1 << 20);
    let mut started: u64 = 0;
    let mut total: u64 = 0;
    let mut active = conns.len();

    // Starts message `c.seq` on connection `i`: its send and its receive.
    let start_msg = |i: usize,
                     c: &mut ClientConn,
                     sq: &mut squeue::SubmissionQueue<'_>,
                     now: Instant|
     -> io::Result<()> {
        let seq = c.seq.to_le_bytes();
        let k = c.out.len().min(8);
        c.out[..k].copy_from_slice(&seq[..k]);
        c.sent = 0;
        c.got = 0;
        c.t0 = now;
        let s = c_send(i, c);
        let r = c_recv(i, c);
        // SAFETY: `out`/`inb` are not touched until both completions.
        unsafe {
            push(sq, &submitter, &s)?;
            push(sq, &submitter, &r)
        }
    };

    let now = Instant::now();
    for (i, c) in conns.iter_mut().enumerate() {
        if msgs.is_some_and(|m| started >= m) {
            active -= 1;
            continue;
        }
        start_msg(i, c, &mut sq, now)?;
        started += 1;
    }

    let wait = types::Timespec::new().sec(1);
    let args = types::SubmitArgs::new().timespec(&wait);
    let mut last_progress = Instant::now();
    while active > 0 {
        sq.sync();
        match submitter.submit_with_args(1, &args) {
            Ok(_) => {}
            Err(e) if is_transient(&e) => {}
            Err(e) => return Err(e),
        }
        cq.sync();
        if cq.is_empty() {
            if last_progress.elapsed() > Duration::from_secs(10) {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "no echo for 10 s with {active} messages outstanding ({total} done): \
                         the server stalled"
                    ),
                ));
            }
            continue;
        }
        last_progress = Instant::now();
        let mut now = None;
        for cqe in &mut cq {
            let (ud, res): (u64, i32) = (cqe.user_data(), cqe.result());
            let i = (ud >> 1) as usize;
            let c = &mut conns[i];
            if res < 0 {
                return Err(errno_err(
                    res,
                    &format!(
                        "conn {i} message {}: {}",
                        c.seq,
                        ["send", "recv"][(ud & 1) as usize]
                    ),
                ));
            }
            let n = res as usize;
            if ud & 1 == OP_C_SEND {
                c.sent += n;
                if c.sent < a.size {
                    let e = c_send(i, c);
                    // SAFETY: as in `start_msg`.
                    unsafe { push(&mut sq, &submitter, &e)? };
                    continue;
                }
            } else {
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "conn {i}: the server closed the connection during message {} \
                             ({} of {} bytes back)",
                            c.seq, c.got, a.size
                        ),
                    ));
                }
                c.got += n;
                if c.got < a.size {
                    let e = c_recv(i, c);
                    // SAFETY: as in `start_msg`.
                    unsafe { push(&mut sq, &submitter, &e)? };
                    continue;
                }
            }
            if c.sent < a.size || c.got < a.size {
                continue;
            }
            // Both done: check every byte.
            if c.inb != c.out {
                let at = c
                    .inb
                    .iter()
                    .zip(&c.out)
                    .position(|(x, y)| x != y)
                    .unwrap_or(0);
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "conn {i} message {}: echo differs at byte {at} (got {:#04x}, sent {:#04x})",
                        c.seq, c.inb[at], c.out[at]
                    ),
                ));
            }
            let t = *now.get_or_insert_with(Instant::now);
            if c.t0 >= measure_from {
                let ns = t.duration_since(c.t0).as_nanos().min(u128::from(u32::MAX)) as u32;
                lat_ns.push(ns);
            }
            total += 1;
            c.seq += 1;
            let more = match msgs {
                Some(m) => started < m,
                None => t < deadline,
            };
            if more {
                start_msg(i, c, &mut sq, t)?;
                started += 1;
            } else {
                active -= 1;
            }
        }
        cq.sync();
        if msgs.is_some() && start.elapsed().as_secs_f64() > a.secs {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "only {total} of {} messages echoed within the {} s limit",
                    msgs.unwrap_or(0),
                    a.secs
                ),
            ));
        }
    }
    Ok((lat_ns, total, Instant::now()))
}

// ---------------------------------------------------------------------------
// Orchestration.

fn kv(line: &str) -> std::collections::HashMap<String, String> {
    line.split_whitespace()
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn num(m: &std::collections::HashMap<String, String>, k: &str) -> Result<f64, String> {
    m.get(k)
        .and_then(|v| v.parse::<f64>().ok())
        .ok_or_else(|| format!("missing {k} in result line"))
}

/// Waits for `child` at most `limit` (killing it past that) and wants a
/// successful exit unless `any_status`.
fn wait_limit(
    child: &mut Child,
    limit: Duration,
    what: &str,
    any_status: bool,
) -> Result<(), String> {
    let t0 = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(st)) if any_status || st.success() => return Ok(()),
            Ok(Some(st)) => return Err(format!("{what} exited with {st}")),
            Ok(None) if t0.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{what} killed after {limit:?} (hung?)"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("{what}: wait: {e}")),
        }
    }
}

fn read_all(r: Option<impl Read>) -> String {
    let mut s = String::new();
    if let Some(mut r) = r {
        let _ = r.read_to_string(&mut s);
    }
    s
}

fn result_line<'a>(out: &'a str, prefix: &str) -> Option<&'a str> {
    out.lines().find(|l| l.starts_with(prefix))
}

struct Measure {
    msgs_per_s: f64,
    p50_us: f64,
    p99_us: f64,
    cpu_us_per_msg: f64,
    total_msgs: u64,
    /// strace's per-syscall or perf's per-event counts, when traced.
    syscalls: Vec<(String, u64)>,
    /// `perf report`'s self-time per (shared object, symbol), when profiled.
    profile: Vec<profile::Entry>,
    /// The server's result line, as key=value pairs.
    server: std::collections::HashMap<String, String>,
}

struct Point {
    conns: usize,
    size: usize,
    secs: f64,
    warmup: f64,
    msgs: Option<u64>,
    /// Where the load generator runs: one thread per CPU listed, or one
    /// unpinned thread when empty.
    client_cpus: Vec<usize>,
    /// Where the server may run (empty: its default, see `server_main`).
    server_cpus: Vec<usize>,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

/// How to count the server's syscalls while the client runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Trace {
    None,
    /// `strace -c -f -e trace=… -p PID` (what BENCHMARKING.md asks for; it
    /// stops the server at each traced syscall, which changes batching).
    Strace,
    /// `perf stat -e raw_syscalls:sys_enter,… -p PID`: counts every
    /// syscall through tracepoints, without stopping the server.
    Perf,
    /// `perf record -e cpu-clock -p PID`, then `perf report`: where the
    /// server's CPU time goes (`echo/profile.rs`).
    Record,
}

const PERF_EVENTS: &str = "raw_syscalls:sys_enter,syscalls:sys_enter_io_uring_enter";

/// Runs one server and one client process, counting the server's syscalls
/// as `trace` says.
fn measure(exe: &Path, server: &str, p: &Point, trace: Trace) -> Result<Measure, String> {
    let port_file = std::env::temp_dir().join(format!(
        "ringloop-echo-{}-{}.port",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&port_file);
    let mut srv = Command::new(exe);
    srv.arg("server").arg(server).arg(&port_file);
    if !p.server_cpus.is_empty() {
        srv.arg("--cpus").arg(cpus_arg(&p.server_cpus));
    }
    let mut srv = srv
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("spawn server: {e}"))?;
    let res = measure_with(exe, server, p, trace, &mut srv, &port_file);
    // Close its stdin: the server reports and exits.
    drop(srv.stdin.take());
    let stopped = wait_limit(
        &mut srv,
        Duration::from_secs(10),
        &format!("{server} server"),
        false,
    );
    let out = read_all(srv.stdout.take());
    let _ = std::fs::remove_file(&port_file);
    let _ = std::fs::remove_file(port_file.with_extension("trace"));
    let _ = std::fs::remove_file(port_file.with_extension("tmp"));
    let (mut m, client_total) = res?;
    stopped?;
    let line = result_line(&out, "RESULT server")
        .ok_or_else(|| format!("{server} server printed no result (its output: {out:?})"))?;
    let s = kv(line);
    let backend = s.get("backend").map_or("unknown", String::as_str);
    if let Some(want) = expected_backend(server).filter(|&w| w != backend) {
        return Err(format!(
            "{server} server ran on the {backend} backend, not {want}: not measured"
        ));
    }
    let cpu_us = num(&s, "user_us")? + num(&s, "sys_us")?;
    let bytes = num(&s, "bytes")? as u64;
    let expect = client_total * p.size as u64;
    if bytes != expect {
        return Err(format!(
            "{server} server received {bytes} bytes but the client verified {client_total} \
             messages of {} B = {expect} bytes",
            p.size
        ));
    }
    m.total_msgs = client_total;
    m.cpu_us_per_msg = cpu_us / client_total.max(1) as f64;
    m.server = s;
    Ok(m)
}

fn measure_with(
    exe: &Path,
    server: &str,
    p: &Point,
    trace: Trace,
    srv: &mut Child,
    port_file: &Path,
) -> Result<(Measure, u64), String> {
    let t0 = Instant::now();
    let port: u16 = loop {
        if let Ok(s) = std::fs::read_to_string(port_file) {
            if let Ok(port) = s.trim().parse() {
                break port;
            }
        }
        if let Ok(Some(st)) = srv.try_wait() {
            return Err(format!("{server} server exited at start-up with {st}"));
        }
        if t0.elapsed() > Duration::from_secs(10) {
            return Err(format!("{server} server wrote no port within 10 s"));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));

    let trace_file = port_file.with_extension("trace");
    let mut tracer = match trace {
        Trace::None => None,
        Trace::Strace => {
            let mut t = Command::new("strace")
                .args(["-c", "-f", "-e", &format!("trace={STRACE_SYSCALLS}"), "-o"])
                .arg(&trace_file)
                .arg("-p")
                .arg(srv.id().to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| format!("spawn strace: {e}"))?;
            // Wait until strace says it attached.
            let stderr = t.stderr.take().expect("piped");
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
            let mut seen = Vec::new();
            loop {
                match rx.recv_timeout(Duration::from_secs(10)) {
                    Ok(l) if l.contains("attached") => break,
                    Ok(l) => seen.push(l),
                    Err(_) => {
                        let _ = t.kill();
                        let _ = t.wait();
                        return Err(format!("strace did not attach: {seen:?}"));
                    }
                }
            }
            // Let it attach to every thread.
            std::thread::sleep(Duration::from_millis(200));
            Some(t)
        }
        Trace::Perf => {
            let mut t = Command::new("perf")
                .args(["stat", "-x", ",", "-e", PERF_EVENTS, "-o"])
                .arg(&trace_file)
                .arg("-p")
                .arg(srv.id().to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| format!("spawn perf: {e}"))?;
            std::thread::sleep(Duration::from_millis(300));
            if let Ok(Some(st)) = t.try_wait() {
                let err = read_all(t.stderr.take());
                return Err(format!("perf stat exited at once ({st}): {}", err.trim()));
            }
            Some(t)
        }
        Trace::Record => Some(profile::start(srv.id(), &trace_file)?),
    };

    let mut cmd = Command::new(exe);
    cmd.arg("client")
        .arg(addr.to_string())
        .arg(p.conns.to_string())
        .arg(p.size.to_string())
        .arg(p.secs.to_string())
        .arg("--warmup")
        .arg(p.warmup.to_string());
    if let Some(n) = p.msgs {
        cmd.arg("--msgs").arg(n.to_string());
    }
    cmd.arg("--cpu").arg(cpus_arg(&p.client_cpus));
    let mut cli = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn client: {e}"))?;
    let limit = Duration::from_secs_f64(p.warmup + p.secs + 60.0);
    let waited = wait_limit(&mut cli, limit, "client", false);
    let out = read_all(cli.stdout.take());
    let err = read_all(cli.stderr.take());

    let mut profile = Ok(Vec::new());
    let syscalls = match tracer.as_mut() {
        Some(t) => {
            // SAFETY: signalling our own child. strace/perf detach, write
            // their summary and end.
            unsafe { libc::kill(t.id() as libc::pid_t, libc::SIGINT) };
            wait_limit(t, Duration::from_secs(30), "tracer", true)?;
            if trace == Trace::Record {
                profile = profile::report(&trace_file);
                let _ = std::fs::remove_file(&trace_file);
                Vec::new()
            } else {
                let text = std::fs::read_to_string(&trace_file)
                    .map_err(|e| format!("read {}: {e}", trace_file.display()))?;
                let _ = std::fs::remove_file(&trace_file);
                if trace == Trace::Perf {
                    parse_perf(&text)?
                } else {
                    parse_strace(&text)?
                }
            }
        }
        None => Vec::new(),
    };
    let profile = profile?;
    waited.map_err(|e| format!("{e}: {}", err.trim()))?;
    let line = result_line(&out, "RESULT client")
        .ok_or_else(|| format!("client printed no result: {}", err.trim()))?;
    let c = kv(line);
    Ok((
        Measure {
            msgs_per_s: num(&c, "msgs_per_s")?,
            p50_us: num(&c, "p50_us")?,
            p99_us: num(&c, "p99_us")?,
            cpu_us_per_msg: 0.0,
            total_msgs: 0,
            syscalls,
            profile,
            server: Default::default(),
        },
        num(&c, "total_msgs")? as u64,
    ))
}

/// Event counts from `perf stat -x ,` output.
fn parse_perf(text: &str) -> Result<Vec<(String, u64)>, String> {
    let mut v = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() >= 3 && !line.starts_with('#') {
            let n = f[0].trim().parse::<u64>().map_err(|_| {
                format!("perf stat could not count {} ({:?}): {text:?}", f[2], f[0])
            })?;
            v.push((f[2].to_owned(), n));
        }
    }
    if v.is_empty() {
        return Err(format!("cannot parse perf stat output: {text:?}"));
    }
    Ok(v)
}

/// Per-syscall call counts from `strace -c` output.
fn parse_strace(text: &str) -> Result<Vec<(String, u64)>, String> {
    let mut v = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        // % time, seconds, usecs/call, calls, [errors], syscall
        if f.len() < 5 || f[0].starts_with('%') || f[0].starts_with('-') {
            continue;
        }
        let name = f[f.len() - 1];
        if name == "total" {
            continue;
        }
        if let Ok(calls) = f[3].parse::<u64>() {
            v.push((name.to_owned(), calls));
        }
    }
    if v.is_empty() && !text.contains("total") {
        return Err(format!("cannot parse strace output: {text:?}"));
    }
    Ok(v)
}

// ---------------------------------------------------------------------------
// Statistics and tables.

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn fmt_num(x: f64) -> String {
    if x.abs() >= 1000.0 {
        let s = format!("{:.0}", x.abs());
        let mut out = String::new();
        for (i, ch) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(ch);
        }
        if x < 0.0 { format!("-{out}") } else { out }
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

fn fmt_ratio(x: f64) -> String {
    format!("{x:.2}")
}

/// "median (min–max)", with "[k/n runs]" when some runs failed.
fn cell(xs: &[f64], runs: usize, f: fn(f64) -> String) -> String {
    if xs.is_empty() {
        return "FAILED".to_owned();
    }
    let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut s = f(median(xs));
    if xs.len() > 1 {
        s += &format!(" ({}–{})", f(lo), f(hi));
    }
    if xs.len() < runs {
        s += &format!(" [{}/{runs} runs]", xs.len());
    }
    s
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

/// Results of one (conns, size) point: per run, per server.
struct PointResult {
    conns: usize,
    size: usize,
    load: String,
    runs: Vec<[Option<Measure>; 3]>,
}

impl PointResult {
    fn values(&self, s: usize, f: fn(&Measure) -> f64) -> Vec<f64> {
        self.runs
            .iter()
            .filter_map(|r| r[s].as_ref().map(f))
            .collect()
    }
    /// Per-run ratio server `a` / server `b`.
    fn ratios(&self, a: usize, b: usize, f: fn(&Measure) -> f64) -> Vec<f64> {
        self.runs
            .iter()
            .filter_map(|r| match (&r[a], &r[b]) {
                (Some(x), Some(y)) if f(y) > 0.0 => Some(f(x) / f(y)),
                _ => None,
            })
            .collect()
    }
}

fn size_label(size: usize) -> String {
    if size >= 1024 && size % 1024 == 0 {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}

const RL: usize = 0;
const TK: usize = 1;
const RAW: usize = 2;

fn matrix_tables(points: &[PointResult], runs: usize, secs: f64, warmup: f64) -> String {
    let mut s = String::new();
    let w = &mut s;
    let tput = |m: &Measure| m.msgs_per_s;
    let cpu = |m: &Measure| m.cpu_us_per_msg;
    let _ = writeln!(
        w,
        "Each cell: median over {runs} runs (min–max across runs). A run = one fresh server \
         process of each kind in turn (ringloop, tokio, raw), each measured for {secs} s after \
         {warmup} s of warmup. Ratios are computed within a run, then the median is taken. \
         `load` is the 1-minute load average when the point started (above ~1, other processes \
         competed for the 2 cores).\n"
    );
    // The `ringloop` server runs on the loop's default backend: name it.
    let mut backends: Vec<&str> = points
        .iter()
        .flat_map(|p| &p.runs)
        .filter_map(|r| r[RL].as_ref())
        .filter_map(|m| m.server.get("backend").map(String::as_str))
        .collect();
    backends.sort_unstable();
    backends.dedup();
    let _ = writeln!(
        w,
        "`ringloop` runs on the loop's default backend (`ringloop::run`): {} in these runs.\n",
        if backends.is_empty() {
            "unknown".to_owned()
        } else {
            backends.join(" and ")
        }
    );
    let _ = writeln!(w, "### Throughput (msgs/s; higher is better)\n");
    let _ = writeln!(
        w,
        "| conns | size | load | ringloop | tokio | raw io-uring | ringloop/tokio | ringloop/raw | raw/tokio |"
    );
    let _ = writeln!(
        w,
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for p in points {
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            p.conns,
            size_label(p.size),
            p.load,
            cell(&p.values(RL, tput), runs, fmt_num),
            cell(&p.values(TK, tput), runs, fmt_num),
            cell(&p.values(RAW, tput), runs, fmt_num),
            cell(&p.ratios(RL, TK, tput), runs, fmt_ratio),
            cell(&p.ratios(RL, RAW, tput), runs, fmt_ratio),
            cell(&p.ratios(RAW, TK, tput), runs, fmt_ratio),
        );
    }
    let _ = writeln!(
        w,
        "\n### Server CPU per message (µs, user + system, `getrusage`; lower is better)\n"
    );
    let _ = writeln!(
        w,
        "| conns | size | ringloop | tokio | raw io-uring | ringloop/tokio | ringloop/raw | raw/tokio |"
    );
    let _ = writeln!(
        w,
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for p in points {
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            p.conns,
            size_label(p.size),
            cell(&p.values(RL, cpu), runs, fmt_num),
            cell(&p.values(TK, cpu), runs, fmt_num),
            cell(&p.values(RAW, cpu), runs, fmt_num),
            cell(&p.ratios(RL, TK, cpu), runs, fmt_ratio),
            cell(&p.ratios(RL, RAW, cpu), runs, fmt_ratio),
            cell(&p.ratios(RAW, TK, cpu), runs, fmt_ratio),
        );
    }
    let _ = writeln!(
        w,
        "\n### Latency per message, p50 / p99 (µs, send to last byte back; medians over runs)\n"
    );
    let _ = writeln!(w, "| conns | size | ringloop | tokio | raw io-uring |");
    let _ = writeln!(w, "| ---: | ---: | ---: | ---: | ---: |");
    for p in points {
        let lat = |s: usize| {
            let a = p.values(s, |m| m.p50_us);
            let b = p.values(s, |m| m.p99_us);
            if a.is_empty() {
                "FAILED".to_owned()
            } else {
                format!("{} / {}", fmt_num(median(&a)), fmt_num(median(&b)))
            }
        };
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} |",
            p.conns,
            size_label(p.size),
            lat(RL),
            lat(TK),
            lat(RAW)
        );
    }
    if let Some(p) = points.iter().find(|p| p.conns == 100 && p.size == 64) {
        let _ = writeln!(w, "\n### Targets (100 connections × 64 B)\n");
        let _ = writeln!(w, "| target | measured (median, min–max) | met? |");
        let _ = writeln!(w, "| --- | --- | --- |");
        // (target, per-run ratios, bound, whether the ratio must be at least
        // the bound rather than at most).
        let rows = [
            (
                "ringloop msgs/s ≥ 0.95 × raw",
                p.ratios(RL, RAW, tput),
                0.95,
                true,
            ),
            (
                "ringloop CPU/msg ≤ 1.05 × raw",
                p.ratios(RL, RAW, cpu),
                1.05,
                false,
            ),
            (
                "ringloop msgs/s ≥ 1.1 × tokio",
                p.ratios(RL, TK, tput),
                1.1,
                true,
            ),
            (
                "ringloop CPU/msg ≤ 0.9 × tokio",
                p.ratios(RL, TK, cpu),
                0.9,
                false,
            ),
        ];
        for (name, xs, bound, at_least) in rows {
            let met = if xs.is_empty() {
                "—"
            } else if (median(&xs) >= bound) == at_least || median(&xs) == bound {
                "met"
            } else {
                "**not met**"
            };
            let _ = writeln!(
                w,
                "| {name} | {} | {met} |",
                cell(&xs, runs, |x| format!("{x:.3}"))
            );
        }
    }
    s
}

fn opt<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> Result<T, String> {
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .ok_or(format!("{name} needs a value"))?
            .parse()
            .map_err(|_| format!("bad value for {name}: {:?}", args[i + 1])),
        None => Ok(default),
    }
}

fn opt_list(args: &[String], name: &str, default: &[usize]) -> Result<Vec<usize>, String> {
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .ok_or(format!("{name} needs a value"))?
            .split(',')
            .map(|x| {
                x.trim()
                    .parse()
                    .map_err(|_| format!("bad {name} item {x:?}"))
            })
            .collect(),
        None => Ok(default.to_vec()),
    }
}

fn write_out(args: &[String], text: &str) -> Result<(), String> {
    if let Some(path) = opt::<String>(args, "--out", String::new())
        .ok()
        .filter(|p| !p.is_empty())
    {
        std::fs::write(&path, text).map_err(|e| format!("write {path}: {e}"))?;
    }
    Ok(())
}

fn matrix_main(args: &[String]) -> Result<bool, String> {
    let quick = args.iter().any(|a| a == "--quick");
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let runs: usize = opt(args, "--runs", if quick { 1 } else { 3 })?;
    let secs: f64 = opt(args, "--secs", if quick { 0.5 } else { 2.0 })?;
    let warmup: f64 = opt(args, "--warmup", if quick { 0.2 } else { 0.3 })?;
    let conns = opt_list(
        args,
        "--conns",
        if quick { &[100] } else { &[1, 16, 100, 1000] },
    )?;
    let sizes = opt_list(args, "--sizes", if quick { &[64] } else { &[64, 4096] })?;
    if runs == 0 || conns.contains(&0) || sizes.contains(&0) {
        return Err("--runs, --conns and --sizes must be at least 1".into());
    }
    let mut failures = Vec::new();
    let mut points = Vec::new();
    for &size in &sizes {
        for &c in &conns {
            let p = Point {
                conns: c,
                size,
                secs,
                warmup,
                msgs: None,
                client_cpus: vec![CLIENT_CPU],
                server_cpus: Vec::new(),
            };
            let mut pr = PointResult {
                conns: c,
                size,
                load: loadavg(),
                runs: Vec::new(),
            };
            for run in 1..=runs {
                let mut row: [Option<Measure>; 3] = [None, None, None];
                for (k, server) in SERVERS.iter().enumerate() {
                    match measure(&exe, server, &p, Trace::None) {
                        Ok(m) => {
                            eprintln!(
                                "[echo] {c} conns × {size} B run {run}/{runs} {server:>8}: \
                                 {:>9.0} msgs/s, p50 {:.1} µs, p99 {:.1} µs, server CPU \
                                 {:.2} µs/msg ({} msgs checked)",
                                m.msgs_per_s, m.p50_us, m.p99_us, m.cpu_us_per_msg, m.total_msgs
                            );
                            row[k] = Some(m);
                        }
                        Err(e) => {
                            eprintln!(
                                "[echo] {c} conns × {size} B run {run} {server}: FAILED: {e}"
                            );
                            failures
                                .push(format!("{c} conns × {size} B, run {run}, {server}: {e}"));
                        }
                    }
                }
                pr.runs.push(row);
            }
            points.push(pr);
        }
    }
    let mut text = matrix_tables(&points, runs, secs, warmup);
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

fn syscalls_main(args: &[String]) -> Result<bool, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let msgs: u64 = opt(args, "--msgs", 100_000)?;
    let conns: usize = opt(args, "--conns", 100)?;
    let size: usize = opt(args, "--size", 64)?;
    let runs: usize = opt(args, "--runs", 3)?;
    let limit: f64 = opt(args, "--limit", 300.0)?;
    let with_perf = !args.iter().any(|a| a == "--no-perf");
    let servers: Vec<String> = opt(args, "--servers", SERVERS.join(","))?
        .split(',')
        .map(str::to_owned)
        .collect();
    let client_cpus = parse_cpus(&opt(args, "--client-cpu", CLIENT_CPU.to_string())?)?;
    let server_cpus = parse_cpus(&opt(args, "--server-cpus", "none".to_owned())?)?;
    if msgs == 0 || conns == 0 || size == 0 || runs == 0 {
        return Err("--msgs, --conns, --size and --runs must be at least 1".into());
    }
    let p = Point {
        conns,
        size,
        secs: limit,
        warmup: 0.0,
        msgs: Some(msgs),
        client_cpus,
        server_cpus,
    };
    let mut failures = Vec::new();
    // Per server: strace syscalls/msg, perf all-syscalls/msg, perf
    // io_uring_enter/msg, and strace's breakdown per run.
    let n = servers.len();
    let mut st: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut pf_all: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut pf_enter: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut detail: Vec<Vec<String>> = vec![Vec::new(); n];
    let mut traces = vec![Trace::Strace];
    if with_perf {
        traces.push(Trace::Perf);
    }
    for run in 1..=runs {
        for &trace in &traces {
            for (k, server) in servers.iter().enumerate() {
                let tool = if trace == Trace::Perf {
                    "perf"
                } else {
                    "strace"
                };
                match measure(&exe, server, &p, trace) {
                    Ok(m) => {
                        let n = m.total_msgs as f64;
                        let get = |name: &str| {
                            m.syscalls
                                .iter()
                                .find(|(e, _)| e == name)
                                .map_or(0, |(_, c)| *c)
                        };
                        let mut d: Vec<String> = m
                            .syscalls
                            .iter()
                            .map(|(name, c)| format!("{name} {c}"))
                            .collect();
                        if d.is_empty() {
                            d.push("none".to_owned());
                        }
                        let d = d.join(", ");
                        if trace == Trace::Perf {
                            let all = get("raw_syscalls:sys_enter") as f64 / n;
                            let enter = get("syscalls:sys_enter_io_uring_enter") as f64 / n;
                            eprintln!(
                                "[echo] perf run {run}/{runs} {server:>8}: {all:.4} syscalls per \
                                 msg, {enter:.4} io_uring_enter per msg ({d}; {} msgs)",
                                m.total_msgs
                            );
                            pf_all[k].push(all);
                            pf_enter[k].push(enter);
                        } else {
                            let total: u64 = m.syscalls.iter().map(|(_, c)| c).sum();
                            let pm = total as f64 / n;
                            eprintln!(
                                "[echo] strace run {run}/{runs} {server:>8}: {total} over {} msgs \
                                 = {pm:.4} per msg ({d})",
                                m.total_msgs
                            );
                            st[k].push(pm);
                            detail[k].push(d);
                        }
                    }
                    Err(e) => {
                        eprintln!("[echo] {tool} run {run} {server}: FAILED: {e}");
                        failures.push(format!("{tool} run {run}, {server}: {e}"));
                    }
                }
            }
        }
    }
    let mut s = String::new();
    let w = &mut s;
    let _ = writeln!(
        w,
        "### Syscalls per message ({conns} connections × {size} B, {msgs} messages per run)\n"
    );
    let _ = writeln!(
        w,
        "- strace: `strace -c -f -e trace={STRACE_SYSCALLS} -p <server pid>`, attached before the \
         client connects and detached after it exits (connection set-up and tear-down \
         included), while the client sends exactly {msgs} messages. strace stops the server at \
         every traced syscall, which slows it and so changes how many completions each \
         `io_uring_enter` finds."
    );
    if with_perf {
        let _ = writeln!(
            w,
            "- perf: the same, counted with `perf stat -e {PERF_EVENTS} -p <server pid>` \
             (tracepoints; the server is not stopped): every syscall of the server, and its \
             `io_uring_enter`s."
        );
    }
    let _ = writeln!(
        w,
        "- Median over {runs} runs (min–max); each run traces {} in turn\
         {}.\n",
        servers.join(", "),
        if with_perf {
            " with strace, then again with perf"
        } else {
            ""
        }
    );
    let fmt4 = |x: f64| format!("{x:.4}");
    if with_perf {
        let _ = writeln!(
            w,
            "| server | strace: syscalls/msg | perf: all syscalls/msg | perf: io_uring_enter/msg | strace counts per run |"
        );
        let _ = writeln!(w, "| --- | ---: | ---: | ---: | --- |");
    } else {
        let _ = writeln!(
            w,
            "| server | strace: syscalls/msg | strace counts per run |"
        );
        let _ = writeln!(w, "| --- | ---: | --- |");
    }
    for (k, server) in servers.iter().enumerate() {
        let det = detail[k]
            .iter()
            .enumerate()
            .map(|(i, d)| format!("{}: {d}", i + 1))
            .collect::<Vec<_>>()
            .join("; ");
        if with_perf {
            let _ = writeln!(
                w,
                "| {server} | {} | {} | {} | {det} |",
                cell(&st[k], runs, fmt4),
                cell(&pf_all[k], runs, fmt4),
                cell(&pf_enter[k], runs, fmt4),
            );
        } else {
            let _ = writeln!(w, "| {server} | {} | {det} |", cell(&st[k], runs, fmt4));
        }
    }
    // The target is io_uring's: a readiness backend makes a recv and a
    // send per message.
    let rl = servers
        .iter()
        .position(|s| s == "ringloop" || s == "ringloop-io_uring")
        .filter(|&k| !st[k].is_empty());
    if let Some(rl) = rl {
        let m = median(&st[rl]);
        let _ = write!(
            w,
            "\nTarget: {} ≤ 0.06 syscalls per message (strace): {} (median {m:.4})",
            servers[rl],
            if m <= 0.06 { "met" } else { "**not met**" }
        );
        if !pf_all[rl].is_empty() {
            let m = median(&pf_all[rl]);
            let _ = write!(
                w,
                "; untraced (perf): {} (median {m:.4})",
                if m <= 0.06 { "met" } else { "**not met**" }
            );
        }
        let _ = writeln!(w, ".");
    }
    if !failures.is_empty() {
        s += "\n### Failures\n\n";
        for f in &failures {
            s += &format!("- {f}\n");
        }
    }
    println!("{s}");
    write_out(args, &s)?;
    Ok(failures.is_empty())
}

/// `none` (empty) or a comma-separated list of CPU numbers and ranges
/// (`0,2` or `8-15`).
fn parse_cpus(s: &str) -> Result<Vec<usize>, String> {
    if s == "none" {
        return Ok(Vec::new());
    }
    let mut cpus = Vec::new();
    for part in s.split(',') {
        let num = |x: &str| {
            x.trim()
                .parse::<usize>()
                .map_err(|_| format!("bad CPU {part:?} in {s:?}"))
        };
        match part.split_once('-') {
            Some((a, b)) if num(a)? <= num(b)? => cpus.extend(num(a)?..=num(b)?),
            Some(_) => return Err(format!("bad CPU range {part:?} in {s:?}")),
            None => cpus.push(num(part)?),
        }
    }
    Ok(cpus)
}

fn cpus_arg(cpus: &[usize]) -> String {
    if cpus.is_empty() {
        return "none".to_owned();
    }
    cpus.iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn parse_client(args: &[String]) -> Result<ClientArgs, String> {
    if args.len() < 4 {
        return Err(
            "usage: client <addr> <conns> <size> <secs> [--warmup S] [--msgs N] [--cpu C|none]"
                .into(),
        );
    }
    let a = ClientArgs {
        addr: args[0].parse().map_err(|e| format!("addr: {e}"))?,
        conns: args[1].parse().map_err(|e| format!("conns: {e}"))?,
        size: args[2].parse().map_err(|e| format!("size: {e}"))?,
        secs: args[3].parse().map_err(|e| format!("secs: {e}"))?,
        warmup: opt(args, "--warmup", 0.3)?,
        msgs: match args.iter().position(|a| a == "--msgs") {
            Some(_) => Some(opt(args, "--msgs", 0)?),
            None => None,
        },
        cpus: parse_cpus(&opt::<String>(args, "--cpu", CLIENT_CPU.to_string())?)?,
    };
    if a.conns == 0 || a.size == 0 || a.msgs == Some(0) {
        return Err("conns, size and --msgs must be at least 1".into());
    }
    Ok(a)
}

fn main() -> ExitCode {
    raise_nofile();
    let raw_args: Vec<String> = std::env::args().skip(1).collect();
    let mut args: Vec<String> = raw_args
        .iter()
        .filter(|a| *a != "--bench")
        .cloned()
        .collect();
    if raw_args.is_empty() {
        // `cargo test` running this bench: a sanity check, not the matrix.
        args.push("--quick".to_owned());
    }
    let mode = args.first().map(String::as_str).unwrap_or("matrix");
    let res: Result<bool, String> = match mode {
        "server" => match (args.get(1), args.get(2)) {
            (Some(kind), Some(pf)) => opt::<String>(&args, "--cpus", "none".to_owned())
                .and_then(|c| parse_cpus(&c))
                .and_then(|cpus| {
                    server_main(kind, Path::new(pf), &cpus)
                        .map(|()| true)
                        .map_err(|e| format!("{kind} server: {e}"))
                }),
            _ => Err(
                "usage: server ringloop|ringloop-io_uring|ringloop-epoll|tokio|raw|\
                 ringloop-<n>core|tokio-mt<n> <port-file> [--cpus C,…]"
                    .into(),
            ),
        },
        "client" => parse_client(&args[1..])
            .and_then(|a| client_main(&a).map_err(|e| format!("client: {e}")))
            .map(|()| true),
        "matrix" => matrix_main(&args[1..]),
        "syscalls" => syscalls_main(&args[1..]),
        "multicore" => multicore::main(&args[1..]),
        "pairs" => pairs::main(&args[1..]),
        "profile" => profile::main(&args[1..]),
        // `--quick`: the sanity check covers the multi-core servers and the
        // paired mode (and so the epoll backend) too.
        _ if args.iter().any(|a| a == "--quick") => matrix_main(&args).and_then(|ok| {
            let ok2 = multicore::main(&args)?;
            Ok(ok && ok2 && pairs::main(&args)?)
        }),
        _ if mode.starts_with("--") => matrix_main(&args),
        other => Err(format!(
            "unknown mode {other:?}: server | client | matrix | pairs | syscalls | profile | \
             multicore | --quick"
        )),
    };
    match res {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("echo: {e}");
            ExitCode::FAILURE
        }
    }
}
