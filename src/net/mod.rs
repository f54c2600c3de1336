//! Sockets: TCP, UDP and Unix domain sockets, on the loop's io_uring (or
//! its epoll backend).
//!
//! Reads and writes take owned buffers and give them back with the
//! result. Their fds are closed through the loop's driver once the socket
//! and every operation still using it are gone.
//!
//! # Made inside a running loop
//!
//! Sockets belong to the loop (thread) that created them, and must be
//! created inside a running loop: a socket holds that loop's driver, every
//! operation on it is submitted there, and its fd is closed there. Outside
//! a loop, `bind`, `pair` and `from_std` return an error saying so. To make
//! a listener before the loop (bound before dropping privileges, passed
//! in by systemd socket activation, inherited), make it with `std` and
//! hand it over inside the loop with `from_std`, which checks the fd:
//!
//! ```
//! use ringloop::net::TcpListener;
//!
//! let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?; // no loop yet
//! assert!(TcpListener::bind("127.0.0.1:0").is_err()); // not outside a loop
//! ringloop::run(async move {
//!     let listener = TcpListener::from_std(std_listener)?;
//!     assert!(listener.local_addr()?.port() > 0);
//!     Ok::<(), std::io::Error>(())
//! })??;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! The user's guide has the details, systemd's fds included:
//! [`crate::guide::sockets`].
//!
//! Cancellation loses nothing: bytes (or a datagram) the kernel delivered
//! after a read's future was dropped are returned by the next read; a
//! connection accepted after its accept's future was dropped is closed.
//!
//! A [`Cores`](crate::Cores) server spreads one address's connections over
//! its cores with a [`CoresListener`]: round-robin from one accepting core
//! (the default: exact shares), one listening socket every core accepts
//! from, or one `SO_REUSEPORT` socket per core ([`Distribution`]).
//!
//! Every socket type can be handed in and out: `from_std` and `into_std`,
//! `FromRawFd`, `IntoRawFd`, `AsFd` and `AsRawFd`, so a listener can come
//! from systemd socket activation, a `socket2` builder or a parent process.
//! `into_std` refuses, giving the socket back in an [`IntoStdError`], while
//! an operation is still in flight on the socket or ringloop holds data the
//! std socket would never see (kept bytes, a listener's accepted
//! connections): nothing is lost in a hand-off.

mod accept;
mod bufring;
mod distribute;
mod handoff;
pub(crate) mod ready;
mod send_zc;
pub(crate) mod socket;

