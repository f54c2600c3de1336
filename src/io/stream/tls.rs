//! asyncio's streams over TLS (feature `tls`):
//! [`TlsConnector::open_connection`] and [`TlsAcceptor::start_server`],
//! with the same [`StreamReader`] and [`StreamWriter`] as plain TCP.

use std::future::Future;
use std::io;
use std::net::ToSocketAddrs;

use super::conn::{Conn, tls::Shared};
use super::{DEFAULT_LIMIT, Server, StreamReader, StreamWriter, nodelay, serve, streams};
use crate::net::TcpStream;
use crate::tls::{ServerName, TlsAcceptor, TlsConnector};

impl TlsConnector {
    /// Connects to `addr`, runs the TLS handshake checking the server's
    /// certificate against `server_name`, and returns the session's reader
    /// and writer (asyncio's `open_connection(..., ssl=context)`).
    ///
    /// The reader and writer share the session: the writer's `close` and
    /// `write_eof` send `close_notify` before the TCP FIN; the reader
    /// reports the end of stream at the peer's `close_notify`, and an end
    /// without one as an `UnexpectedEof` error (a truncation).
    ///
    /// # Errors
    ///
    /// Connection failures; the handshake's, as for
    /// [`TlsConnector::connect`].
    ///
    /// # Examples
    ///
    /// See [`TlsAcceptor::start_server`].
    pub async fn open_connection(
        &self,
        addr: impl ToSocketAddrs,
        server_name: ServerName<'_>,
    ) -> io::Result<(StreamReader, StreamWriter)> {
        let tcp = TcpStream::connect(addr).await?;
        nodelay(&tcp);
        let tls = self.connect(server_name, tcp).await?;
        Ok(streams(Conn::Tls(Shared::new(tls)), DEFAULT_LIMIT))
    }
}

impl TlsAcceptor {
    /// Listens on `addr` and, for each connection, runs the TLS handshake
    /// and then `handler(reader, writer)`, both in the connection's own
    /// task (asyncio's `start_server(..., ssl=context)`). A failed or
    /// timed-out handshake closes that connection and nothing more; the
    /// server accepts until the returned [`Server`] is dropped or closed,
    /// as [`start_server`](crate::io::start_server)'s.
    ///
    /// # Errors
    ///
    /// Bind failures, or no running loop.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use ringloop::tls::{rustls, ServerName, TlsAcceptor, TlsConnector};
    /// use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])?;
    /// let cert = made.cert.der().clone();
    /// let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
    /// let server = rustls::ServerConfig::builder()
    ///     .with_no_client_auth()
    ///     .with_single_cert(vec![cert.clone()], key)?;
    /// let mut roots = rustls::RootCertStore::empty();
    /// roots.add(cert)?;
    /// let client = rustls::ClientConfig::builder()
    ///     .with_root_certificates(roots)
    ///     .with_no_client_auth();
    /// let (acceptor, connector) = (
    ///     TlsAcceptor::new(Arc::new(server)),
    ///     TlsConnector::new(Arc::new(client)),
    /// );
    ///
    /// ringloop::run(async move {
    ///     let server = acceptor.start_server(
    ///         |mut r, w| async move {
    ///             while let Ok(line) = r.readline().await {
    ///                 if line.is_empty() { break } // close_notify
    ///                 if w.write(&line).is_err() || w.drain().await.is_err() {
    ///                     break;
    ///                 }
    ///             }
    ///         },
    ///         "127.0.0.1:0",
    ///     )?;
    ///     let name = ServerName::try_from("localhost").unwrap();
    ///     let (mut r, w) = connector.open_connection(server.local_addr()?, name).await?;
    ///     w.write(b"hello over TLS\n")?;
    ///     assert_eq!(r.readline().await?, b"hello over TLS\n");
    ///     w.close();
    ///     w.wait_closed().await?;
    ///     Ok::<(), Box<dyn std::error::Error>>(())
    /// })
    /// .unwrap()
    /// .unwrap();
    /// # Ok(())
    /// # }
    /// ```
    pub fn start_server<H, F>(&self, handler: H, addr: impl ToSocketAddrs) -> io::Result<Server>
    where
        H: Fn(StreamReader, StreamWriter) -> F + 'static,
        F: Future<Output = ()> + 'static,
    {
        let acceptor = self.clone();
        let handler = std::rc::Rc::new(handler);
        serve(addr, move |tcp| {
            let acceptor = acceptor.clone();
            let handler = handler.clone();
            crate::spawn(async move {
                // A client that fails its handshake is its own problem.
                if let Ok(tls) = acceptor.accept(tcp).await {
                    let (r, w) = streams(Conn::Tls(Shared::new(tls)), DEFAULT_LIMIT);
                    handler(r, w).await;
                }
            })
            .detach();
        })
    }
}
