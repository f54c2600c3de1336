//! HTTP/1.1 keep-alive hello world on one server core: ringloop + hyper
//! against tokio `current_thread` + the same hyper (hyper-util's `TokioIo`
//! and `TokioTimer`), and ringloop's readiness path (`HyperIo<PollIo>`)
//! against its owned-buffer-and-copy path (`HyperIo<Compat>`), all driven
//! by one load generator, in paired runs (`BENCHMARKING.md`).
//!
//! One binary, several modes (the first argument; `--bench` is ignored):
//!
//! - `server KIND PORT_FILE [--body N]`: pins itself to CPU 0, serves on 127.0.0.1
//!   port 0 (written to PORT_FILE) until its stdin closes, then prints
//!   `RESULT server kind=… cpu_us=… requests=…` (its CPU time,
//!   `getrusage(RUSAGE_SELF)`, over its whole life). KIND: `ringloop`
//!   (`HyperIo<PollIo<TcpStream>>`: POLL_ADD + non-blocking recv/send, no
//!   copy), `ringloop-copy` (`HyperIo<Compat>`: owned-buffer reads and
//!   writes through an internal buffer, one copy each way), `tokio`; a
//!   `-h2` suffix (`ringloop-h2`, `tokio-h2`) serves HTTP/2 (prior
//!   knowledge, hyper's `http2` server; stream tasks spawned on the loop by
//!   `HyperExecutor`, or by hyper-util's `TokioExecutor`).
//!   The server's loop runs on the backend `RINGLOOP_BACKEND` says.
//! - `client ADDR CONNS SECS [--body N]`: pins itself to CPU 1, opens CONNS
//!   keep-alive connections (a ringloop loop, owned-buffer I/O, the same
//!   for every server), each sending `GET /` and reading the whole
//!   response, checking every byte (status line, headers but the date's
//!   digits, body), then the next. Requests started in the first 0.3 s
//!   are checked, not timed. Prints `RESULT client reqs_per_s=… p50_us=…
//!   p99_us=… total=…`.
//! - `pairs [--conns 16,100,1000] [--pairs N] [--secs S] [--a KIND]
//!   [--b KIND] [--a-exe PATH] [--b-exe PATH] [--body N] [--out FILE]`:
//!   (`--a-exe`/`--b-exe`: that side's server from another build of this
//!   bench, to compare two commits) for each connection count, N pairs of
//!   runs of A and B (a fresh server and client process each), the order
//!   flipped every other pair; prints each pair, then the median ratio
//!   A/B of req/s and of server CPU per request with their interquartile
//!   range, and the load average; FILE gets the raw pairs (TSV). A pair
//!   during which other processes used more than 0.15 cores (their CPU
//!   time in `/proc/<pid>/stat`) is measured again, up to 3 times, then
//!   dropped from the summary; the table says how many were. `--body N`
//!   serves N-byte responses (a pattern, checked byte for byte) instead of
//!   hello world. With `-h2` kinds the load comes from `h2load` (package
//!   `nghttp2-client`; `--streams M` concurrent streams per connection,
//!   default 10), pinned to CPU 1 with `taskset`, after a 0.3 s warm-up;
//!   h2load reports no percentiles, so the latency columns are its mean
//!   and max, and responses are checked by h2load (status 2xx, none
//!   failed or errored), not byte for byte.
//! - `--quick` (and no arguments at all, as `cargo test --benches` runs
//!   it): one pair of ringloop/tokio at 100 connections, 0.5 s each, as a
//!   sanity check; the numbers mean nothing.
//!
//! `scripts/http_bench.sh` runs the full measurement.

use std::convert::Infallible;
use std::future::Future;
use std::io::{self, BufRead, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response};

const HELLO: &[u8] = b"Hello, world!\n";
const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n";
const DATE_LEN: usize = 29;
const WARMUP: Duration = Duration::from_millis(300);
/// A pair during which other processes used more CPU than this (cores) is
/// measured again, up to `RETRIES` times, then dropped from the summary.
const MAX_OTHERS: f64 = 0.15;
const RETRIES: usize = 3;

/// The response body: hello world, or `n` bytes of a pattern.
fn body(n: Option<usize>) -> Bytes {
    match n {
        None => Bytes::from_static(HELLO),
        Some(n) => (0..n).map(|i| (i % 251) as u8).collect::<Vec<u8>>().into(),
    }
}