/// The I/O methods TCP and Unix streams share (each holds a `socket`).
macro_rules! stream_io_methods {
    () => {
        /// Reads once into `buf`'s storage (up to `bytes_total()`); `Ok(0)`
        /// at end of stream. Bytes that arrived for a read whose future was
        /// dropped come first.
        pub async fn read<B: $crate::io::IoBufMut>(&self, buf: B) -> (std::io::Result<usize>, B) {
            self.socket.recv(buf).await
        }

        /// Fills `buf`'s whole storage, or fails with `UnexpectedEof` (the
        /// buffer keeps what arrived).
        ///
        /// Cancel-safe: if the future is dropped (a `wait_for` timeout, say),
        /// the bytes it had already received are handed to the next read,
        /// in order; nothing is lost.
        pub async fn read_exact<B: $crate::io::IoBufMut>(
            &self,
            buf: B,
        ) -> (std::io::Result<()>, B) {
            self.socket.recv_exact(buf).await
        }

        /// Writes once from `buf`'s initialised bytes; may write fewer.
        pub async fn write<B: $crate::io::IoBuf>(&self, buf: B) -> (std::io::Result<usize>, B) {
            self.socket.send(buf).await
        }

        /// Writes all of `buf`'s initialised bytes.
        pub async fn write_all<B: $crate::io::IoBuf>(&self, buf: B) -> (std::io::Result<()>, B) {
            self.socket.send_all(buf).await
        }

        /// The chunks received from now on, each in a buffer of `group`
        /// picked by the kernel when the bytes arrive, so a connection
        /// waiting for data holds no buffer (see
        /// [`RecvStream`]($crate::net::RecvStream)). Bytes a
        /// dropped read received come first.
        ///
        /// # Examples
        ///
        /// ```
        /// use ringloop::net::{BufGroup, UnixStream};
        /// ringloop::run(async {
        ///     let (a, b) = UnixStream::pair()?;
        ///     let group = BufGroup::new(8, 1024)?;
        ///     let mut chunks = b.recv_stream(&group);
        ///     let (res, _) = a.write_all(b"ping".to_vec()).await;
        ///     res?;
        ///     let chunk = chunks.next().await.expect("not at the end")?;
        ///     assert_eq!(&chunk[..], b"ping");
        ///     Ok::<(), std::io::Error>(())
        /// })
        /// .unwrap()
        /// .unwrap();
        /// ```
        pub fn recv_stream(&self, group: &$crate::net::BufGroup) -> $crate::net::RecvStream {
            $crate::net::RecvStream::new(self.socket.clone(), group)
        }

        /// Reads into several buffers, filling them in order (`recvmsg`);
        /// returns the total read, `Ok(0)` at end of stream.
        pub async fn read_vectored<B: $crate::io::IoBufMut>(
            &self,
            bufs: Vec<B>,
        ) -> (std::io::Result<usize>, Vec<B>) {
            self.socket.recv_vectored(bufs).await
        }

        /// Writes several buffers' initialised bytes in order in one call
        /// (`sendmsg`); may write fewer.
        pub async fn write_vectored<B: $crate::io::IoBuf>(
            &self,
            bufs: Vec<B>,
        ) -> (std::io::Result<usize>, Vec<B>) {
            self.socket.send_vectored(bufs).await
        }

        /// Shuts down the read side, the write side (sends FIN) or both.
        ///
        /// # Errors
        ///
        /// `shutdown(2)` failures (e.g. `NotConnected`).
        pub async fn shutdown(&self, how: std::net::Shutdown) -> std::io::Result<()> {
            self.socket.shutdown(how).await
        }

        /// Closes the connection now: cancels any operation still in flight
        /// on it (e.g. a read abandoned by a timeout), then closes the fd
        /// through the ring and returns the result. (Dropping the stream
        /// closes it too, in the background.)
        ///
        /// # Errors
        ///
        /// The `close(2)` error.
        pub async fn close(self) -> std::io::Result<()> {
            self.socket.close().await
        }

        /// Adapts the stream to poll-based I/O on borrowed buffers with no
        /// copy (the readiness path; see [`crate::io::PollIo`]).
        pub fn into_poll_io(self) -> $crate::io::PollIo<Self> {
            $crate::io::PollIo::from_parts(self.socket.clone(), self)
        }

        /// Adapts the stream to `futures_io::AsyncRead + AsyncWrite` (one
        /// copy each way; see [`crate::io::Compat`]).
        pub fn into_compat(self) -> $crate::io::Compat {
            $crate::io::Compat::new(self.socket)
        }

        /// Splits the stream into a read half and a write half that two
        /// tasks can use at once. The socket closes when both are dropped;
        /// dropping the write half shuts down the write side (sends FIN),
        /// as tokio does.
        pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
            (
                OwnedReadHalf {
                    socket: self.socket.clone(),
                },
                OwnedWriteHalf {
                    socket: self.socket,
                    shutdown_on_drop: true,
                },
            )
        }
    };
}
pub(crate) use stream_io_methods;
mod tcp;
mod udp;
mod unix;

pub use bufring::{BufGroup, Chunk, RecvStream};
pub use distribute::{CoreListener, CoresListener, Distribution, Listener};
pub use handoff::IntoStdError;
pub use tcp::{ListenOptions, OwnedReadHalf, OwnedWriteHalf, TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use unix::{IntoUnixAddr, UnixAddr, UnixDatagram, UnixListener, UnixStream};
