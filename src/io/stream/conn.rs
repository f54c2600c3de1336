//! [`Conn`]: what a [`StreamReader`](super::StreamReader) and its
//! [`StreamWriter`](super::StreamWriter) run over: a socket, or (feature
//! `tls`) a TLS session the two share.

use std::fmt;
use std::io;
use std::net::Shutdown;

use crate::net::socket::Socket;

/// A connection under a reader and a writer (cloned: one for each).
#[derive(Clone)]
pub(crate) enum Conn {
    Plain(Socket),
    #[cfg(feature = "tls")]
    Tls(tls::Shared),
}

impl From<Socket> for Conn {
    fn from(socket: Socket) -> Conn {
        Conn::Plain(socket)
    }
}

impl Conn {
    /// Receives into `buf` (from its start): `Ok(0)` at the end.
    pub(crate) async fn recv(&self, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        match self {
            Conn::Plain(s) => s.recv(buf).await,
            #[cfg(feature = "tls")]
            Conn::Tls(t) => t.recv(buf).await,
        }
    }

    /// Sends from `buf`; returns once what it counts is on its way to the
    /// peer (for TLS: encrypted and written to the socket).
    pub(crate) async fn send(&self, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        match self {
            Conn::Plain(s) => s.send(buf).await,
            #[cfg(feature = "tls")]
            Conn::Tls(t) => t.send(buf).await,
        }
    }

    /// Shuts down `how` (for TLS, the write side first sends close_notify).
    pub(crate) async fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.shutdown(how).await,
            #[cfg(feature = "tls")]
            Conn::Tls(t) => t.shutdown(how).await,
        }
    }

    /// The socket, for a plain connection (whose `at_eof` may peek it).
    pub(crate) fn socket(&self) -> Option<&Socket> {
        match self {
            Conn::Plain(s) => Some(s),
            #[cfg(feature = "tls")]
            Conn::Tls(_) => None,
        }
    }

    /// For TLS: whether the peer's close_notify arrived and every byte
    /// before it was read (known without I/O).
    pub(crate) fn at_clean_end(&self) -> bool {
        match self {
            Conn::Plain(_) => false,
            #[cfg(feature = "tls")]
            Conn::Tls(t) => t.at_clean_end(),
        }
    }
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Conn::Plain(s) => s.fmt(f),
            #[cfg(feature = "tls")]
            Conn::Tls(t) => t.fmt(f),
        }
    }
}

#[cfg(feature = "tls")]
pub(crate) mod tls {
    //! A TLS session shared by a stream reader and writer, which run in
    //! different tasks: each call borrows the session only inside a poll,
    //! and the reader never polls the writer's write of records (see
    //! `TlsStream::poll_readable`).

    use std::cell::RefCell;
    use std::fmt;
    use std::future::poll_fn;
    use std::io;
    use std::net::Shutdown;
    use std::rc::Rc;
    use std::task::{Poll, ready};

    use crate::net::TcpStream;
    use crate::tls::TlsStream;

    #[derive(Clone)]
    pub(crate) struct Shared(Rc<RefCell<TlsStream<TcpStream>>>);

    impl Shared {
        pub(crate) fn new(tls: TlsStream<TcpStream>) -> Shared {
            Shared(Rc::new(RefCell::new(tls)))
        }

        pub(super) async fn recv(&self, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
            if buf.capacity() == 0 {
                return (Ok(0), buf);
            }
            let ready = poll_fn(|cx| self.0.borrow_mut().poll_readable(cx, false)).await;
            match ready {
                Ok(()) => {
                    let (n, buf) = self.0.borrow_mut().take_plaintext(buf, 0);
                    (Ok(n), buf)
                }
                Err(e) => (Err(e), buf),
            }
        }

        pub(super) async fn send(&self, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
            let mut committed = None;
            let res = poll_fn(|cx| {
                let mut tls = self.0.borrow_mut();
                let n = match committed {
                    Some(n) => n,
                    None => {
                        let n = ready!(tls.poll_write_plain(cx, &buf))?;
                        committed = Some(n);
                        n
                    }
                };
                // A writer hands over bytes only once they are written
                // (nothing else would keep the records moving).
                ready!(tls.poll_flush_tls(cx))?;
                Poll::Ready(Ok(n))
            })
            .await;
            (res, buf)
        }

        pub(super) async fn shutdown(&self, how: Shutdown) -> io::Result<()> {
            if how != Shutdown::Read {
                poll_fn(|cx| self.0.borrow_mut().poll_shutdown(cx)).await?;
            }
            if how != Shutdown::Write {
                self.0.borrow_mut().reading_shut_here();
                let tcp = self.0.borrow().transport();
                tcp.shutdown(Shutdown::Read).await?;
            }
            Ok(())
        }

        pub(super) fn at_clean_end(&self) -> bool {
            self.0.borrow_mut().at_clean_end()
        }
    }

    impl fmt::Debug for Shared {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self.0.try_borrow() {
                Ok(tls) => tls.fmt(f),
                Err(_) => f.write_str("TlsStream { .. }"),
            }
        }
    }
}