/// hyper's response: the head up to the date, a 29-byte date, the rest.
fn expected(n: Option<usize>) -> (Vec<u8>, Vec<u8>) {
    let body = body(n);
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\ndate: ",
        body.len()
    );
    let mut tail = b"\r\n\r\n".to_vec();
    tail.extend_from_slice(&body);
    (head.into_bytes(), tail)
}

fn pin(cpu: usize) {
    // SAFETY: cpu_set_t is plain data; all-zero is an empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` is below the set's capacity (CPU 0 or 1).
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size passed.
    let r = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if r != 0 {
        eprintln!(
            "warning: cannot pin to CPU {cpu}: {}",
            io::Error::last_os_error()
        );
    }
}

fn cpu_us() -> u64 {
    // SAFETY: an all-zero rusage is valid; getrusage fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    us(ru.ru_utime) + us(ru.ru_stime)
}

async fn hello(
    _req: Request<hyper::body::Incoming>,
    served: Arc<AtomicU64>,
    body: Bytes,
) -> Result<Response<Full<Bytes>>, Infallible> {
    served.fetch_add(1, Ordering::Relaxed);
    Ok(Response::new(Full::new(body)))
}

/// Waits for stdin to close, then reports and exits the process.
fn exit_when_stdin_closes(kind: String, served: Arc<AtomicU64>) {
    std::thread::spawn(move || {
        let _ = io::stdin().read_to_end(&mut Vec::new());
        println!(
            "RESULT server kind={kind} cpu_us={} requests={}",
            cpu_us(),
            served.load(Ordering::Relaxed)
        );
        let _ = io::stdout().flush();
        std::process::exit(0);
    });
}

fn server(kind: &str, port_file: &str, body_len: Option<usize>) -> io::Result<()> {
    pin(0);
    let body = body(body_len);
    let served = Arc::new(AtomicU64::new(0));
    exit_when_stdin_closes(kind.to_owned(), served.clone());
    let announce = |addr: SocketAddr| std::fs::write(port_file, addr.port().to_string());
    // A fresh hello-world service per connection.
    let svc = move || {
        let (served, body) = (served.clone(), body.clone());
        hyper::service::service_fn(move |r| hello(r, served.clone(), body.clone()))
    };
    use hyper::server::conn::{http1, http2};
    use ringloop::hyper::{HyperExecutor, HyperIo, HyperTimer};
    let ringloop_h1 = http1::Builder::new().timer(HyperTimer).clone();
    let mut ringloop_h2 = http2::Builder::new(HyperExecutor);
    ringloop_h2.timer(HyperTimer);
    let tokio_h1 = http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .clone();
    let mut tokio_h2 = http2::Builder::new(hyper_util::rt::TokioExecutor::new());
    tokio_h2.timer(hyper_util::rt::TokioTimer::new());
    match kind {
        "ringloop" => ringloop_accept_loop(announce, |s| {
            let conn = ringloop_h1.serve_connection(HyperIo::from(s), svc());
            async move { drop(conn.await) }
        }),
        "ringloop-copy" => ringloop_accept_loop(announce, |s| {
            let conn = ringloop_h1.serve_connection(HyperIo::new(s.into_compat()), svc());
            async move { drop(conn.await) }
        }),
        "ringloop-h2" => ringloop_accept_loop(announce, |s| {
            let conn = ringloop_h2.serve_connection(HyperIo::from(s), svc());
            async move { drop(conn.await) }
        }),
        "tokio" => tokio_accept_loop(announce, |s| {
            let conn = tokio_h1.serve_connection(hyper_util::rt::TokioIo::new(s), svc());
            async move { drop(conn.await) }
        }),
        "tokio-h2" => tokio_accept_loop(announce, |s| {
            let conn = tokio_h2.serve_connection(hyper_util::rt::TokioIo::new(s), svc());
            async move { drop(conn.await) }
        }),
        other => Err(io::Error::other(format!("unknown server kind {other:?}"))),
    }
}

