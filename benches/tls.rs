//! TLS over loopback: `ringloop::tls` against tokio `current_thread` +
//! tokio-rustls, the same rustls (0.23, `ring` provider) under both, driven
//! by one load generator. Paired runs (`shared/BENCHMARKING.md`): A B, B A,
//! … with the order flipped every other pair; quoted as the median of the
//! per-pair ratios ringloop/tokio and their interquartile range.
//!
//! The server runs on a thread pinned to CPU 0, the client (blocking std
//! sockets + `rustls::StreamOwned`, the same for both servers) on CPU 1.
//! Server CPU is the server thread's own CPU time
//! (`CLOCK_THREAD_CPUTIME_ID`) from just before its first accept to after
//! its last connection ended.
//!
//! - **bulk**: one connection; the client uploads `MIB` MiB in 64 KiB
//!   writes, the server reads them (64 KiB buffer) and folds them into a
//!   checksum the client checks; then the server downloads `MIB` MiB in
//!   64 KiB `write_all`s and the client compares every byte. Reported:
//!   MiB/s both ways together (client wall time), server CPU ns per byte.
//! - **handshake**: `N` connections one after another, each a full
//!   handshake (client resumption off; TLS 1.3, ECDSA P-256), one byte
//!   each way, `close_notify` both ways. Reported: handshakes/s, server
//!   CPU µs per handshake.
//!
//! Usage: `cargo bench --features tls --bench tls [-- --pairs 10 --mib 256
//! --handshakes 400 --out FILE]`. It first waits (unless `--no-wait`,
//! for exploration; up to 10 min, then it gives up) for the 1-minute
//! load average to drop below 1.2, and prints the load it ran at. With no arguments (`cargo test --benches`) it does one tiny pair as
//! a sanity check.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

const CHUNK: usize = 64 * 1024;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Ringloop,
    Tokio,
}

struct Config {
    pairs: usize,
    mib: usize,
    handshakes: usize,
    out: Option<String>,
    quick: bool,
    /// Skip the wait for a quiet machine (exploration only: not for
    /// figures to quote).
    no_wait: bool,
    /// Run only this server (profiling: `--only ringloop|tokio`).
    only: Option<Kind>,
}

fn parse_args() -> Config {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let bench = args.iter().any(|a| a == "--bench");
    let mut c = Config {
        pairs: 10,
        mib: 256,
        handshakes: 400,
        out: None,
        quick: !bench || args.iter().any(|a| a == "--quick"),
        no_wait: args.iter().any(|a| a == "--no-wait"),
        only: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().expect("a value after the flag").clone();
        match a.as_str() {
            "--pairs" => c.pairs = val().parse().expect("--pairs N"),
            "--mib" => c.mib = val().parse().expect("--mib N"),
            "--handshakes" => c.handshakes = val().parse().expect("--handshakes N"),
            "--out" => c.out = Some(val()),
            "--only" => {
                c.only = Some(match val().as_str() {
                    "ringloop" => Kind::Ringloop,
                    "tokio" => Kind::Tokio,
                    other => panic!("--only ringloop|tokio, not {other}"),
                })
            }
            _ => {}
        }
    }
    if c.quick {
        (c.pairs, c.mib, c.handshakes) = (1, 4, 10);
    }
    c
}

// ---- Certificates ----

struct Pki {
    ca: CertificateDer<'static>,
    leaf: CertificateDer<'static>,
    key: Vec<u8>,
}

impl Pki {
    fn new() -> Pki {
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        Pki {
            ca: ca_cert.der().clone(),
            leaf: leaf.der().clone(),
            key: key.serialize_der(),
        }
    }

    fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone()));
        Arc::new(
            rustls::ServerConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(vec![self.leaf.clone(), self.ca.clone()], key)
                .unwrap(),
        )
    }

    fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.clone()).unwrap();
        let mut c = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        c.resumption = rustls::client::Resumption::disabled();
        Arc::new(c)
    }
}

