//! An echo server: every byte a client sends comes back.
//!
//! ```sh
//! cargo run --release --example echo_server                 # 127.0.0.1:7878
//! cargo run --release --example echo_server -- --addr 127.0.0.1:9000
//! ```
//!
//! Each connection runs in its own task with one reusable 16 KiB buffer:
//! read, then write everything read. Clients that reset or half-close are
//! handled (a half-closed client gets its last bytes back, then the server
//! closes its side). Ctrl-C stops the server cleanly.

use std::io;
use std::net::SocketAddr;

use ringloop::net::{TcpListener, TcpStream};

async fn echo(stream: TcpStream, peer: SocketAddr) {
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut total = 0u64;
    let outcome: io::Result<()> = async {
        loop {
            buf.clear();
            let (res, b) = stream.read(buf).await;
            let n = res?;
            if n == 0 {
                // The client half-closed (or closed): we are done writing too.
                return Ok(());
            }
            let (res, b) = stream.write_all(b).await;
            res?;
            total += n as u64;
            buf = b;
        }
    }
    .await;
    match outcome {
        Ok(()) => println!("closed {peer} after echoing {total} bytes"),
        Err(e) => println!("dropped {peer} after echoing {total} bytes: {e}"),
    }
}

fn parse_addr() -> Result<SocketAddr, String> {
    let mut args = std::env::args().skip(1);
    let mut addr = "127.0.0.1:7878".to_owned();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--addr" => addr = args.next().ok_or("--addr needs a value")?,
            "-h" | "--help" => {
                println!("usage: echo_server [--addr HOST:PORT]   (default 127.0.0.1:7878)");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    addr.parse()
        .map_err(|e| format!("bad --addr {addr:?}: {e}"))
}

fn main() -> io::Result<()> {
    let addr = parse_addr().map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    ringloop::run(async move {
        let listener = TcpListener::bind(addr)?;
        println!("echo server listening on {}", listener.local_addr()?);
        let accept_loop = async {
            loop {
                let (stream, peer) = listener.accept().await?;
                println!("opened {peer}");
                ringloop::spawn(echo(stream, peer)).detach();
            }
        };
        let stop = ringloop::signal::ctrl_c();
        let r: io::Result<()> = futures_util::future::select(Box::pin(accept_loop), Box::pin(stop))
            .await
            .factor_first()
            .0;
        println!("shutting down");
        r
    })?
}
