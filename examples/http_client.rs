//! An HTTP client on ringloop and hyper: GETs a URL and prints the status,
//! the headers and the body's size.
//!
//! ```sh
//! cargo run --release --features hyper --example http_server &
//! cargo run --release --features hyper --example http_client -- http://127.0.0.1:8080/file
//! cargo run --release --features hyper --example http_client -- --http2 http://127.0.0.1:8080/
//!
//! # https (the `tls` feature), against `http_server --tls`:
//! cargo run --release --features hyper,tls --example http_client -- \
//!     --cacert /tmp/ringloop-http-server-8080.pem https://localhost:8080/
//! ```
//!
//! `--http2` speaks HTTP/2 with prior knowledge (h2c) over plain TCP. Over
//! TLS the client offers `h2` and `http/1.1` by ALPN and speaks whichever
//! the server picks (`--http2` then insists on `h2`, `--http1` offers
//! only `http/1.1`). Server certificates
//! are checked against the system's CA bundle (`/etc/ssl/certs/...`) and
//! any `--cacert` PEM files. The body is read frame by frame as it
//! arrives, counted and dropped.

use std::io;
use std::time::Instant;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::{Request, Uri, header};
use ringloop::hyper::{HyperExecutor, HyperIo};
use ringloop::io::{PollRead, PollWrite};
use ringloop::net::TcpStream;

const USAGE: &str = "usage: http_client [--http1 | --http2] [--cacert PEM]... URL
  --http2        HTTP/2: with prior knowledge (h2c) for http://, by ALPN for https://
  --http1        https:// offers only http/1.1 by ALPN (http:// is HTTP/1.1 by default)
  --cacert PEM   also trust the CA certificates in this file (https; repeatable)";

fn bad(what: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what.to_string())
}

/// What the command line asked for.
struct Args {
    uri: Uri,
    http2: bool,
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    http1: bool,
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    cacerts: Vec<String>,
}

/// A connection hyper can use: plain or TLS.
trait Io: PollRead + PollWrite + Unpin + 'static {}
impl<T: PollRead + PollWrite + Unpin + 'static> Io for T {}

/// Connects to the URL's host and port (80 or 443 by default); with TLS,
/// also says whether the server chose HTTP/2 by ALPN.
async fn connect(args: &Args) -> io::Result<(HyperIo<Box<dyn Io>>, bool)> {
    let uri = &args.uri;
    let https = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => return Err(bad(format!("{uri}: not an http:// or https:// URL"))),
    };
    let host = uri.host().ok_or_else(|| bad(format!("{uri}: no host")))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let stream = TcpStream::connect((host, port)).await?;
    stream.set_nodelay(true)?;
    if !https {
        return Ok((HyperIo::new(Box::new(stream.into_poll_io())), args.http2));
    }
    tls_connect(args, host, stream).await
}

#[cfg(not(feature = "tls"))]
async fn tls_connect(_: &Args, _: &str, _: TcpStream) -> io::Result<(HyperIo<Box<dyn Io>>, bool)> {
    Err(bad(
        "https needs the tls feature: cargo run --features hyper,tls --example http_client",
    ))
}

#[cfg(feature = "tls")]
async fn tls_connect(
    args: &Args,
    host: &str,
    stream: TcpStream,
) -> io::Result<(HyperIo<Box<dyn Io>>, bool)> {
    use ringloop::tls::rustls::pki_types::CertificateDer;
    use ringloop::tls::rustls::pki_types::pem::PemObject;
    use ringloop::tls::{ServerName, TlsConnector, rustls};
    let mut roots = rustls::RootCertStore::empty();
    // The system's bundle, where Debian/Ubuntu/Alpine or Fedora/RHEL keep it.
    for bundle in [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
    ] {
        if let Ok(certs) = CertificateDer::pem_file_iter(bundle) {
            roots.add_parsable_certificates(certs.flatten());
            break;
        }
    }
    for path in &args.cacerts {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| bad(format!("--cacert {path}: {e}")))?;
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| bad(format!("--cacert {path}: {e}")))?;
        }
    }
    if roots.is_empty() {
        return Err(bad(
            "https: no CA certificates (no system bundle found; pass --cacert PEM)",
        ));
    }
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = match (args.http2, args.http1) {
        (true, false) => vec![b"h2".to_vec()],
        (false, true) => vec![b"http/1.1".to_vec()],
        _ => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
    };
    let name = ServerName::try_from(host.to_owned()).map_err(|e| bad(format!("{host}: {e}")))?;
    let tls = TlsConnector::new(std::sync::Arc::new(config))
        .connect(name, stream)
        .await?;
    let h2 = tls.alpn_protocol() == Some(b"h2");
    if args.http2 && !h2 {
        return Err(bad(format!(
            "{host}: the server did not agree to HTTP/2 (ALPN)"
        )));
    }
    Ok((HyperIo::new(Box::new(tls)), h2))
}

async fn get(args: Args) -> io::Result<()> {
    let (io, http2) = connect(&args).await?;
    let uri = args.uri;
    let authority = uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .unwrap_or_default();
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut req = Request::get(path);
    if http2 {
        // HTTP/2 takes the authority from the URI, not a Host header.
        req = Request::get(uri.clone());
    } else {
        req = req.header(header::HOST, authority);
    }
    let req = req.body(Empty::<Bytes>::new()).map_err(bad)?;
    let t0 = Instant::now();
    let res = if http2 {
        let (mut sender, conn) = hyper::client::conn::http2::handshake(HyperExecutor, io)
            .await
            .map_err(io::Error::other)?;
        ringloop::spawn(conn).detach();
        sender.send_request(req).await
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(io::Error::other)?;
        ringloop::spawn(conn).detach();
        sender.send_request(req).await
    };
    let mut res = res.map_err(io::Error::other)?;
    println!("{:?} {}", res.version(), res.status());
    for (name, value) in res.headers() {
        println!("{name}: {}", String::from_utf8_lossy(value.as_bytes()));
    }
    let mut size = 0usize;
    while let Some(frame) = res.body_mut().frame().await {
        if let Ok(data) = frame.map_err(io::Error::other)?.into_data() {
            size += data.len();
        }
    }
    println!();
    println!("body: {size} bytes in {:.1?}", t0.elapsed());
    Ok(())
}

fn main() -> std::process::ExitCode {
    match real_main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("http_client: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn real_main() -> io::Result<()> {
    let mut http2 = false;
    let mut http1 = false;
    let mut url = None;
    let mut cacerts = Vec::new();
    let mut argv = std::env::args().skip(1);
    while let Some(arg) = argv.next() {
        match arg.as_str() {
            "--http2" => http2 = true,
            "--http1" => http1 = true,
            "--cacert" => cacerts.push(argv.next().ok_or_else(|| bad("--cacert needs a file"))?),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            _ if url.is_none() && !arg.starts_with('-') => url = Some(arg),
            other => return Err(bad(format!("unexpected argument {other:?}\n{USAGE}"))),
        }
    }
    let url = url.ok_or_else(|| bad(USAGE))?;
    let uri: Uri = url
        .parse()
        .map_err(|e| bad(format!("bad URL {url:?}: {e}")))?;
    if http1 && http2 {
        return Err(bad("--http1 and --http2 exclude each other"));
    }
    ringloop::run(get(Args {
        uri,
        http2,
        http1,
        cacerts,
    }))?
}