/// The `ring` provider for both sides (rustls deprecates it only for
/// lacking post-quantum key exchange).
#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

// ---- Machine ----

fn pin(cpu: usize) {
    // SAFETY: `set` is a plain bitmask initialised by CPU_ZERO/CPU_SET with
    // a CPU number below its capacity; the call only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            eprintln!("pinning to CPU {cpu}: {}", io::Error::last_os_error());
        }
    }
}

/// This thread's CPU time, in ns.
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the call's duration.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(r, 0, "clock_gettime: {}", io::Error::last_os_error());
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn load1() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// Waits (up to 10 min) for the 1-minute load to drop below 1.2; refuses
/// to measure on a machine that stays busy.
fn wait_for_quiet() {
    let t0 = Instant::now();
    while load1() >= 1.2 {
        if t0.elapsed() > Duration::from_secs(600) {
            eprintln!(
                "load {:.2} ≥ 1.2 for 10 minutes: not measuring on a busy machine",
                load1()
            );
            std::process::exit(2);
        }
        eprintln!("load {:.2} ≥ 1.2: waiting", load1());
        std::thread::sleep(Duration::from_secs(15));
    }
}

// ---- Data ----

/// The download block: 64 KiB of a fixed pattern.
fn block() -> Vec<u8> {
    (0..CHUNK).map(|i| (i * 31 + (i >> 8)) as u8).collect()
}

/// The upload's checksum: its 8-byte words folded (rotate, xor). The
/// upload is `mib` MiB of `block()`, so whole words.
fn fold(sum: &mut u64, bytes: &[u8]) {
    for w in bytes.chunks_exact(8) {
        *sum = sum.rotate_left(5) ^ u64::from_le_bytes(w.try_into().unwrap());
    }
}

/// Folds a byte stream that may arrive in pieces of any length.
#[derive(Default)]
struct Folder {
    sum: u64,
    carry: Vec<u8>,
}

impl Folder {
    fn update(&mut self, mut bytes: &[u8]) {
        if !self.carry.is_empty() {
            let take = (8 - self.carry.len()).min(bytes.len());
            self.carry.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.carry.len() == 8 {
                let c = std::mem::take(&mut self.carry);
                fold(&mut self.sum, &c);
            }
        }
        let whole = bytes.len() / 8 * 8;
        fold(&mut self.sum, &bytes[..whole]);
        self.carry.extend_from_slice(&bytes[whole..]);
    }
}

// ---- Servers ----

/// What a server thread reports: its CPU time and a check value.
struct ServerResult {
    cpu_ns: u64,
    check: u64,
}

fn ringloop_server(
    config: Arc<rustls::ServerConfig>,
    port: mpsc::Sender<SocketAddr>,
    work: Work,
) -> ServerResult {
    use ringloop::net::TcpListener;
    use ringloop::tls::TlsAcceptor;
    ringloop::run(async move {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let acceptor = TlsAcceptor::new(config);
        port.send(listener.local_addr().unwrap()).unwrap();
        let c0 = thread_cpu_ns();
        let check = match work {
            Work::Bulk(bytes) => {
                let (tcp, _) = listener.accept().await.unwrap();
                tcp.set_nodelay(true).unwrap();
                let mut tls = acceptor.accept(tcp).await.unwrap();
                let mut folder = Folder::default();
                let mut got = 0;
                let mut buf = Vec::with_capacity(CHUNK);
                while got < bytes {
                    buf.clear();
                    let (res, b) = tls.read(buf).await;
                    buf = b;
                    let n = res.unwrap();
                    assert!(n > 0, "upload ended early");
                    folder.update(&buf[..n]);
                    got += n;
                }
                let mut out = block();
                let mut sent = 0;
                while sent < bytes {
                    let (res, b) = tls.write_all(out).await;
                    out = b;
                    res.unwrap();
                    sent += CHUNK;
                }
                tls.shutdown().await.unwrap();
                let (res, _) = tls.read(Vec::with_capacity(1)).await;
                assert_eq!(res.unwrap(), 0);
                folder.sum
            }
            Work::Handshakes(n) => {
                let mut tasks = Vec::with_capacity(n);
                for _ in 0..n {
                    let (tcp, _) = listener.accept().await.unwrap();
                    tcp.set_nodelay(true).unwrap();
                    let acceptor = acceptor.clone();
                    tasks.push(ringloop::spawn(async move {
                        let mut tls = acceptor.accept(tcp).await.unwrap();
                        let (res, b) = tls.read(Vec::with_capacity(1)).await;
                        assert_eq!(res.unwrap(), 1);
                        let (res, _) = tls.write_all(b).await;
                        res.unwrap();
                        tls.shutdown().await.unwrap();
                        let (res, _) = tls.read(Vec::with_capacity(1)).await;
                        assert_eq!(res.unwrap(), 0);
                    }));
                }
                for t in tasks {
                    t.await.unwrap();
                }
                n as u64
            }
        };
        ServerResult {
            cpu_ns: thread_cpu_ns() - c0,
            check,
        }
    })
    .unwrap()
}

