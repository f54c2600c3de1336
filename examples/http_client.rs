//! An HTTP client on ringloop and hyper: GETs a URL and prints the status,
//! the headers and the body's size.
//!
//! ```sh
//! cargo run --release --features hyper --example http_server &
//! cargo run --release --features hyper --example http_client -- http://127.0.0.1:8080/file
//! cargo run --release --features hyper --example http_client -- --http2 http://127.0.0.1:8080/
//! ```
//!
//! `--http2` speaks HTTP/2 with prior knowledge (h2c). The body is read
//! frame by frame as it arrives, counted and dropped. `https` URLs need
//! the TLS stream (not yet in ringloop): the connection is made by
//! `connect` below, the one place a TLS stream would slot in, since
//! [`HyperIo`] takes any `PollRead + PollWrite` stream.

use std::io;
use std::time::Instant;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::{Request, Uri, header};
use ringloop::hyper::{HyperExecutor, HyperIo};
use ringloop::io::PollIo;
use ringloop::net::TcpStream;

const USAGE: &str = "usage: http_client [--http2] URL
  --http2  HTTP/2 with prior knowledge (h2c) instead of HTTP/1.1";

fn bad(what: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what.to_string())
}

/// Connects to the URL's host and port (80 by default).
async fn connect(uri: &Uri) -> io::Result<HyperIo<PollIo<TcpStream>>> {
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => return Err(bad("https needs TLS, which this build lacks")),
        _ => return Err(bad(format!("{uri}: not an http:// URL"))),
    }
    let host = uri.host().ok_or_else(|| bad(format!("{uri}: no host")))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(80);
    let stream = TcpStream::connect((host, port)).await?;
    stream.set_nodelay(true)?;
    Ok(HyperIo::from(stream))
}

async fn get(uri: Uri, http2: bool) -> io::Result<()> {
    let io = connect(&uri).await?;
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
    let mut url = None;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--http2" => http2 = true,
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
    ringloop::run(get(uri, http2))?
}