/// ringloop's accept loop on 127.0.0.1 port 0 (announced): TCP_NODELAY on
/// each connection, then `conn`'s future as a task of its own.
fn ringloop_accept_loop<F: Future<Output = ()> + 'static>(
    announce: impl Fn(SocketAddr) -> io::Result<()>,
    conn: impl Fn(ringloop::net::TcpStream) -> F,
) -> io::Result<()> {
    ringloop::run(async move {
        let listener = ringloop::net::TcpListener::bind("127.0.0.1:0")?;
        announce(listener.local_addr()?)?;
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            ringloop::spawn(conn(stream)).detach();
        }
    })?
}

/// The same on tokio's `current_thread` runtime (`tokio::spawn`).
fn tokio_accept_loop<F: Future<Output = ()> + Send + 'static>(
    announce: impl Fn(SocketAddr) -> io::Result<()>,
    conn: impl Fn(tokio::net::TcpStream) -> F,
) -> io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        announce(listener.local_addr()?)?;
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            tokio::spawn(conn(stream));
        }
    })
}

/// Runs h2load against `port` (pinned to CPU 1): `(req/s, mean µs, max
/// µs, requests that succeeded)`.
fn h2load(port: u16, conns: usize, streams: usize, secs: f64) -> io::Result<(f64, f64, f64, f64)> {
    let out = Command::new("taskset")
        .args(["-c", "1", "h2load", "-c", &conns.to_string(), "-t", "1"])
        .args(["-m", &streams.to_string()])
        .arg(format!("--duration={}ms", (secs * 1000.0) as u64))
        .arg("--warm-up-time=300ms")
        .arg(format!("http://127.0.0.1:{port}/"))
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("h2load (apt-get install nghttp2-client): {e}"),
            )
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    let bad = || io::Error::other(format!("unexpected h2load output:\n{text}"));
    if !out.status.success() {
        return Err(bad());
    }
    let line = |prefix: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .ok_or_else(bad)
    };
    // "finished in 1.50s, 123456.78 req/s, 12.34MB/s"
    let rps: f64 = line("finished in")?
        .split(", ")
        .find_map(|f| f.strip_suffix(" req/s"))
        .and_then(|v| v.parse().ok())
        .ok_or_else(bad)?;
    // "requests: N total, N started, N done, N succeeded, N failed, N errored, N timeout"
    let counts = line("requests:")?;
    let count = |what: &str| -> io::Result<f64> {
        counts
            .split(", ")
            .find_map(|f| f.trim_start_matches("requests: ").strip_suffix(what))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(bad)
    };
    let (ok, failed, errored) = (count(" succeeded")?, count(" failed")?, count(" errored")?);
    if failed + errored > 0.0 || ok == 0.0 {
        return Err(io::Error::other(format!("h2load: {counts}")));
    }
    // "time for request:   123us   4.56ms   234us   12us   80.00%" (min max mean sd)
    let us = |v: &str| -> Option<f64> {
        let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic())?);
        let n: f64 = num.parse().ok()?;
        Some(match unit {
            "us" => n,
            "ms" => n * 1e3,
            "s" => n * 1e6,
            _ => return None,
        })
    };
    let times: Vec<&str> = line("time for request:")?
        .trim_start()
        .trim_start_matches("time for request:")
        .split_whitespace()
        .collect();
    let (max, mean) = match times[..] {
        [_, max, mean, ..] => (us(max).ok_or_else(bad)?, us(mean).ok_or_else(bad)?),
        _ => return Err(bad()),
    };
    Ok((rps, mean, max, ok))
}

/// Checks one response, byte by byte (the date's digits aside).
fn check(resp: &[u8], head: &[u8], tail: &[u8]) -> Result<(), String> {
    let date = &resp[head.len()..head.len() + DATE_LEN];
    if resp.starts_with(head) && resp.ends_with(tail) && date.ends_with(b" GMT") {
        Ok(())
    } else {
        Err(format!("bad response {:?}", String::from_utf8_lossy(resp)))
    }
}