fn tokio_server(
    config: Arc<rustls::ServerConfig>,
    port: mpsc::Sender<SocketAddr>,
    work: Work,
) -> ServerResult {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        port.send(listener.local_addr().unwrap()).unwrap();
        let c0 = thread_cpu_ns();
        let check = match work {
            Work::Bulk(bytes) => {
                let (tcp, _) = listener.accept().await.unwrap();
                tcp.set_nodelay(true).unwrap();
                let mut tls = acceptor.accept(tcp).await.unwrap();
                let mut folder = Folder::default();
                let mut got = 0;
                let mut buf = vec![0; CHUNK];
                while got < bytes {
                    let n = tls.read(&mut buf).await.unwrap();
                    assert!(n > 0, "upload ended early");
                    folder.update(&buf[..n]);
                    got += n;
                }
                let out = block();
                let mut sent = 0;
                while sent < bytes {
                    tls.write_all(&out).await.unwrap();
                    sent += CHUNK;
                }
                tls.shutdown().await.unwrap();
                let mut rest = Vec::new();
                tls.read_to_end(&mut rest).await.unwrap();
                folder.sum
            }
            Work::Handshakes(n) => {
                let mut tasks = Vec::with_capacity(n);
                for _ in 0..n {
                    let (tcp, _) = listener.accept().await.unwrap();
                    tcp.set_nodelay(true).unwrap();
                    let acceptor = acceptor.clone();
                    tasks.push(tokio::spawn(async move {
                        let mut tls = acceptor.accept(tcp).await.unwrap();
                        let mut b = [0u8; 1];
                        tls.read_exact(&mut b).await.unwrap();
                        tls.write_all(&b).await.unwrap();
                        tls.shutdown().await.unwrap();
                        let mut rest = Vec::new();
                        tls.read_to_end(&mut rest).await.unwrap();
                    }));
                }
                for t in tasks {
                    t.await.unwrap();
                }
                n as u64
            }
        };
        ServerResult {
            cpu_ns: thread_cpu_ns() - c0,
            check,
        }
    })
}

#[derive(Clone, Copy)]
enum Work {
    /// Bytes each way.
    Bulk(usize),
    /// Connections.
    Handshakes(usize),
}

// ---- The load generator ----

type Client = rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>;

fn client(config: &Arc<rustls::ClientConfig>, addr: SocketAddr) -> Client {
    let tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_nodelay(true).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(config.clone(), name).unwrap();
    rustls::StreamOwned::new(conn, tcp)
}

/// Reads to the end (close_notify), expecting nothing more.
fn expect_end(c: &mut Client) {
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "{} unexpected bytes", rest.len());
}

