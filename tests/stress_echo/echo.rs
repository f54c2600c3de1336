//! The echo server and clients of the echo stress tests, and their reports.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::{Either, join, select};
use ringloop::io::IoBuf;
use ringloop::net::{ListenOptions, TcpListener, TcpStream};
use ringloop::sync::cross;
use ringloop::{EventLoop, RingStats, sleep, spawn};

use super::common::{Sha256, XorShift};
use super::support::rss_kib;

/// How long a connection may go without finishing a message.
pub const HUNG_AFTER: Duration = Duration::from_secs(10);

/// When a client connection stops sending.
#[derive(Clone, Copy, Debug)]
enum Stop {
    At(Instant),
    AfterMessages(u64),
}

pub struct EchoConfig {
    pub conns: usize,
    pub msg_bytes: usize,
    /// Seconds to run (`Stop::At`) or messages per connection.
    pub stop: StopRule,
    /// Concurrent connects while connecting.
    pub connect_batch: usize,
    /// Sample RSS after this much of the echo phase (time-based runs only).
    pub warm_up: Option<Duration>,
    /// Print `MARK warm` / `MARK end` when RSS is sampled (so that a server
    /// in another process samples its own at the same moments).
    pub marks: bool,
}

#[derive(Clone, Copy, Debug)]
pub enum StopRule {
    Secs(u64),
    Messages(u64),
}

#[derive(Debug, Default)]
pub struct ServerReport {
    pub accepted: u64,
    pub echoed: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub open_at_end: usize,
    pub ring: RingStats,
}

/// One client connection's outcome.
#[derive(Debug, Default)]
pub struct ConnReport {
    msgs: u64,
    bytes: u64,
    sent: [u8; 32],
    received: [u8; 32],
    /// Messages that came back different.
    bad_msgs: u64,
    /// Bytes the server sent after the last echo (expected 0).
    extra: usize,
    error: Option<String>,
}

#[derive(Debug, Default)]
pub struct ClientReport {
    pub conns: Vec<ConnReport>,
    pub hung: usize,
    pub connect_time: Duration,
    pub echo_time: Duration,
    pub rss_warm_kib: Option<u64>,
    pub rss_end_kib: Option<u64>,
    pub ring: RingStats,
}

pub fn bind(backlog: i32) -> TcpListener {
    let opts = ListenOptions {
        backlog,
        ..ListenOptions::default()
    };
    TcpListener::bind_with("127.0.0.1:0", opts).expect("bind")
}

/// The echo server: accepts until `stop` closes, echoes every connection,
/// then waits (up to 30 s) for the clients to close theirs.
pub async fn serve(
    listener: TcpListener,
    mut stop: cross::Receiver<()>,
    accepted: Arc<AtomicUsize>,
) -> ServerReport {
    let echoed = Rc::new(Cell::new(0u64));
    let open = Rc::new(Cell::new(0usize));
    let errors = Rc::new(RefCell::new((0u64, None::<String>)));
    let accept_loop = async {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => return e,
            };
            stream.set_nodelay(true).expect("TCP_NODELAY");
            accepted.fetch_add(1, Ordering::Relaxed);
            let (echoed, open, errors) = (echoed.clone(), open.clone(), errors.clone());
            open.set(open.get() + 1);
            spawn(async move {
                if let Err(e) = echo(&stream, &echoed).await {
                    let mut errs = errors.borrow_mut();
                    errs.0 += 1;
                    errs.1.get_or_insert_with(|| e.to_string());
                }
                open.set(open.get() - 1);
            })
            .detach();
        }
    };
    if let Either::Left((e, _)) = select(Box::pin(accept_loop), Box::pin(stop.recv())).await {
        panic!("the server's accept loop failed: {e}");
    }
    let t0 = Instant::now();
    while open.get() > 0 && t0.elapsed() < Duration::from_secs(30) {
        sleep(Duration::from_millis(10)).await;
    }
    let errs = errors.borrow();
    ServerReport {
        accepted: accepted.load(Ordering::Relaxed) as u64,
        echoed: echoed.get(),
        errors: errs.0,
        first_error: errs.1.clone(),
        open_at_end: open.get(),
        ring: RingStats::default(),
    }
}