fn client(addr: SocketAddr, conns: usize, secs: f64, body_len: Option<usize>) -> io::Result<()> {
    pin(1);
    let (head, tail) = expected(body_len);
    let response_len = head.len() + DATE_LEN + tail.len();
    let (head, tail) = (Rc::new(head), Rc::new(tail));
    ringloop::run(async move {
        let mut streams = Vec::with_capacity(conns);
        for _ in 0..conns {
            let s = ringloop::net::TcpStream::connect(addr).await?;
            s.set_nodelay(true)?;
            streams.push(s);
        }
        let start = Instant::now();
        let timed_from = start + WARMUP;
        let end = timed_from + Duration::from_secs_f64(secs);
        let lat: Rc<std::cell::RefCell<Vec<u32>>> = Rc::default();
        let total = Rc::new(std::cell::Cell::new(0u64));
        let tasks: Vec<_> = streams
            .into_iter()
            .map(|s| {
                let (lat, total) = (lat.clone(), total.clone());
                let (head, tail) = (head.clone(), tail.clone());
                ringloop::spawn(async move {
                    let mut req = REQUEST.to_vec();
                    let mut resp = Vec::with_capacity(response_len);
                    loop {
                        let t0 = Instant::now();
                        if t0 >= end {
                            return Ok::<(), io::Error>(());
                        }
                        let (res, r) = s.write_all(req).await;
                        req = r;
                        res?;
                        resp.clear();
                        let (res, r) = s.read_exact(resp).await;
                        resp = r;
                        res?;
                        check(&resp, &head, &tail).map_err(io::Error::other)?;
                        total.set(total.get() + 1);
                        if t0 >= timed_from {
                            lat.borrow_mut().push(t0.elapsed().as_micros() as u32);
                        }
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.map_err(|e| io::Error::other(e.to_string()))??;
        }
        let mut lat = lat.take();
        lat.sort_unstable();
        let pct =
            |p: f64| lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)));
        println!(
            "RESULT client reqs_per_s={:.0} p50_us={} p99_us={} total={}",
            lat.len() as f64 / secs,
            pct(0.5).copied().unwrap_or(0),
            pct(0.99).copied().unwrap_or(0),
            total.get()
        );
        Ok(())
    })?
}

/// `key=value` fields of a `RESULT` line.
fn field(line: &str, key: &str) -> f64 {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {line:?}"))
}

fn result_line(out: impl Read) -> String {
    io::BufReader::new(out)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.starts_with("RESULT"))
        .unwrap_or_default()
}

/// One measurement: a fresh server of `kind` and a client against it.
struct Run {
    rps: f64,
    cpu_us_per_req: f64,
    p50: f64,
    p99: f64,
    /// CPU other processes used while the client ran, in cores.
    others: f64,
}

/// CPU time (clock ticks) of every process but `exclude`, by pid.
fn cpu_ticks_by_pid(exclude: &[u32]) -> std::collections::HashMap<u32, u64> {
    let mut ticks = std::collections::HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return ticks;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if exclude.contains(&pid) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the command's closing parenthesis: state is the
        // 3rd field of the line, utime and stime the 14th and 15th.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let t = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        ticks.insert(pid, t(11) + t(12));
    }
    ticks
}

/// Cores other processes used between two snapshots `secs` apart (a
/// process that started in between counts whole; one that ended, not).
fn others_cores(
    before: &std::collections::HashMap<u32, u64>,
    after: &std::collections::HashMap<u32, u64>,
    secs: f64,
) -> f64 {
    // SAFETY: sysconf takes no pointer.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let ticks: u64 = after
        .iter()
        .map(|(pid, t)| t.saturating_sub(*before.get(pid).unwrap_or(&0)))
        .sum();
    ticks as f64 / hz / secs.max(1e-3)
}

