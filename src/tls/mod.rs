//! TLS over ringloop's streams with [rustls] (cargo feature `tls`, rustls
//! 0.23 with its `ring` provider): [`TlsAcceptor`], [`TlsConnector`] and
//! the [`TlsStream`] they make.
//!
//! The kernel only ever sees buffers the stream owns: rustls's records are
//! read and written through ringloop's owned-buffer I/O, and the caller's
//! buffers are copied into (plaintext out of rustls) or out of (plaintext
//! into rustls). Reads and writes are owned-buffer calls like the plain
//! streams' (`let (res, buf) = tls.read(buf).await;`); `futures_io`'s
//! `AsyncRead`, `AsyncBufRead` and `AsyncWrite` are implemented too.
//!
//! asyncio's streams run over TLS too: [`TlsAcceptor::start_server`] and
//! [`TlsConnector::open_connection`] give the same
//! [`StreamReader`](crate::io::StreamReader) and
//! [`StreamWriter`](crate::io::StreamWriter) as plain TCP.
//!
//! Dropping a handshake closes the connection; dropping a read or write
//! loses no byte and leaves no record half written (see [`TlsStream`] and
//! `docs/design/tls.md`). Errors name what failed: a [`TlsError`] inside an
//! `InvalidData` `io::Error` for what rustls refused (a certificate, the
//! protocol), `UnexpectedEof` for a peer that closed during the handshake,
//! `TimedOut` for one too slow to finish it.
//!
//! # Examples
//!
//! A server and a client on one loop, with a self-signed certificate made
//! by rcgen (a real server loads its own):
//!
//! ```
//! use std::sync::Arc;
//! use ringloop::net::{TcpListener, TcpStream};
//! use ringloop::tls::{rustls, ServerName, TlsAcceptor, TlsConnector};
//! use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])?;
//! let cert = made.cert.der().clone();
//! let key = PrivatePkcs8KeyDer::from(made.signing_key.serialize_der());
//!
//! let mut server = rustls::ServerConfig::builder()
//!     .with_no_client_auth()
//!     .with_single_cert(vec![cert.clone()], PrivateKeyDer::Pkcs8(key))?;
//! server.alpn_protocols = vec![b"http/1.1".to_vec()];
//! let acceptor = TlsAcceptor::new(Arc::new(server));
//!
//! let mut roots = rustls::RootCertStore::empty();
//! roots.add(cert)?;
//! let mut client = rustls::ClientConfig::builder()
//!     .with_root_certificates(roots)
//!     .with_no_client_auth();
//! client.alpn_protocols = vec![b"http/1.1".to_vec()];
//! let connector = TlsConnector::new(Arc::new(client));
//!
//! ringloop::run(async move {
//!     let listener = TcpListener::bind("127.0.0.1:0")?;
//!     let addr = listener.local_addr()?;
//!     let server = ringloop::spawn(async move {
//!         let (tcp, _) = listener.accept().await?;
//!         let mut tls = acceptor.accept(tcp).await?;
//!         let (res, buf) = tls.read(Vec::with_capacity(64)).await;
//!         res?;
//!         let (res, _) = tls.write_all(buf).await; // echo
//!         res?;
//!         tls.shutdown().await
//!     });
//!
//!     let tcp = TcpStream::connect(addr).await?;
//!     let name = ServerName::try_from("localhost").unwrap();
//!     let mut tls = connector.connect(name, tcp).await?;
//!     assert_eq!(tls.alpn_protocol(), Some(&b"http/1.1"[..]));
//!     let (res, _) = tls.write_all(b"hello over TLS".to_vec()).await;
//!     res?;
//!     let (res, buf) = tls.read_exact(Vec::with_capacity(14)).await;
//!     res?;
//!     assert_eq!(buf, b"hello over TLS");
//!     let (res, _) = tls.read(Vec::with_capacity(1)).await;
//!     assert_eq!(res?, 0, "close_notify: a clean end");
//!     server.await?
//! })??;
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use rustls::{ClientConfig, ClientConnection, ServerConfig, ServerConnection};

mod core;
mod error;
mod poll_io;
mod stream;
mod transport;

pub use error::TlsError;
/// The rustls this module is built on (configs, certificates, errors).
pub use rustls;
/// The name a client checks the server's certificate against (and sends as
/// SNI): `ServerName::try_from("example.com")`.
pub use rustls::pki_types::ServerName;
pub use stream::TlsStream;
pub use transport::Transport;