/// One measurement: (client wall time, server result).
fn run(kind: Kind, pki: &Pki, work: Work) -> (Duration, ServerResult) {
    let (tx, rx) = mpsc::channel();
    let config = pki.server_config();
    let server = std::thread::spawn(move || {
        pin(0);
        match kind {
            Kind::Ringloop => ringloop_server(config, tx, work),
            Kind::Tokio => tokio_server(config, tx, work),
        }
    });
    let addr = rx.recv().unwrap();
    let cc = pki.client_config();
    let t0 = Instant::now();
    match work {
        Work::Bulk(bytes) => {
            let mut c = client(&cc, addr);
            let up = block();
            let mut folder = Folder::default();
            let mut sent = 0;
            while sent < bytes {
                c.write_all(&up).unwrap();
                folder.update(&up);
                sent += CHUNK;
            }
            c.flush().unwrap();
            let want = block();
            let mut buf = vec![0; CHUNK];
            let mut got = 0;
            while got < bytes {
                c.read_exact(&mut buf).unwrap();
                assert!(buf == want, "download corrupt at {got}");
                got += CHUNK;
            }
            expect_end(&mut c);
            c.conn.send_close_notify();
            c.flush().unwrap();
            let elapsed = t0.elapsed();
            let res = server.join().unwrap();
            assert_eq!(res.check, folder.sum, "upload checksum ({kind:?})");
            (elapsed, res)
        }
        Work::Handshakes(n) => {
            for i in 0..n {
                let mut c = client(&cc, addr);
                c.write_all(&[i as u8]).unwrap();
                let mut b = [0u8; 1];
                c.read_exact(&mut b).unwrap();
                assert_eq!(b[0], i as u8);
                expect_end(&mut c);
                c.conn.send_close_notify();
                c.flush().unwrap();
            }
            let elapsed = t0.elapsed();
            let res = server.join().unwrap();
            assert_eq!(res.check, n as u64);
            (elapsed, res)
        }
    }
}

// ---- Pairs ----

/// One pair's figures: (ringloop, tokio) of (rate, server CPU per unit).
struct Pair {
    rate: (f64, f64),
    cpu: (f64, f64),
}

fn median_iqr(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let q = |p: f64| {
        let x = p * (v.len() - 1) as f64;
        let (lo, hi) = (x.floor() as usize, x.ceil() as usize);
        v[lo] + (v[hi] - v[lo]) * (x - lo as f64)
    };
    (q(0.5), q(0.25), q(0.75))
}

fn measure_pairs(name: &str, pki: &Pki, work: Work, pairs: usize, raw: &mut String) -> Vec<Pair> {
    let (units, unit_name) = match work {
        Work::Bulk(b) => (2.0 * b as f64, "byte"),
        Work::Handshakes(n) => (n as f64, "handshake"),
    };
    let mut out = Vec::new();
    for p in 0..pairs {
        let order = if p % 2 == 0 {
            [Kind::Ringloop, Kind::Tokio]
        } else {
            [Kind::Tokio, Kind::Ringloop]
        };
        let mut fig = [(0.0, 0.0); 2];
        for kind in order {
            let (wall, res) = run(kind, pki, work);
            let rate = match work {
                Work::Bulk(b) => 2.0 * b as f64 / (1 << 20) as f64 / wall.as_secs_f64(),
                Work::Handshakes(n) => n as f64 / wall.as_secs_f64(),
            };
            let cpu = res.cpu_ns as f64 / units;
            let line = format!(
                "{name}\tpair={p}\t{kind:?}\twall_ms={:.1}\trate={rate:.1}\tserver_cpu_ns_per_{unit_name}={cpu:.3}\tload1={:.2}\n",
                wall.as_secs_f64() * 1e3,
                load1()
            );
            eprint!("{line}");
            raw.push_str(&line);
            fig[(kind == Kind::Tokio) as usize] = (rate, cpu);
        }
        out.push(Pair {
            rate: (fig[0].0, fig[1].0),
            cpu: (fig[0].1, fig[1].1),
        });
    }
    out
}

