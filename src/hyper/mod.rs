//! hyper on ringloop (cargo feature `hyper`): hyper 1.x's runtime traits
//! implemented on the loop, so hyper's HTTP/1.1 and HTTP/2 servers and
//! clients run on a ringloop loop with no tokio.
//!
//! - [`HyperIo`]: a stream as `hyper::rt::Read + Write`. Over a
//!   [`PollIo`](crate::io::PollIo) (`TcpStream`, `UnixStream`) reads go
//!   straight from the socket into hyper's buffer and writes straight from
//!   hyper's (vectored) buffers to the socket, with no intermediate copy:
//!   the readiness path (`POLL_ADD`, then a non-blocking `recv`/`send`),
//!   on the io_uring and the epoll backend alike. Any stream implementing
//!   [`PollRead`](crate::io::PollRead) and
//!   [`PollWrite`](crate::io::PollWrite) fits (a TLS stream, say).
//! - [`HyperExecutor`]: `hyper::rt::Executor` spawning on the running loop
//!   (HTTP/2 runs each stream as a task); futures need not be `Send`.
//! - [`HyperTimer`]: `hyper::rt::Timer` on the loop's timers (header-read
//!   timeouts, keep-alive pings and idle timeouts).
//!
//! The design and its measurements: `docs/design/hyper.md`.
//!
//! # Examples
//!
//! An HTTP/1.1 server and hyper's client on one loop:
//!
//! ```
//! use std::convert::Infallible;
//! use http_body_util::{BodyExt, Full};
//! use hyper::body::Bytes;
//! use hyper::{Request, Response};
//! use ringloop::hyper::{HyperIo, HyperTimer};
//! use ringloop::net::{TcpListener, TcpStream};
//!
//! ringloop::run(async {
//!     let listener = TcpListener::bind("127.0.0.1:0")?;
//!     let addr = listener.local_addr()?;
//!     ringloop::spawn(async move {
//!         let (stream, _) = listener.accept().await?;
//!         let hello = hyper::service::service_fn(|_req: Request<_>| async {
//!             Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("hello"))))
//!         });
//!         hyper::server::conn::http1::Builder::new()
//!             .timer(HyperTimer)
//!             .serve_connection(HyperIo::from(stream), hello)
//!             .await
//!             .map_err(std::io::Error::other)
//!     })
//!     .detach();
//!
//!     let stream = TcpStream::connect(addr).await?;
//!     let (mut sender, conn) = hyper::client::conn::http1::handshake(HyperIo::from(stream))
//!         .await
//!         .map_err(std::io::Error::other)?;
//!     ringloop::spawn(conn).detach();
//!     let req = Request::get("/").header("host", "x").body(Full::new(Bytes::new())).unwrap();
//!     let res = sender.send_request(req).await.map_err(std::io::Error::other)?;
//!     let body = res.into_body().collect().await.map_err(std::io::Error::other)?;
//!     assert_eq!(body.to_bytes(), "hello");
//!     Ok::<(), std::io::Error>(())
//! })
//! .unwrap()
//! .unwrap();
//! ```

mod io;
mod rt;

pub use io::HyperIo;
pub use rt::{HyperExecutor, HyperSleep, HyperTimer};