fn one_run(
    kind: &str,
    server_exe: Option<&str>,
    conns: usize,
    streams: usize,
    secs: f64,
    body: &[String],
) -> io::Result<Run> {
    let exe = std::env::current_exe()?;
    let server_exe = server_exe.map_or(exe.clone(), std::path::PathBuf::from);
    let port_file = std::env::temp_dir().join(format!("ringloop-http-{}", std::process::id()));
    let _ = std::fs::remove_file(&port_file);
    let server = Command::new(&server_exe)
        .args(["server", kind])
        .arg(&port_file)
        .args(body)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut server = Reap(server);
    let t0 = Instant::now();
    let port = loop {
        if let Ok(p) = std::fs::read_to_string(&port_file)
            && let Ok(p) = p.trim().parse::<u16>()
        {
            break p;
        }
        if t0.elapsed() > Duration::from_secs(10) {
            return Err(io::Error::other(format!("{kind} server did not start")));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let _ = std::fs::remove_file(&port_file);
    if kind.ends_with("-h2") {
        let ours = [std::process::id(), server.0.id()];
        let (snap0, t0) = (cpu_ticks_by_pid(&ours), Instant::now());
        let (rps, mean, max, ok) = h2load(port, conns, streams, secs)?;
        // h2load has exited and been reaped by now: its CPU time is not
        // in the second snapshot, so not counted as another process's.
        let others = others_cores(&snap0, &cpu_ticks_by_pid(&ours), t0.elapsed().as_secs_f64());
        drop(server.0.stdin.take());
        let sline = result_line(server.0.stdout.take().expect("piped"));
        let requests = field(&sline, "requests");
        if requests < ok {
            return Err(io::Error::other(format!(
                "{kind}: server served {requests} requests, h2load saw {ok} succeed"
            )));
        }
        return Ok(Run {
            rps,
            cpu_us_per_req: field(&sline, "cpu_us") / requests.max(1.0),
            p50: mean,
            p99: max,
            others,
        });
    }
    let mut client = Command::new(&exe)
        .args(["client", &format!("127.0.0.1:{port}"), &conns.to_string()])
        .arg(secs.to_string())
        .args(body)
        // The load generator is the same for every server: the default
        // backend, whatever the server runs on.
        .env_remove("RINGLOOP_BACKEND")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let ours = [std::process::id(), server.0.id(), client.id()];
    let (snap0, t0) = (cpu_ticks_by_pid(&ours), Instant::now());
    let mut stdout = Vec::new();
    if let Some(mut o) = client.stdout.take() {
        o.read_to_end(&mut stdout)?;
    }
    let status = client.wait()?;
    let others = others_cores(&snap0, &cpu_ticks_by_pid(&ours), t0.elapsed().as_secs_f64());
    let out = std::process::Output {
        status,
        stdout,
        stderr: Vec::new(),
    };
    let cline = result_line(&out.stdout[..]);
    if !out.status.success() || cline.is_empty() {
        return Err(io::Error::other(format!("client failed against {kind}")));
    }
    drop(server.0.stdin.take());
    let sline = result_line(server.0.stdout.take().expect("piped"));
    let requests = field(&sline, "requests");
    let total = field(&cline, "total");
    if requests != total {
        return Err(io::Error::other(format!(
            "{kind}: server served {requests} requests, client checked {total}"
        )));
    }
    Ok(Run {
        rps: field(&cline, "reqs_per_s"),
        cpu_us_per_req: field(&sline, "cpu_us") / requests.max(1.0),
        p50: field(&cline, "p50_us"),
        p99: field(&cline, "p99_us"),
        others,
    })
}

struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn quartiles(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    // Linear interpolation between the closest ranks.
    let at = |q: f64| {
        let x = (v.len() - 1) as f64 * q;
        let (lo, hi) = (x.floor() as usize, x.ceil() as usize);
        v[lo] + (v[hi] - v[lo]) * (x - lo as f64)
    };
    (at(0.25), at(0.5), at(0.75))
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

struct PairsArgs {
    conns: Vec<usize>,
    pairs: usize,
    secs: f64,
    a: String,
    b: String,
    /// `--a-exe`/`--b-exe PATH`: that side's server from another build
    /// of this bench (e.g. a base commit's), same kind.
    a_exe: Option<String>,
    b_exe: Option<String>,
    out: Option<String>,
    /// `--body N`: N-byte responses instead of hello world.
    body: Option<usize>,
    /// `--streams M`: h2load's concurrent streams per connection (`-h2`
    /// kinds).
    streams: usize,
}

fn pairs(mut p: PairsArgs) -> io::Result<()> {
    // A side served by another build is named after it too.
    let label = |kind: &str, exe: &Option<String>| match exe {
        Some(e) => format!("{kind}@{}", e.rsplit('/').next().unwrap_or(e)),
        None => kind.to_owned(),
    };
    let (label_a, label_b) = (label(&p.a, &p.a_exe), label(&p.b, &p.b_exe));
    let kind_a = std::mem::replace(&mut p.a, label_a);
    let kind_b = std::mem::replace(&mut p.b, label_b);
    let backend = std::env::var("RINGLOOP_BACKEND").unwrap_or_else(|_| "auto".into());
    println!(
        "# {} vs {}, {}: {} pairs of {} s runs per point; ringloop backend {backend}; load {}",
        p.a,
        p.b,
        p.body
            .map_or("hello world".to_owned(), |n| format!("{n}-byte responses")),
        p.pairs,
        p.secs,
        loadavg()
    );
    let body_args: Vec<String> = p
        .body
        .map(|n| vec!["--body".into(), n.to_string()])
        .unwrap_or_default();
    let mut tsv = String::from(
        "conns\tpair\tside:kind\treqs_per_s\tcpu_us_per_req\tp50_us\tp99_us\tothers_cores\tattempt\n",
    );
    let mut table = String::new();
    for &conns in &p.conns {
        let (mut rps, mut cpu) = (Vec::new(), Vec::new());
        let (mut a_abs, mut b_abs) = (Vec::new(), Vec::new());
        let mut dropped = 0;
        for i in 0..p.pairs {
            let sides = [(&kind_a, p.a_exe.as_deref()), (&kind_b, p.b_exe.as_deref())];
            let order = if i % 2 == 0 { [0, 1] } else { [1, 0] };
            // A pair during which other processes used more than
            // MAX_OTHERS cores is run again (up to RETRIES times, after a
            // pause), else dropped from the summary (and counted).
            let mut attempt = 0;
            let (a, b) = loop {
                let mut got = [None, None];
                for side in order {
                    let (kind, exe) = sides[side];
                    let r = one_run(kind, exe, conns, p.streams, p.secs, &body_args)?;
                    let label = if side == 0 { "A" } else { "B" };
                    tsv += &format!(
                        "{conns}\t{i}\t{label}:{kind}\t{:.0}\t{:.2}\t{}\t{}\t{:.2}\t{attempt}\n",
                        r.rps, r.cpu_us_per_req, r.p50, r.p99, r.others
                    );
                    got[side] = Some(r);
                }
                let [Some(a), Some(b)] = got else {
                    unreachable!("both sides ran")
                };
                let noisy = a.others.max(b.others) > MAX_OTHERS;
                if noisy && attempt < RETRIES {
                    println!(
                        "conns {conns:4} pair {i:2}: other processes used {:.2} cores: again in 5 s",
                        a.others.max(b.others)
                    );
                    attempt += 1;
                    std::thread::sleep(Duration::from_secs(5));
                    continue;
                }
                if noisy {
                    dropped += 1;
                }
                break (a, b);
            };
            let (a, b) = (&a, &b);
            if a.others.max(b.others) > MAX_OTHERS {
                println!(
                    "conns {conns:4} pair {i:2}: dropped (other processes used {:.2} cores)",
                    a.others.max(b.others)
                );
                continue;
            }
            println!(
                "conns {conns:4} pair {i:2}: {} {:8.0} req/s {:5.2} µs/req p50 {:4} p99 {:5} | {} {:8.0} req/s {:5.2} µs/req p50 {:4} p99 {:5} | ratio {:.3}",
                p.a,
                a.rps,
                a.cpu_us_per_req,
                a.p50,
                a.p99,
                p.b,
                b.rps,
                b.cpu_us_per_req,
                b.p50,
                b.p99,
                a.rps / b.rps
            );
            rps.push(a.rps / b.rps);
            cpu.push(a.cpu_us_per_req / b.cpu_us_per_req);
            a_abs.push((a.rps, a.cpu_us_per_req, a.p50, a.p99));
            b_abs.push((b.rps, b.cpu_us_per_req, b.p50, b.p99));
        }
        let med = |v: &[(f64, f64, f64, f64)], f: fn(&(f64, f64, f64, f64)) -> f64| {
            quartiles(v.iter().map(f).collect()).1
        };
        let kept = rps.len();
        if kept == 0 {
            table += &format!("| {conns} | — | — | — | — | — | — | — | — | 0 ({dropped}) |\n");
            continue;
        }
        let (r25, r50, r75) = quartiles(rps);
        let (c25, c50, c75) = quartiles(cpu);
        table += &format!(
            "| {conns} | {:.0} | {:.0} | **{r50:.3}** ({r25:.3}–{r75:.3}) | {:.2} | {:.2} | **{c50:.3}** ({c25:.3}–{c75:.3}) | {:.0}/{:.0} | {:.0}/{:.0} | {kept} ({dropped}) |\n",
            med(&a_abs, |x| x.0),
            med(&b_abs, |x| x.0),
            med(&a_abs, |x| x.1),
            med(&b_abs, |x| x.1),
            med(&a_abs, |x| x.2),
            med(&a_abs, |x| x.3),
            med(&b_abs, |x| x.2),
            med(&b_abs, |x| x.3),
        );
    }
    let (a, b) = (&p.a, &p.b);
    let lat = if kind_a.ends_with("-h2") {
        "mean/max"
    } else {
        "p50/p99"
    };
    println!();
    println!(
        "| conns | {a} req/s | {b} req/s | req/s {a}/{b} (IQR) | {a} µs CPU/req | {b} µs CPU/req | CPU/req {a}/{b} (IQR) | {a} {lat} µs | {b} {lat} µs | pairs (dropped) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    print!("{table}");
    println!("load after: {}", loadavg());
    if let Some(out) = p.out {
        std::fs::write(&out, tsv)?;
        println!("raw pairs: {out}");
    }
    Ok(())
}

fn parse_pairs(mut args: impl Iterator<Item = String>) -> Result<PairsArgs, String> {
    let mut p = PairsArgs {
        conns: vec![16, 100, 1000],
        pairs: 10,
        secs: 1.5,
        a: "ringloop".into(),
        b: "tokio".into(),
        a_exe: None,
        b_exe: None,
        out: None,
        body: None,
        streams: 10,
    };
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--conns" => {
                p.conns = value()?
                    .split(',')
                    .map(|c| c.parse().map_err(|e| format!("--conns: {e}")))
                    .collect::<Result<_, _>>()?;
            }
            "--pairs" => p.pairs = value()?.parse().map_err(|e| format!("--pairs: {e}"))?,
            "--secs" => p.secs = value()?.parse().map_err(|e| format!("--secs: {e}"))?,
            "--a" => p.a = value()?,
            "--b" => p.b = value()?,
            "--a-exe" => p.a_exe = Some(value()?),
            "--b-exe" => p.b_exe = Some(value()?),
            "--out" => p.out = Some(value()?),
            "--body" => p.body = Some(value()?.parse().map_err(|e| format!("--body: {e}"))?),
            "--streams" => {
                p.streams = value()?
                    .parse()
                    .ok()
                    .filter(|&m| m >= 1)
                    .ok_or("--streams: a number of at least 1")?;
            }
            "--bench" => {}
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(p)
}

fn main() -> io::Result<()> {
    let mut args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let bad = |e: String| io::Error::new(io::ErrorKind::InvalidInput, e);
    // `--body N` at the end of a server's or client's arguments.
    let mut body_len = None;
    if matches!(args.first().map(String::as_str), Some("server" | "client"))
        && args.len() >= 2
        && args[args.len() - 2] == "--body"
    {
        body_len = Some(
            args[args.len() - 1]
                .parse()
                .map_err(|e| bad(format!("--body: {e}")))?,
        );
        args.truncate(args.len() - 2);
    }
    match args.first().map(String::as_str) {
        Some("server") if args.len() == 3 => server(&args[1], &args[2], body_len),
        Some("client") if args.len() == 4 => client(
            args[1].parse().map_err(|e| bad(format!("address: {e}")))?,
            args[2].parse().map_err(|e| bad(format!("conns: {e}")))?,
            args[3].parse().map_err(|e| bad(format!("secs: {e}")))?,
            body_len,
        ),
        Some("pairs") => pairs(parse_pairs(args.into_iter().skip(1)).map_err(bad)?),
        None | Some("--quick") => pairs(PairsArgs {
            conns: vec![100],
            pairs: 1,
            secs: 0.5,
            a: "ringloop".into(),
            b: "tokio".into(),
            a_exe: None,
            b_exe: None,
            out: None,
            body: None,
            streams: 10,
        }),
        Some(other) => Err(bad(format!(
            "unknown mode {other:?}: server KIND PORT_FILE | client ADDR CONNS SECS | pairs [...] | --quick"
        ))),
    }
}
