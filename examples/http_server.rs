//! An HTTP server on ringloop and hyper: HTTP/1.1 with keep-alive and
//! HTTP/2 (cleartext, prior knowledge) on one port, one event loop per core.
//!
//! ```sh
//! cargo run --release --features hyper --example http_server
//! curl http://127.0.0.1:8080/                            # hello world
//! curl --http2-prior-knowledge http://127.0.0.1:8080/    # the same over h2c
//! curl -o /dev/null http://127.0.0.1:8080/file           # a file, streamed
//! curl --data-binary @Cargo.toml http://127.0.0.1:8080/echo
//! cargo run --release --features hyper --example http_server -- --cores 2
//!
//! # HTTPS (HTTP/2 or HTTP/1.1 by ALPN), with a self-signed certificate:
//! cargo run --release --features hyper,tls --example http_server -- --tls
//! curl --cacert /tmp/ringloop-http-server-8080.pem https://localhost:8080/
//! ```
//!
//! Routes: `/` says hello; `/file` streams the file named by `--file` (by
//! default this server's own executable) in 64 KiB reads; `/slow?ms=N`
//! answers after N ms; `/echo` sends the request body back as it arrives.
//!
//! Each connection is hyper's (`hyper_util`'s auto builder tells HTTP/2's
//! preface from HTTP/1.1) over [`HyperIo`]: reads go from the socket
//! straight into hyper's buffer. HTTP/2 streams run as tasks on the loop
//! ([`HyperExecutor`]); header-read timeouts and keep-alive use the loop's
//! timers ([`HyperTimer`]).
//!
//! `--tls` (built with the `tls` feature) serves HTTPS instead: each
//! accepted connection's TLS handshake runs in its own task
//! ([`ringloop::tls::TlsAcceptor`]), ALPN offers `h2` and `http/1.1`, and
//! the [`TlsStream`](ringloop::tls::TlsStream) goes into `HyperIo` as the
//! plain stream does. The certificate and key come from `--cert` and
//! `--key` (PEM files); without them the server makes a self-signed one
//! for `localhost` and `127.0.0.1`, writes it where it says (for
//! `curl --cacert`), and removes it on exit.
//!
//! Ctrl-C shuts down gracefully: every core stops accepting, asks its
//! connections to finish (HTTP/1.1 after the response in flight, HTTP/2
//! with a GOAWAY), waits up to `--grace` seconds for them, then closes
//! what is left and exits with status 0.
//!
//! `--cores N` runs N loops ([`ringloop::Cores`]) that share one port
//! through a [`CoresListener`]: by default core 0 accepts and hands the
//! connections out round-robin; `--distribute shared|reuseport` picks the
//! other ways (`docs/design/cores-distribution.md`). Core 0 takes Ctrl-C
//! and tells every core to shut down gracefully.

use std::cell::Cell;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::{Either, select};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::server::conn::auto;
use ringloop::hyper::{HyperExecutor, HyperIo, HyperTimer};
use ringloop::io::{PollRead, PollWrite};
use ringloop::net::{CoresListener, Distribution};
use ringloop::sync::{Event, cross};
use ringloop::{Core, Cores};

#[cfg(feature = "tls")]
type Acceptor = ringloop::tls::TlsAcceptor;
/// Without the `tls` feature no acceptor exists (`--tls` is refused).
#[cfg(not(feature = "tls"))]
#[derive(Clone)]
enum Acceptor {}

/// A response body of any kind: a thread-per-core server's bodies need
/// not be `Send` (this one reads a ringloop `File`), so no `BoxBody`.
type Body = Pin<Box<dyn hyper::body::Body<Data = Bytes, Error = io::Error>>>;

fn boxed(body: impl hyper::body::Body<Data = Bytes, Error = io::Error> + 'static) -> Body {
    Box::pin(body)
}

const USAGE: &str = "usage: http_server [--addr HOST:PORT] [--cores N] [--distribute MODE]
                   [--file PATH] [--grace SECS]
                   [--tls [--cert PEM --key PEM]] [--quiet]
  --addr HOST:PORT  where to listen (default 127.0.0.1:8080; port 0 picks one)
  --cores N         event loops, one per thread, sharing the port (default 1)
  --distribute MODE how connections reach the loops: round-robin (default), shared, reuseport
  --file PATH       the file /file streams (default: this executable)
  --grace SECS      how long Ctrl-C waits for in-flight requests (default 5)
  --tls             HTTPS, with ALPN h2 and http/1.1 (needs the `tls` feature)
  --cert PEM        the certificate chain for --tls (default: a self-signed one)
  --key PEM         its private key
  --quiet           no line per connection";