/// [`serve`] on its own loop (on the calling thread).
pub fn server_loop(
    addr_tx: std::sync::mpsc::Sender<SocketAddr>,
    stop: cross::Receiver<()>,
    accepted: Arc<AtomicUsize>,
    backlog: i32,
) -> ServerReport {
    let lp = EventLoop::new().expect("server loop");
    let mut report = lp
        .run_until_complete(async move {
            let listener = bind(backlog);
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            serve(listener, stop, accepted).await
        })
        .expect("server run");
    report.ring = lp.ring_stats();
    report
}

async fn echo(stream: &TcpStream, echoed: &Cell<u64>) -> io::Result<()> {
    let mut buf = Vec::with_capacity(8 * 1024);
    loop {
        buf.clear();
        let (res, b) = stream.read(buf).await;
        let n = res?;
        if n == 0 {
            return Ok(());
        }
        let (res, b) = stream.write_all(b).await;
        res?;
        echoed.set(echoed.get() + n as u64);
        buf = b;
    }
}

/// Progress of every connection, watched for hangs.
struct Shared {
    last_progress: Vec<Cell<Instant>>,
    abort: Cell<bool>,
}

/// One client connection: random messages, each written while its echo is
/// read, until `stop`; then a half-close, and the server must close too
/// without sending more.
async fn client_conn(
    i: usize,
    stream: TcpStream,
    max_msg: usize,
    stop: Stop,
    shared: Rc<Shared>,
) -> ConnReport {
    let mut rng = XorShift::new(0x5eed_0000 + i as u64);
    let (mut sent, mut received) = (Sha256::new(), Sha256::new());
    let mut r = ConnReport::default();
    let res: io::Result<()> = async {
        loop {
            let done = match stop {
                Stop::At(t) => Instant::now() >= t,
                Stop::AfterMessages(n) => r.msgs >= n,
            };
            if done || shared.abort.get() {
                break;
            }
            let n = rng.range_usize(1, max_msg);
            let msg = rng.bytes(n);
            sent.update(&msg);
            let into = Vec::with_capacity(n).slice(..n);
            let ((wres, msg), (rres, got)) =
                join(stream.write_all(msg), stream.read_exact(into)).await;
            wres?;
            rres?;
            let got = got.into_inner();
            received.update(&got);
            if got != msg {
                r.bad_msgs += 1;
            }
            r.msgs += 1;
            r.bytes += n as u64;
            shared.last_progress[i].set(Instant::now());
        }
        stream.shutdown(Shutdown::Write).await?;
        let (res, _) = stream.read(Vec::with_capacity(64)).await;
        r.extra = res?;
        Ok(())
    }
    .await;
    r.error = res.err().map(|e| format!("connection {i}: {e}"));
    r.sent = sent.finish();
    r.received = received.finish();
    r
}