fn row(name: &str, unit: &str, scale: f64, pairs: &[Pair]) -> String {
    let med = |f: &dyn Fn(&Pair) -> f64| median_iqr(pairs.iter().map(f).collect()).0;
    let (r, rlo, rhi) = median_iqr(pairs.iter().map(|p| p.rate.0 / p.rate.1).collect());
    let (c, clo, chi) = median_iqr(pairs.iter().map(|p| p.cpu.0 / p.cpu.1).collect());
    format!(
        "| {name} | {:.1} | {:.1} | **{r:.3}** ({rlo:.3}–{rhi:.3}) | {:.2} {unit} | {:.2} {unit} | **{c:.3}** ({clo:.3}–{chi:.3}) |\n",
        med(&|p| p.rate.0),
        med(&|p| p.rate.1),
        med(&|p| p.cpu.0 * scale),
        med(&|p| p.cpu.1 * scale),
    )
}

/// What the figures were measured with: date, kernel, rustc, the crates
/// under both servers (from Cargo.lock), ringloop's backend.
fn versions() -> String {
    let cmd = |c: &str, args: &[&str]| {
        std::process::Command::new(c)
            .args(args)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|| "?".into())
    };
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock"))
        .unwrap_or_default();
    let version = |name: &str| {
        let key = format!("name = \"{name}\"\nversion = \"");
        lock.find(&key)
            .and_then(|i| lock[i + key.len()..].split('"').next())
            .unwrap_or("?")
            .to_string()
    };
    let backend = ringloop::EventLoop::new()
        .map(|l| l.backend().to_string())
        .unwrap_or_else(|e| format!("none ({e})"));
    format!(
        "{} · kernel {} · {} · rustls {} (ring {}) · tokio {} · tokio-rustls {} · ringloop backend: {backend}",
        cmd("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        cmd("uname", &["-r"]),
        cmd("rustc", &["--version"]),
        version("rustls"),
        version("ring"),
        version("tokio"),
        version("tokio-rustls"),
    )
}

fn main() {
    let cfg = parse_args();
    let pki = Pki::new();
    if !cfg.quick && !cfg.no_wait {
        wait_for_quiet();
    }
    pin(1);
    if let Some(kind) = cfg.only {
        for work in [Work::Bulk(cfg.mib << 20), Work::Handshakes(cfg.handshakes)] {
            let (wall, res) = run(kind, &pki, work);
            println!(
                "{kind:?}: wall {wall:?}, server CPU {} µs",
                res.cpu_ns / 1000
            );
        }
        return;
    }
    let load_start = load1();
    let mut raw = String::new();
    let bulk = measure_pairs("bulk", &pki, Work::Bulk(cfg.mib << 20), cfg.pairs, &mut raw);
    let hs = measure_pairs(
        "handshake",
        &pki,
        Work::Handshakes(cfg.handshakes),
        cfg.pairs,
        &mut raw,
    );
    let load_end = load1();
    let mut table = String::new();
    table.push_str(&format!(
        "Command: `cargo bench --features tls --bench tls -- {}`\n\n{}\n\n",
        std::env::args()
            .skip(1)
            .filter(|a| a != "--bench")
            .collect::<Vec<_>>()
            .join(" "),
        versions()
    ));
    table.push_str(&format!(
        "{} pairs; bulk: {} MiB each way on one connection; handshakes: {} in a row; \
         1-min load {load_start:.2} at the start, {load_end:.2} at the end.\n\n",
        cfg.pairs, cfg.mib, cfg.handshakes
    ));
    table.push_str(
        "| workload | ringloop rate | tokio rate | rate ratio (IQR) | ringloop server CPU | tokio server CPU | CPU ratio (IQR) |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    table.push_str(&row("bulk (MiB/s both ways)", "ns/KiB", 1024.0, &bulk));
    table.push_str(&row("handshakes/s", "µs", 1e-3, &hs));
    println!("{table}");
    if let Some(path) = cfg.out {
        std::fs::write(&path, format!("{table}\n```\n{raw}```\n")).unwrap();
        eprintln!("written to {path}");
    }
}