struct Args {
    addr: SocketAddr,
    cores: usize,
    distribute: Distribution,
    file: PathBuf,
    grace: Duration,
    tls: bool,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    quiet: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        addr: ([127, 0, 0, 1], 8080).into(),
        cores: 1,
        distribute: Distribution::default(),
        file: std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?,
        grace: Duration::from_secs(5),
        tls: false,
        cert: None,
        key: None,
        quiet: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--addr" => {
                let v = value()?;
                a.addr = v.parse().map_err(|e| format!("bad --addr {v:?}: {e}"))?;
            }
            "--cores" => {
                let v = value()?;
                a.cores = v
                    .parse()
                    .ok()
                    .filter(|&n| n >= 1)
                    .ok_or(format!("bad --cores {v:?}: a number of at least 1"))?;
            }
            "--distribute" => {
                let v = value()?;
                a.distribute = v.parse().map_err(|e| format!("bad --distribute: {e}"))?;
            }
            "--file" => a.file = value()?.into(),
            "--grace" => {
                let v = value()?;
                let secs: f64 = v.parse().map_err(|e| format!("bad --grace {v:?}: {e}"))?;
                a.grace = Duration::try_from_secs_f64(secs).map_err(|e| format!("--grace: {e}"))?;
            }
            "--tls" => a.tls = true,
            "--cert" => a.cert = Some(value()?.into()),
            "--key" => a.key = Some(value()?.into()),
            "--quiet" => a.quiet = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    if a.cert.is_some() != a.key.is_some() {
        return Err("--cert and --key go together".into());
    }
    a.tls |= a.cert.is_some();
    Ok(a)
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let body = Full::new(body.into()).map_err(|never| match never {});
    let mut res = Response::new(boxed(body));
    *res.status_mut() = status;
    res
}

/// `/file`: the file in 64 KiB reads, each sent as it is read.
async fn stream_file(path: &std::path::Path) -> Response<Body> {
    let file = match ringloop::fs::File::open(path).await {
        Ok(f) => f,
        Err(e) => return text(StatusCode::NOT_FOUND, format!("{}: {e}\n", path.display())),
    };
    let len = match file.metadata().await {
        Ok(m) => m.len(),
        Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    };
    let chunks = futures_util::stream::unfold((file, 0u64), |(file, at)| async move {
        let (res, buf) = file.read_at(Vec::with_capacity(64 * 1024), at).await;
        match res {
            Ok(0) => None,
            Ok(n) => Some((Ok(Frame::data(Bytes::from(buf))), (file, at + n as u64))),
            // The body fails: hyper aborts the response (the client sees a
            // short body), as it must once the length has been promised.
            Err(e) => Some((Err(e), (file, u64::MAX))),
        }
    });
    let mut res = Response::new(boxed(StreamBody::new(chunks)));
    res.headers_mut().insert(header::CONTENT_LENGTH, len.into());
    res
}

/// The routes (see the module docs).
async fn route(req: Request<Incoming>, file: Rc<PathBuf>) -> Result<Response<Body>, Infallible> {
    let res = match (req.method(), req.uri().path()) {
        (&Method::GET, "/") => text(StatusCode::OK, "Hello, world!\n"),
        (&Method::GET, "/file") => stream_file(&file).await,
        (&Method::GET, "/slow") => {
            let ms: u64 = req
                .uri()
                .query()
                .and_then(|q| q.strip_prefix("ms="))
                .and_then(|v| v.parse().ok())
                .unwrap_or(1000)
                .min(60_000);
            ringloop::sleep(Duration::from_millis(ms)).await;
            text(StatusCode::OK, format!("slept {ms} ms\n"))
        }
        (_, "/echo") => Response::new(boxed(req.into_body().map_err(io::Error::other))),
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    };
    Ok(res)
}

/// One core's connections: how many are open, and the shutdown request.
struct Conns {
    open: Cell<usize>,
    all_closed: Event,
    stopping: Event,
}

/// Counts a connection as open until dropped.
struct Open(Rc<Conns>);