/// The clients: connect `cfg.conns` connections (in batches, so that the
/// listener's backlog takes them), wait until the server accepted them all
/// (when it runs in this process), then echo until `cfg.stop`, watching for
/// hung connections and sampling RSS.
pub async fn client(
    cfg: &EchoConfig,
    addr: SocketAddr,
    server_accepted: Option<&AtomicUsize>,
) -> ClientReport {
    let mut report = ClientReport::default();
    let t0 = Instant::now();
    let mut streams = Vec::with_capacity(cfg.conns);
    while streams.len() < cfg.conns {
        let n = cfg.connect_batch.min(cfg.conns - streams.len());
        let batch: Vec<_> = (0..n).map(|_| spawn(TcpStream::connect(addr))).collect();
        for t in batch {
            let s = t
                .await
                .expect("connect task")
                .unwrap_or_else(|e| panic!("connect {} of {}: {e}", streams.len() + 1, cfg.conns));
            // Echo traffic: no Nagle delay on partial segments.
            s.set_nodelay(true).expect("TCP_NODELAY");
            streams.push(s);
        }
    }
    if let Some(accepted) = server_accepted {
        while accepted.load(Ordering::Relaxed) < cfg.conns {
            assert!(
                t0.elapsed() < Duration::from_secs(120),
                "the server accepted {} of {} connections in 120 s",
                accepted.load(Ordering::Relaxed),
                cfg.conns
            );
            sleep(Duration::from_millis(10)).await;
        }
    }
    report.connect_time = t0.elapsed();

    let start = Instant::now();
    let stop = match cfg.stop {
        StopRule::Secs(s) => Stop::At(start + Duration::from_secs(s)),
        StopRule::Messages(n) => Stop::AfterMessages(n),
    };
    let shared = Rc::new(Shared {
        last_progress: (0..cfg.conns).map(|_| Cell::new(start)).collect(),
        abort: Cell::new(false),
    });
    let tasks: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(i, s)| spawn(client_conn(i, s, cfg.msg_bytes, stop, shared.clone())))
        .collect();
    // Watch for hangs and sample RSS until every connection is done.
    loop {
        sleep(Duration::from_millis(250)).await;
        let now = Instant::now();
        if let Some(w) = cfg.warm_up {
            if report.rss_warm_kib.is_none() && now >= start + w {
                report.rss_warm_kib = Some(rss_kib());
                mark(cfg, "warm");
            }
        }
        if let Stop::At(t) = stop {
            if report.rss_end_kib.is_none() && now >= t {
                report.rss_end_kib = Some(rss_kib());
                mark(cfg, "end");
            }
        }
        if tasks.iter().all(|t| t.is_done()) {
            break;
        }
        let hung = (0..cfg.conns)
            .filter(|&i| !tasks[i].is_done() && now - shared.last_progress[i].get() > HUNG_AFTER)
            .count();
        if hung > 0 {
            report.hung = hung;
            shared.abort.set(true);
            break;
        }
    }
    report.echo_time = start.elapsed();
    for t in tasks {
        if t.is_done() {
            report.conns.push(t.await.expect("connection task"));
        }
    }
    report.ring = ringloop::ring_stats().expect("client ring stats");
    report
}

fn mark(cfg: &EchoConfig, what: &str) {
    if cfg.marks {
        println!("MARK {what}");
        let _ = io::stdout().flush();
    }
}

/// What the clients report, as named counters: `conns msgs bytes min_msgs
/// idle hung corrupt errors cq_overflow overflow_flushes rss_warm_kib
/// rss_end_kib connect_ms echo_ms` (one `CLIENT k=v ...` line when the
/// clients run in another process).
pub type Summary = BTreeMap<String, u64>;

impl ClientReport {
    pub fn summary(&self) -> Summary {
        let c = &self.conns;
        let n = |x: usize| x as u64;
        let corrupt = |c: &&ConnReport| c.sent != c.received || c.bad_msgs > 0 || c.extra > 0;
        [
            ("conns", n(c.len())),
            ("msgs", c.iter().map(|c| c.msgs).sum()),
            ("bytes", c.iter().map(|c| c.bytes).sum()),
            ("min_msgs", c.iter().map(|c| c.msgs).min().unwrap_or(0)),
            ("idle", n(c.iter().filter(|c| c.msgs == 0).count())),
            ("hung", n(self.hung)),
            ("corrupt", n(c.iter().filter(corrupt).count())),
            ("errors", n(c.iter().filter(|c| c.error.is_some()).count())),
            ("cq_overflow", u64::from(self.ring.cq_overflow)),
            ("overflow_flushes", self.ring.overflow_flushes),
            ("rss_warm_kib", self.rss_warm_kib.unwrap_or(0)),
            ("rss_end_kib", self.rss_end_kib.unwrap_or(0)),
            ("connect_ms", self.connect_time.as_millis() as u64),
            ("echo_ms", self.echo_time.as_millis() as u64),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    pub fn first_error(&self) -> Option<&str> {
        self.conns.iter().find_map(|c| c.error.as_deref())
    }
}

pub fn summary_line(s: &Summary) -> String {
    let kv: Vec<String> = s.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("CLIENT {}", kv.join(" "))
}

/// Parses [`summary_line`]'s output (anywhere in `line`).
pub fn parse_summary(line: &str) -> Option<Summary> {
    let (_, rest) = line.split_once("CLIENT ")?;
    rest.split_whitespace()
        .map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect()
}