/// How long a handshake may take unless told otherwise: a peer that stalls
/// (or sends a record header and nothing more) is dropped after this.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts TLS sessions on connections a server accepted.
///
/// # Examples
///
/// See [the module documentation](self).
#[derive(Clone)]
pub struct TlsAcceptor {
    config: Arc<ServerConfig>,
    timeout: Option<Duration>,
}

impl TlsAcceptor {
    /// An acceptor with `config` and the [`DEFAULT_HANDSHAKE_TIMEOUT`].
    pub fn new(config: Arc<ServerConfig>) -> TlsAcceptor {
        TlsAcceptor {
            config,
            timeout: Some(DEFAULT_HANDSHAKE_TIMEOUT),
        }
    }

    /// Sets how long a handshake may take, as a [`Duration`] or an
    /// `Option<Duration>` (`None`: as long as the peer likes; bound it
    /// yourself then, e.g. with [`wait_for`](crate::wait_for)).
    #[must_use]
    pub fn handshake_timeout(mut self, timeout: impl Into<Option<Duration>>) -> TlsAcceptor {
        self.timeout = timeout.into();
        self
    }

    /// The server configuration.
    pub fn config(&self) -> &Arc<ServerConfig> {
        &self.config
    }

    /// Runs the server side of a handshake on `stream`.
    ///
    /// Dropping the future closes the connection (the stream is dropped
    /// with it). On failure, the alert rustls chose is sent, without
    /// waiting, and the connection is closed.
    ///
    /// # Errors
    ///
    /// - `InvalidData` with a [`TlsError`]: the client's bytes are not TLS
    ///   or break the protocol, no protocol in common, a client certificate
    ///   refused, an alert from the client.
    /// - `UnexpectedEof`: the client closed the connection during the
    ///   handshake.
    /// - `TimedOut`: the handshake did not finish within the timeout.
    /// - The transport's errors (`ConnectionReset`, ...), named as the
    ///   handshake's.
    pub async fn accept<S: Transport>(&self, stream: S) -> io::Result<TlsStream<S>> {
        let conn =
            ServerConnection::new(self.config.clone()).map_err(|e| error::tls_error(true, e))?;
        TlsStream::handshake(stream, conn.into(), self.timeout).await
    }
}

impl fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsAcceptor")
            .field("alpn_protocols", &self.config.alpn_protocols)
            .field("handshake_timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Opens TLS sessions on connections a client made.
///
/// # Examples
///
/// See [the module documentation](self).
#[derive(Clone)]
pub struct TlsConnector {
    config: Arc<ClientConfig>,
    timeout: Option<Duration>,
}

impl TlsConnector {
    /// A connector with `config` and the [`DEFAULT_HANDSHAKE_TIMEOUT`].
    pub fn new(config: Arc<ClientConfig>) -> TlsConnector {
        TlsConnector {
            config,
            timeout: Some(DEFAULT_HANDSHAKE_TIMEOUT),
        }
    }

    /// Sets how long a handshake may take, as a [`Duration`] or an
    /// `Option<Duration>` (`None`: no bound).
    #[must_use]
    pub fn handshake_timeout(mut self, timeout: impl Into<Option<Duration>>) -> TlsConnector {
        self.timeout = timeout.into();
        self
    }

    /// The client configuration.
    pub fn config(&self) -> &Arc<ClientConfig> {
        &self.config
    }

    /// Runs the client side of a handshake on `stream`, checking the
    /// server's certificate against `server_name` (also sent as SNI when
    /// it is a DNS name).
    ///
    /// Dropping the future closes the connection (the stream is dropped
    /// with it).
    ///
    /// # Errors
    ///
    /// - `InvalidData` with a [`TlsError`]: the server's certificate was
    ///   refused (unknown issuer, not valid for `server_name`, expired;
    ///   [`TlsError::is_certificate_error`]), no protocol in common, an
    ///   alert from the server, bytes that are not TLS.
    /// - `UnexpectedEof`: the server closed the connection during the
    ///   handshake.
    /// - `TimedOut`, and the transport's errors, as for
    ///   [`TlsAcceptor::accept`].
    pub async fn connect<S: Transport>(
        &self,
        server_name: ServerName<'_>,
        stream: S,
    ) -> io::Result<TlsStream<S>> {
        let conn = ClientConnection::new(self.config.clone(), server_name.to_owned())
            .map_err(|e| error::tls_error(true, e))?;
        TlsStream::handshake(stream, conn.into(), self.timeout).await
    }
}

impl fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConnector")
            .field("alpn_protocols", &self.config.alpn_protocols)
            .field("handshake_timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}