impl Open {
    fn new(conns: &Rc<Conns>) -> Open {
        conns.open.set(conns.open.get() + 1);
        conns.all_closed.clear();
        Open(conns.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        let c = &self.0;
        c.open.set(c.open.get() - 1);
        if c.open.get() == 0 {
            c.all_closed.set();
        }
    }
}

/// What a core's connections share.
struct Shared {
    builder: auto::Builder<HyperExecutor>,
    conns: Rc<Conns>,
    file: PathBuf,
    /// `""` with one core, `"[core 3] "` with several.
    prefix: String,
    /// `--tls`: the handshake each connection starts with.
    tls: Option<Acceptor>,
    quiet: bool,
}

/// Serves one connection (after its TLS handshake, with `--tls`); on
/// shutdown, lets it finish gracefully.
async fn connection(stream: ringloop::net::TcpStream, peer: SocketAddr, shared: Rc<Shared>) {
    let _open = Open::new(&shared.conns);
    let _ = stream.set_nodelay(true);
    let res = match &shared.tls {
        None => serve(HyperIo::from(stream), &shared).await,
        #[cfg(feature = "tls")]
        Some(acceptor) => match acceptor.accept(stream).await {
            Ok(tls) => serve(HyperIo::from(tls), &shared).await,
            Err(e) => Err(e.into()),
        },
        #[cfg(not(feature = "tls"))]
        Some(never) => match *never {},
    };
    if !shared.quiet {
        let p = &shared.prefix;
        match res {
            Ok(()) => println!("{p}closed {peer}"),
            Err(e) => println!("{p}{peer}: {e}"),
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// hyper's half of a connection: HTTP/1.1 or HTTP/2, whichever the client
/// speaks (after ALPN, with TLS).
async fn serve<T>(io: HyperIo<T>, shared: &Shared) -> Result<(), BoxError>
where
    T: PollRead + PollWrite + Unpin + 'static,
{
    let file = Rc::new(shared.file.clone());
    let service = hyper::service::service_fn(move |req| route(req, file.clone()));
    let mut conn = pin!(shared.builder.serve_connection(io, service));
    match select(conn.as_mut(), pin!(shared.conns.stopping.wait())).await {
        Either::Left((res, _)) => res,
        Either::Right(((), _)) => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    }
}

/// What the cores share: the listener, and the shutdown signal core 0
/// sends every core (itself included) at Ctrl-C.
struct Shutdown {
    senders: Vec<cross::Sender<()>>,
    receivers: Mutex<Vec<Option<cross::Receiver<()>>>>,
}

/// One core: accepts until Ctrl-C, then shuts down gracefully.
async fn serve_core(
    core: Core,
    args: Arc<Args>,
    listener: CoresListener,
    shutdown: Arc<Shutdown>,
    tls: Tls,
) -> io::Result<()> {
    let mut stop = shutdown.receivers.lock().unwrap_or_else(|p| p.into_inner())[core.index()]
        .take()
        .expect("one entry per core");
    let addr = listener.local_addr();
    let listener = listener.for_core(&core)?;
    if core.index() == 0 {
        // Core 0 takes Ctrl-C (listening before the address is announced,
        // so a signal sent as soon as it is known is seen) and tells every
        // core. Until then, a Ctrl-C cancels the cores (`Cores::run`).
        let mut sigint = ringloop::signal::signal(libc::SIGINT)?;
        let shutdown = shutdown.clone();
        ringloop::spawn(async move {
            sigint.recv().await;
            for tx in &shutdown.senders {
                let _ = tx.try_send(());
            }
        })
        .detach();
        println!(
            "http server listening on {addr} ({} cores, {} backend{})",
            core.count(),
            ringloop::ring_stats()?.backend,
            if tls.acceptor.is_some() { ", TLS" } else { "" }
        );
        if let Some(path) = &tls.cert_file {
            println!(
                "self-signed certificate for localhost and 127.0.0.1: {}",
                path.display()
            );
        }
    }
    let mut builder = auto::Builder::new(HyperExecutor);
    builder
        .http1()
        .timer(HyperTimer)
        .header_read_timeout(Duration::from_secs(10));
    builder
        .http2()
        .timer(HyperTimer)
        .keep_alive_interval(Duration::from_secs(20));
    let conns = Rc::new(Conns {
        open: Cell::new(0),
        all_closed: Event::new(),
        stopping: Event::new(),
    });
    let shared = Rc::new(Shared {
        builder,
        conns: conns.clone(),
        file: args.file.clone(),
        prefix: match core.count() {
            1 => String::new(),
            _ => format!("[core {}] ", core.index()),
        },
        quiet: args.quiet,
        tls: tls.acceptor.clone(),
    });
    let p = &shared.prefix;
    let accept_loop = async {
        loop {
            let (stream, peer) = listener.accept().await?;
            if !args.quiet {
                println!("{p}opened {peer}");
            }
            ringloop::spawn(connection(stream, peer, shared.clone())).detach();
        }
    };
    if let Either::Left((res, _)) = select(pin!(accept_loop), pin!(stop.recv())).await {
        return res;
    }
    // Stop accepting (close the listener), then let connections finish.
    drop(listener);
    let open = conns.open.get();
    println!("{p}shutting down: {open} connections open");
    conns.stopping.set();
    if open > 0
        && ringloop::wait_for(conns.all_closed.wait(), Some(args.grace))
            .await
            .is_err()
    {
        let left = conns.open.get();
        println!("{p}grace period over: closing {left} connections");
    }
    // Returning ends the loop: whatever is left is cancelled and closed.
    Ok(())
}

fn main() -> std::process::ExitCode {
    match real_main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("http_server: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// What `--tls` sets up, shared by the cores.
#[derive(Clone, Default)]
struct Tls {
    acceptor: Option<Acceptor>,
    /// A self-signed certificate's PEM, until `real_main` writes it out.
    self_signed: Option<String>,
    /// Where it was written (for curl --cacert; removed on exit).
    cert_file: Option<PathBuf>,
}

#[cfg(not(feature = "tls"))]
fn tls_setup(args: &Args) -> io::Result<Tls> {
    if args.tls {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--tls needs the tls feature: cargo run --features hyper,tls --example http_server -- --tls",
        ));
    }
    Ok(Tls::default())
}

#[cfg(feature = "tls")]
fn tls_setup(args: &Args) -> io::Result<Tls> {
    use ringloop::tls::rustls::pki_types::pem::PemObject;
    use ringloop::tls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    use ringloop::tls::{TlsAcceptor, rustls};
    if !args.tls {
        return Ok(Tls::default());
    }
    let pem_err = |path: &PathBuf, e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: {e}", path.display()),
        )
    };
    let mut tls = Tls::default();
    let (chain, key) = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| pem_err(cert, e))?;
            if chain.is_empty() {
                return Err(pem_err(cert, rustls::pki_types::pem::Error::NoItemsFound));
            }
            (
                chain,
                PrivateKeyDer::from_pem_file(key).map_err(|e| pem_err(key, e))?,
            )
        }
        _ => {
            let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
            let made = rcgen::generate_simple_self_signed(names).map_err(io::Error::other)?;
            tls.self_signed = Some(made.cert.pem());
            let key = PrivatePkcs8KeyDer::from(made.signing_key.serialize_der());
            (vec![made.cert.der().clone()], PrivateKeyDer::Pkcs8(key))
        }
    };
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("--cert/--key: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    tls.acceptor = Some(TlsAcceptor::new(Arc::new(config)));
    Ok(tls)
}

