//! Timers under load: the echo servers with a per-connection idle timeout
//! that every message resets (issue 16, part 5).
//!
//! - `ringloop-idle-timeout`: the `ringloop` server (the backend
//!   `ringloop::run` picks) whose connections close after [`idle`] without
//!   a message.
//! - `tokio-idle-timeout`: the `tokio` server, the same way, on a
//!   `current_thread` runtime with `enable_io` and `enable_time`.
//!
//! Two forms of the timeout on each side, chosen by
//! `RINGLOOP_ECHO_IDLE=per-read|reset` (default `reset`, the faster of the
//! two on both sides in paired runs, see `docs/bench/timers_under_load.md`):
//! - `per-read`: a new timeout around each read: `ringloop::wait_for(read,
//!   idle)`, `tokio::time::timeout(idle, read)`;
//! - `reset`: one sleep per connection, raced against each read and moved
//!   `idle` ahead after every message: `Sleep::reset` with a `poll_fn` that
//!   polls the read first (ringloop), `Sleep::reset` in a `biased`
//!   `tokio::select!` (tokio).
//!
//! `RINGLOOP_ECHO_IDLE_MS` sets the timeout (default 10,000 ms), so a short
//! one can be checked by hand: a connection left silent is closed.

use std::future::poll_fn;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::OnceLock;
use std::task::Poll;
use std::time::{Duration, Instant};

use super::{BUF, announce_backend, count, localhost0, write_port};

/// The two server kinds this module serves.
pub(crate) const KINDS: [&str; 2] = ["ringloop-idle-timeout", "tokio-idle-timeout"];

/// How the idle timeout is written (`RINGLOOP_ECHO_IDLE`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    PerRead,
    Reset,
}

fn form() -> io::Result<Form> {
    match std::env::var("RINGLOOP_ECHO_IDLE").as_deref() {
        Err(_) | Ok("reset") => Ok(Form::Reset),
        Ok("per-read") => Ok(Form::PerRead),
        Ok(other) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("RINGLOOP_ECHO_IDLE={other:?}: expected per-read or reset"),
        )),
    }
}

/// The idle timeout (`RINGLOOP_ECHO_IDLE_MS`, default 10 s).
fn idle_from_env() -> io::Result<Duration> {
    match std::env::var("RINGLOOP_ECHO_IDLE_MS") {
        Err(_) => Ok(Duration::from_secs(10)),
        Ok(v) => v.parse().map(Duration::from_millis).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("RINGLOOP_ECHO_IDLE_MS={v:?}: {e}"),
            )
        }),
    }
}

/// The idle timeout, read once by [`serve`].
static IDLE: OnceLock<Duration> = OnceLock::new();

fn idle() -> Duration {
    *IDLE.get().expect("serve sets the idle timeout first")
}

/// Serves `kind` (one of [`KINDS`]).
pub(crate) fn serve(kind: &str, port_file: &Path) -> io::Result<()> {
    let form = form()?;
    let _ = IDLE.set(idle_from_env()?);
    match kind {
        "ringloop-idle-timeout" => ringloop::run(ringloop_accept(port_file.to_owned(), form))?,
        "tokio-idle-timeout" => {
            announce_backend(kind, "epoll");
            serve_tokio(port_file, form)
        }
        other => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not an idle-timeout server: {other:?}"),
        )),
    }
}

async fn ringloop_accept(port_file: PathBuf, form: Form) -> io::Result<()> {
    announce_backend(
        "ringloop-idle-timeout",
        ringloop::ring_stats()?.backend.name(),
    );
    let listener = ringloop::net::TcpListener::bind(localhost0())?;
    write_port(&port_file, listener.local_addr()?.port())?;
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        match form {
            Form::PerRead => ringloop::spawn(ringloop_per_read(stream)).detach(),
            Form::Reset => ringloop::spawn(ringloop_reset(stream)).detach(),
        }
    }
}

/// `wait_for` around each read: a timer armed when the read goes pending,
/// disarmed when it completes.
async fn ringloop_per_read(stream: ringloop::net::TcpStream) {
    let mut buf = Vec::with_capacity(BUF);
    loop {
        buf.clear();
        let (res, b) = match ringloop::wait_for(stream.read(buf), idle()).await {
            Ok(done) => done,
            Err(_idle) => return,
        };
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

/// One `Sleep` per connection, raced against each read (the read first)
/// and moved `idle` ahead after every message.
async fn ringloop_reset(stream: ringloop::net::TcpStream) {
    let mut buf = Vec::with_capacity(BUF);
    let mut timer = ringloop::sleep(idle());
    loop {
        buf.clear();
        let mut read = pin!(stream.read(buf));
        let done = poll_fn(|cx| {
            if let Poll::Ready(r) = read.as_mut().poll(cx) {
                return Poll::Ready(Some(r));
            }
            std::pin::Pin::new(&mut timer).poll(cx).map(|()| None)
        })
        .await;
        let Some((res, b)) = done else {
            return; // idle for too long
        };
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
        timer.reset(Instant::now() + idle());
    }
}

fn serve_tokio(port_file: &Path, form: Form) -> io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(localhost0()).await?;
        write_port(port_file, listener.local_addr()?.port())?;
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            match form {
                Form::PerRead => tokio::spawn(tokio_per_read(stream)),
                Form::Reset => tokio::spawn(tokio_reset(stream)),
            };
        }
    })
}

/// `tokio::time::timeout` around each read.
async fn tokio_per_read(mut stream: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; BUF];
    loop {
        let n = match tokio::time::timeout(idle(), stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) | Err(_) => return,
            Ok(Ok(n)) => n,
        };
        count(n);
        if stream.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// One pinned `Sleep` per connection in a `biased` `select!` with each
/// read, `reset` after every message.
async fn tokio_reset(mut stream: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; BUF];
    let timer = tokio::time::sleep(idle());
    tokio::pin!(timer);
    loop {
        let n = tokio::select! {
            biased;
            r = stream.read(&mut buf) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            () = &mut timer => return,
        };
        count(n);
        if stream.write_all(&buf[..n]).await.is_err() {
            return;
        }
        timer.as_mut().reset(tokio::time::Instant::now() + idle());
    }
}