fn real_main() -> io::Result<()> {
    let args = parse_args().map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut tls = tls_setup(&args)?;
    let listener = CoresListener::bind(args.addr, args.cores, args.distribute)?;
    // The port is known now (port 0 included): name the file after it.
    if let Some(pem) = tls.self_signed.take() {
        let port = listener.local_addr().port();
        let path = std::env::temp_dir().join(format!("ringloop-http-server-{port}.pem"));
        std::fs::write(&path, pem)?;
        tls.cert_file = Some(path);
    }
    let cert_file = tls.cert_file.clone();
    let (senders, receivers) = (0..args.cores)
        .map(|_| cross::channel(1).map(|(tx, rx)| (tx, Some(rx))))
        .collect::<Result<(Vec<_>, Vec<_>), _>>()
        .map_err(io::Error::other)?;
    let shutdown = Arc::new(Shutdown {
        senders,
        receivers: Mutex::new(receivers),
    });
    let args = Arc::new(args);
    let results = Cores::new(args.cores)
        .thread_name("http-core")
        .run(move |core| {
            serve_core(
                core,
                args.clone(),
                listener.clone(),
                shutdown.clone(),
                tls.clone(),
            )
        });
    if let Some(path) = cert_file {
        let _ = std::fs::remove_file(path);
    }
    let results = results.map_err(|e| io::Error::other(e.to_string()))?;
    for (i, r) in results.into_iter().enumerate() {
        r.map_err(|e| io::Error::new(e.kind(), format!("core {i}: {e}")))?;
    }
    println!("bye");
    Ok(())
}
