//! TLS over ringloop's streams (`ringloop::tls`, feature `tls`): handshakes
//! with an rcgen CA, bulk data byte-exact both ways, ALPN, certificate
//! errors, hostile and broken peers, cancellation, close_notify, fds.
//!
//! Every test runs on either backend (`RINGLOOP_BACKEND=epoll`), on
//! 127.0.0.1 port 0, bounded in time; the tests of this binary run one at
//! a time (`serial`), so the fd count of one is not disturbed by another.

mod common;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Sha256, XorShift, fd_count, fd_list, ms, run_bounded, serial};
use ringloop::net::{TcpListener, TcpStream, UnixStream};
use ringloop::tls::{ServerName, TlsAcceptor, TlsConnector, TlsError, TlsStream, rustls};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

const MIB: usize = 1024 * 1024;

// ---- Certificates and configurations ----

/// A CA and a server certificate it signed for `localhost`.
struct Pki {
    ca: CertificateDer<'static>,
    leaf: CertificateDer<'static>,
    key: Vec<u8>,
}

fn ca(
    name: &str,
) -> (
    rcgen::Issuer<'static, rcgen::KeyPair>,
    CertificateDer<'static>,
) {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (rcgen::Issuer::new(params, key), cert.der().clone())
}

impl Pki {
    fn new() -> Pki {
        let (issuer, ca) = ca("ringloop test CA");
        let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let leaf = params.signed_by(&key, &issuer).unwrap();
        Pki {
            ca,
            leaf: leaf.der().clone(),
            key: key.serialize_der(),
        }
    }

    fn server(&self, alpn: &[&[u8]]) -> TlsAcceptor {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone()));
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![self.leaf.clone(), self.ca.clone()], key)
            .unwrap();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        TlsAcceptor::new(Arc::new(config))
    }

    fn client(&self, alpn: &[&[u8]]) -> TlsConnector {
        client_trusting(&self.ca, alpn)
    }
}

/// rustls's `ring` provider, named (rather than the process default) so
/// that another provider enabled in the build cannot change the tests.
/// rustls deprecates it only for lacking post-quantum key exchange.
#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn client_config(ca: &CertificateDer<'static>, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

fn client_trusting(ca: &CertificateDer<'static>, alpn: &[&[u8]]) -> TlsConnector {
    TlsConnector::new(client_config(ca, alpn))
}

fn localhost() -> ServerName<'static> {
    ServerName::try_from("localhost").unwrap()
}

/// The `TlsError` inside `e`, if any.
fn tls_error(e: &io::Error) -> Option<&TlsError> {
    e.get_ref().and_then(|e| e.downcast_ref::<TlsError>())
}

// ---- Helpers ----

/// A listener on 127.0.0.1, port 0.
fn listen() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    (l, addr)
}

/// Handshakes a client and a server over TCP; the results of both sides.
async fn handshake(
    acceptor: &TlsAcceptor,
    connector: &TlsConnector,
    name: ServerName<'static>,
) -> (
    io::Result<TlsStream<TcpStream>>,
    io::Result<TlsStream<TcpStream>>,
) {
    let (listener, addr) = listen();
    let connector = connector.clone();
    let client = ringloop::spawn(async move {
        let tcp = TcpStream::connect(addr).await?;
        connector.connect(name, tcp).await
    });
    let (tcp, _) = listener.accept().await.unwrap();
    let server = acceptor.accept(tcp).await;
    (server, client.await.unwrap())
}

async fn pair(pki: &Pki) -> (TlsStream<TcpStream>, TlsStream<TcpStream>) {
    let (s, c) = handshake(&pki.server(&[]), &pki.client(&[]), localhost()).await;
    (s.expect("server handshake"), c.expect("client handshake"))
}

/// Reads until `close_notify`, hashing; returns (bytes, digest).
async fn read_to_end_hashed(tls: &mut TlsStream<TcpStream>) -> io::Result<(usize, [u8; 32])> {
    let mut h = Sha256::new();
    let mut total = 0;
    let mut buf = Vec::with_capacity(64 * 1024);
    loop {
        buf.clear();
        let (res, b) = tls.read(buf).await;
        buf = b;
        let n = res?;
        if n == 0 {
            return Ok((total, h.finish()));
        }
        h.update(&buf[..n]);
        total += n;
    }
}

/// Writes `data` in pieces of generated sizes (1 B to 256 KiB).
async fn write_in_pieces(tls: &mut TlsStream<TcpStream>, data: &[u8], seed: u64) {
    let mut rng = XorShift::new(seed);
    let mut at = 0;
    while at < data.len() {
        let n = rng.range_usize(1, 256 * 1024).min(data.len() - at);
        let (res, _) = tls.write_all(data[at..at + n].to_vec()).await;
        res.unwrap();
        at += n;
    }
}

/// Runs `f` with the fds of the process checked back to where they were
/// once the loop is gone.
fn fds_checked(f: impl FnOnce()) {
    // The process's first loop that listens for Ctrl-C (as `run` does)
    // leases a signal eventfd, which stays open for later loops by design
    // (src/signal): count from after one.
    ringloop::run(async {}).unwrap();
    let before = fd_count();
    let list = fd_list();
    f();
    let after = fd_count();
    assert_eq!(
        after,
        before,
        "fds leaked:\nbefore {list:?}\nafter {:?}",
        fd_list()
    );
}

// ---- Tests ----

#[test]
fn ten_mib_each_way_byte_exact() {
    let _g = serial();
    let pki = Pki::new();
    let up = XorShift::new(1).bytes(10 * MIB);
    let down = XorShift::new(2).bytes(10 * MIB);
    let (up_sha, down_sha) = (Sha256::digest(&up), Sha256::digest(&down));
    fds_checked(|| {
        run_bounded(Duration::from_secs(120), async {
            let (mut server, mut client) = pair(&pki).await;
            assert!(server.connection().protocol_version().is_some());
            let down2 = down.clone();
            let srv = ringloop::spawn(async move {
                // Up: read until the client's close_notify.
                let got = read_to_end_hashed(&mut server).await.unwrap();
                // Down: the server's 10 MiB, in one call.
                let (res, _) = server.write_all(down2).await;
                res.unwrap();
                server.shutdown().await.unwrap();
                got
            });
            write_in_pieces(&mut client, &up, 3).await;
            client.shutdown().await.unwrap();
            let (n, sha) = read_to_end_hashed(&mut client).await.unwrap();
            assert_eq!((n, sha), (down.len(), down_sha), "server → client");
            let (n, sha) = srv.await.unwrap();
            assert_eq!((n, sha), (up.len(), up_sha), "client → server");
        });
    });
}

#[test]
fn futures_io_full_duplex_both_ways_at_once() {
    use futures_util::io::{AsyncReadExt, AsyncWriteExt};
    let _g = serial();
    let pki = Pki::new();
    let a = XorShift::new(10).bytes(4 * MIB);
    let b = XorShift::new(11).bytes(4 * MIB);
    run_bounded(Duration::from_secs(120), async {
        let (server, client) = pair(&pki).await;
        // Each side writes its 4 MiB while it reads the other's: a reader
        // and a writer polling one stream (split), in two tasks each.
        async fn duplex(tls: TlsStream<TcpStream>, out: Vec<u8>) -> Vec<u8> {
            let (mut r, mut w) = tls.split();
            let writer = ringloop::spawn(async move {
                for chunk in out.chunks(100_000) {
                    w.write_all(chunk).await.unwrap();
                }
                w.close().await.unwrap();
            });
            let mut got = Vec::new();
            r.read_to_end(&mut got).await.unwrap();
            writer.await.unwrap();
            got
        }
        let s = ringloop::spawn(duplex(server, b.clone()));
        let from_server = duplex(client, a.clone()).await;
        let from_client = s.await.unwrap();
        assert!(from_client == a, "client → server differs");
        assert!(from_server == b, "server → client differs");
    });
}

#[test]
fn handshake_over_a_unix_stream() {
    let _g = serial();
    let pki = Pki::new();
    run_bounded(Duration::from_secs(30), async {
        let (a, b) = UnixStream::pair().unwrap();
        let acceptor = pki.server(&[b"h2"]);
        let srv = ringloop::spawn(async move {
            let mut tls = acceptor.accept(a).await.unwrap();
            let (res, buf) = tls.read_exact(Vec::with_capacity(5)).await;
            res.unwrap();
            let (res, _) = tls.write_all(buf).await;
            res.unwrap();
            tls.shutdown().await.unwrap();
        });
        let mut tls = pki.client(&[b"h2"]).connect(localhost(), b).await.unwrap();
        assert_eq!(tls.alpn_protocol(), Some(&b"h2"[..]));
        let (res, _) = tls.write_all(b"hello".to_vec()).await;
        res.unwrap();
        let (res, buf) = tls.read_exact(Vec::with_capacity(5)).await;
        res.unwrap();
        assert_eq!(buf, b"hello");
        let (res, _) = tls.read(Vec::with_capacity(8)).await;
        assert_eq!(res.unwrap(), 0, "close_notify");
        srv.await.unwrap();
        // The transport comes back.
        let _unix: UnixStream = tls.into_inner();
    });
}

#[test]
fn alpn_negotiation() {
    let _g = serial();
    let pki = Pki::new();
    run_bounded(Duration::from_secs(30), async {
        let acceptor = pki.server(&[b"h2", b"http/1.1"]);
        // (what the client offers, what both sides should agree on)
        type Case<'a> = (&'a [&'a [u8]], Option<&'a [u8]>);
        let cases: [Case<'_>; 3] = [
            (&[b"h2", b"http/1.1"], Some(b"h2")),
            (&[b"http/1.1"], Some(b"http/1.1")),
            (&[], None),
        ];
        for (offer, want) in cases {
            let (s, c) = handshake(&acceptor, &pki.client(offer), localhost()).await;
            let (s, c) = (s.unwrap(), c.unwrap());
            assert_eq!(s.alpn_protocol(), want, "server, client offering {offer:?}");
            assert_eq!(c.alpn_protocol(), want, "client, offering {offer:?}");
            assert_eq!(s.server_name(), Some("localhost"), "SNI");
        }
        // Nothing in common: both sides say so.
        let (s, c) = handshake(&acceptor, &pki.client(&[b"spdy/3"]), localhost()).await;
        let (s, c) = (s.unwrap_err(), c.unwrap_err());
        for e in [&s, &c] {
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
            assert!(tls_error(e).is_some(), "{e}");
            assert!(e.to_string().contains("ALPN"), "{e}");
        }
    });
}

#[test]
fn certificate_name_mismatch_is_a_clear_error() {
    let _g = serial();
    let pki = Pki::new();
    run_bounded(Duration::from_secs(30), async {
        let name = ServerName::try_from("wrong.example").unwrap();
        let (s, c) = handshake(&pki.server(&[]), &pki.client(&[]), name).await;
        let c = c.unwrap_err();
        assert_eq!(c.kind(), io::ErrorKind::InvalidData);
        let t = tls_error(&c).expect("a TlsError");
        assert!(t.is_certificate_error() && t.is_handshake_error(), "{c}");
        let msg = c.to_string();
        assert!(
            msg.contains("certificate") && msg.contains("wrong.example"),
            "{msg}"
        );
        assert!(matches!(
            t.rustls_error(),
            rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                    | rustls::CertificateError::NotValidForNameContext { .. }
            )
        ));
        // The server hears the client's alert: its certificate was refused.
        let s = s.unwrap_err();
        assert!(
            tls_error(&s).is_some_and(TlsError::is_certificate_error),
            "{s}"
        );
        assert!(s.to_string().contains("refused our certificate"), "{s}");
    });
}

#[test]
fn unknown_issuer_is_a_clear_error() {
    let _g = serial();
    let pki = Pki::new();
    let (_, other_ca) = ca("another CA");
    run_bounded(Duration::from_secs(30), async {
        let connector = client_trusting(&other_ca, &[]);
        let (_, c) = handshake(&pki.server(&[]), &connector, localhost()).await;
        let c = c.unwrap_err();
        let t = tls_error(&c).expect("a TlsError");
        assert!(t.is_certificate_error(), "{c}");
        assert!(matches!(
            t.rustls_error(),
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
        ));
        assert!(c.to_string().contains("UnknownIssuer"), "{c}");
    });
}

/// Reads a raw connection until it ends; how it ended.
async fn read_until_closed(tcp: &TcpStream) -> io::Result<usize> {
    let mut total = 0;
    loop {
        let (res, _) = tcp.read(Vec::with_capacity(4096)).await;
        match res? {
            0 => return Ok(total),
            n => total += n,
        }
    }
}

#[test]
fn garbage_fails_the_handshake_promptly_and_the_listener_serves_on() {
    let _g = serial();
    let pki = Pki::new();
    let mut random = XorShift::new(7).bytes(4096);
    random[0] = 0xee; // not a TLS content type
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "HTTP",
            b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
        ),
        ("zeros", vec![0; 512]),
        ("random", random),
        // A handshake record header claiming 64 KiB: over TLS's bound.
        (
            "huge record",
            [&[0x16, 0x03, 0x01, 0xff, 0xff][..], &[0xaa; 64]].concat(),
        ),
        // A whole handshake record whose message is nonsense.
        (
            "corrupt hello",
            [&[0x16, 0x03, 0x01, 0x00, 0x10][..], &[0xaa; 16]].concat(),
        ),
    ];
    fds_checked(|| {
        run_bounded(Duration::from_secs(60), async {
            let (listener, addr) = listen();
            let acceptor = pki.server(&[]);
            for (what, bytes) in &cases {
                let bytes = bytes.clone();
                let client = ringloop::spawn(async move {
                    let tcp = TcpStream::connect(addr).await.unwrap();
                    let (res, _) = tcp.write_all(bytes).await;
                    res.unwrap();
                    // The server must close on us (an alert may come first).
                    read_until_closed(&tcp).await
                });
                let (tcp, _) = listener.accept().await.unwrap();
                let t0 = Instant::now();
                let e = acceptor.accept(tcp).await.unwrap_err();
                assert!(t0.elapsed() < Duration::from_secs(2), "{what}: slow");
                assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{what}: {e}");
                let t = tls_error(&e).unwrap_or_else(|| panic!("{what}: {e}"));
                assert!(t.is_handshake_error(), "{what}: {e}");
                assert!(e.to_string().starts_with("TLS handshake failed"), "{e}");
                if *what == "HTTP" {
                    assert!(e.to_string().contains("not seem to speak TLS"), "{e}");
                }
                // Closed, not left hanging (a reset counts as closed).
                match ringloop::wait_for(client, Some(Duration::from_secs(5))).await {
                    Ok(Ok(Ok(_))) => {}
                    Ok(Ok(Err(e))) if e.kind() == io::ErrorKind::ConnectionReset => {}
                    other => panic!("{what}: the client saw {other:?}"),
                }
            }
            // A stalled one: a record header, then nothing.
            let client = ringloop::spawn(async move {
                let tcp = TcpStream::connect(addr).await.unwrap();
                let (res, _) = tcp
                    .write_all(vec![0x16, 0x03, 0x01, 0x00, 0x64, 1, 2])
                    .await;
                res.unwrap();
                read_until_closed(&tcp).await
            });
            let (tcp, _) = listener.accept().await.unwrap();
            let impatient = acceptor.clone().handshake_timeout(Some(ms(200)));
            let t0 = Instant::now();
            let e = impatient.accept(tcp).await.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
            assert!(t0.elapsed() >= ms(200), "{:?}", t0.elapsed());
            assert!(e.to_string().contains("handshake"), "{e}");
            client.await.unwrap().unwrap();
            // The listener serves on.
            let connector = pki.client(&[]);
            let good = ringloop::spawn(async move {
                let tcp = TcpStream::connect(addr).await?;
                let mut tls = connector.connect(localhost(), tcp).await?;
                let (res, _) = tls.write_all(b"fine".to_vec()).await;
                res?;
                tls.shutdown().await
            });
            let (tcp, _) = listener.accept().await.unwrap();
            let mut tls = acceptor.accept(tcp).await.unwrap();
            let (res, buf) = tls.read_exact(Vec::with_capacity(4)).await;
            res.unwrap();
            assert_eq!(buf, b"fine");
            good.await.unwrap().unwrap();
        });
    });
}

/// The first flight of a real client: its ClientHello.
fn client_hello(pki: &Pki) -> Vec<u8> {
    let mut c = rustls::ClientConnection::new(client_config(&pki.ca, &[]), localhost()).unwrap();
    let mut hello = Vec::new();
    while c.wants_write() {
        c.write_tls(&mut hello).unwrap();
    }
    assert!(hello.len() > 100, "a ClientHello of {} bytes", hello.len());
    hello
}

#[test]
fn half_a_client_hello_then_reset_or_close() {
    use std::io::Write;
    let _g = serial();
    let pki = Pki::new();
    let hello = client_hello(&pki);
    let half = &hello[..hello.len() / 2];
    fds_checked(|| {
        run_bounded(Duration::from_secs(30), async {
            let (listener, addr) = listen();
            let acceptor = pki.server(&[]);
            for reset in [true, false] {
                // A std client: its connect completes in the backlog.
                let mut raw = std::net::TcpStream::connect(addr).unwrap();
                let (tcp, _) = listener.accept().await.unwrap();
                raw.write_all(half).unwrap();
                if reset {
                    common::reset(raw);
                } else {
                    raw.shutdown(std::net::Shutdown::Write).unwrap();
                }
                let t0 = Instant::now();
                let e = acceptor.accept(tcp).await.unwrap_err();
                assert!(t0.elapsed() < Duration::from_secs(2));
                let msg = e.to_string();
                if reset {
                    assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{msg}");
                    assert!(msg.contains("TLS handshake failed"), "{msg}");
                } else {
                    assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{msg}");
                    assert!(
                        msg.contains("closed the connection during the TLS handshake"),
                        "{msg}"
                    );
                }
            }
            // The listener serves on.
            let (s, c) = handshake(&acceptor, &pki.client(&[]), localhost()).await;
            s.unwrap();
            c.unwrap();
        });
    });
}

#[test]
fn a_stalled_server_times_the_client_handshake_out() {
    let _g = serial();
    let pki = Pki::new();
    run_bounded(Duration::from_secs(30), async {
        let (listener, addr) = listen();
        let connector = pki.client(&[]).handshake_timeout(ms(150)); // a bare Duration
        let client = ringloop::spawn(async move {
            let tcp = TcpStream::connect(addr).await?;
            connector.connect(localhost(), tcp).await.map(drop)
        });
        let (_silent, _) = listener.accept().await.unwrap();
        let e = client.await.unwrap().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
    });
}

#[test]
fn a_dropped_read_loses_no_plaintext() {
    let _g = serial();
    let pki = Pki::new();
    let data = XorShift::new(5).bytes(MIB);
    run_bounded(Duration::from_secs(60), async {
        let (mut server, mut client) = pair(&pki).await;
        let data2 = data.clone();
        let srv = ringloop::spawn(async move {
            ringloop::sleep(ms(20)).await;
            let mut rng = XorShift::new(6);
            let mut at = 0;
            while at < data2.len() {
                let n = rng.range_usize(1, 40_000).min(data2.len() - at);
                let (res, _) = server.write_all(data2[at..at + n].to_vec()).await;
                res.unwrap();
                at += n;
                if rng.range(0, 3) == 0 {
                    ringloop::sleep(ms(1)).await;
                }
            }
            // read_exact across a drop: 100 bytes, a pause, 100 more.
            let (res, _) = server.write_all(vec![1; 100]).await;
            res.unwrap();
            ringloop::sleep(ms(150)).await;
            let (res, _) = server.write_all(vec![2; 100]).await;
            res.unwrap();
            server.shutdown().await.unwrap();
            server
        });
        // Reads abandoned by a short timeout, again and again.
        let mut got = Vec::with_capacity(data.len());
        let mut dropped = 0;
        let mut rng = XorShift::new(8);
        while got.len() < data.len() {
            let want = rng.range_usize(1, 50_000).min(data.len() - got.len());
            let read = client.read(Vec::with_capacity(want));
            match ringloop::wait_for(read, Some(Duration::from_micros(300))).await {
                Ok((res, buf)) => {
                    let n = res.unwrap();
                    assert!(n > 0, "early end after {}", got.len());
                    got.extend_from_slice(&buf[..n]);
                }
                Err(_) => dropped += 1,
            }
        }
        assert!(dropped > 0, "no read was dropped: the test proved nothing");
        assert!(
            got == data,
            "plaintext lost or reordered across dropped reads"
        );
        // A read_exact dropped after its first 100 bytes: they come back.
        let r = client.read_exact(Vec::with_capacity(200));
        assert!(
            ringloop::wait_for(r, Some(ms(50))).await.is_err(),
            "too soon"
        );
        let (res, buf) = client.read_exact(Vec::with_capacity(200)).await;
        res.unwrap();
        assert_eq!(&buf[..100], &[1; 100][..]);
        assert_eq!(&buf[100..], &[2; 100][..]);
        let (res, _) = client.read(Vec::with_capacity(1)).await;
        assert_eq!(res.unwrap(), 0);
        println!("{dropped} reads dropped in flight");
        drop(srv.await.unwrap());
    });
}

#[test]
fn a_dropped_write_leaves_no_half_written_record() {
    let _g = serial();
    let pki = Pki::new();
    let big = XorShift::new(9).bytes(32 * MIB);
    let tail = b"--tail after a dropped write_all--".to_vec();
    run_bounded(Duration::from_secs(120), async {
        let (mut server, mut client) = pair(&pki).await;
        let srv = ringloop::spawn(async move {
            // Not reading at first: the socket buffers fill up.
            ringloop::sleep(ms(100)).await;
            let mut got = Vec::new();
            loop {
                let (res, buf) = server.read(Vec::with_capacity(64 * 1024)).await;
                match res.expect("a TLS error: a record was cut") {
                    0 => return got,
                    n => got.extend_from_slice(&buf[..n]),
                }
            }
        });
        let w = client.write_all(big.clone());
        let timed_out = ringloop::wait_for(w, Some(ms(20))).await.is_err();
        let (res, _) = client.write_all(tail.clone()).await;
        res.unwrap();
        client.shutdown().await.unwrap();
        let got = srv.await.unwrap();
        assert!(got.ends_with(&tail), "the tail is missing");
        let prefix = &got[..got.len() - tail.len()];
        assert!(big.starts_with(prefix), "not a prefix of what was written");
        if timed_out {
            println!(
                "write_all dropped after committing {} of {} bytes",
                prefix.len(),
                big.len()
            );
        } else {
            println!("write_all finished within 20 ms: nothing was dropped");
        }
    });
}

#[test]
fn shutdown_sends_close_notify_and_half_closes() {
    let _g = serial();
    let pki = Pki::new();
    run_bounded(Duration::from_secs(30), async {
        let (mut server, mut client) = pair(&pki).await;
        server.shutdown().await.unwrap();
        server.shutdown().await.unwrap(); // again: nothing more
        let (res, _) = server.write(b"late".to_vec()).await;
        assert_eq!(res.unwrap_err().kind(), io::ErrorKind::BrokenPipe);
        let (res, _) = client.read(Vec::with_capacity(16)).await;
        assert_eq!(res.unwrap(), 0, "close_notify reads as the end");
        // The other direction still works.
        let (res, _) = client.write_all(b"after".to_vec()).await;
        res.unwrap();
        let (res, buf) = server.read_exact(Vec::with_capacity(5)).await;
        res.unwrap();
        assert_eq!(buf, b"after");
        client.shutdown().await.unwrap();
        let (res, _) = server.read(Vec::with_capacity(16)).await;
        assert_eq!(res.unwrap(), 0);

        // Dropped without shutdown: the peer sees a truncation, not an end.
        let (server, mut client) = pair(&pki).await;
        drop(server);
        let (res, _) = client.read(Vec::with_capacity(16)).await;
        let e = res.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
        assert!(e.to_string().contains("close_notify"), "{e}");
    });
}

#[test]
fn fds_return_to_baseline_after_many_sessions() {
    let _g = serial();
    let pki = Pki::new();
    let hello = client_hello(&pki);
    fds_checked(|| {
        run_bounded(Duration::from_secs(60), async {
            let (listener, addr) = listen();
            let acceptor = pki.server(&[]);
            let connector = pki.client(&[]);
            for i in 0..30 {
                let connector = connector.clone();
                let hello = hello.clone();
                let client = ringloop::spawn(async move {
                    let tcp = TcpStream::connect(addr).await.unwrap();
                    match i % 3 {
                        0 => {
                            let mut tls = connector.connect(localhost(), tcp).await.unwrap();
                            let (res, _) = tls.write_all(vec![i as u8; 1000]).await;
                            res.unwrap();
                            tls.shutdown().await.unwrap();
                        }
                        1 => {
                            let (res, _) = tcp.write_all(b"garbage!".to_vec()).await;
                            res.unwrap();
                            let _ = read_until_closed(&tcp).await;
                        }
                        _ => {
                            let (res, _) = tcp.write_all(hello[..10].to_vec()).await;
                            res.unwrap();
                            // dropped: the connection closes mid-handshake
                        }
                    }
                });
                let (tcp, _) = listener.accept().await.unwrap();
                match acceptor.accept(tcp).await {
                    Ok(mut tls) => {
                        let (res, buf) = tls.read_exact(Vec::with_capacity(1000)).await;
                        res.unwrap();
                        assert!(buf.iter().all(|&b| b == i as u8));
                        // Up to its close_notify (closing on unread bytes
                        // would reset the client's shutdown).
                        let (res, _) = tls.read(Vec::with_capacity(1)).await;
                        assert_eq!(res.unwrap(), 0);
                    }
                    Err(e) => assert!(i % 3 != 0, "{e}"),
                }
                client.await.unwrap();
            }
        });
    });
}

#[test]
fn tls12_works_too() {
    let _g = serial();
    let pki = Pki::new();
    run_bounded(Duration::from_secs(30), async {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(pki.ca.clone()).unwrap();
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS12])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = TlsConnector::new(Arc::new(config));
        let (s, c) = handshake(&pki.server(&[]), &connector, localhost()).await;
        let (mut s, mut c) = (s.unwrap(), c.unwrap());
        assert_eq!(
            c.connection().protocol_version(),
            Some(rustls::ProtocolVersion::TLSv1_2)
        );
        let data = XorShift::new(12).bytes(300_000);
        let (res, _) = c.write_all(data.clone()).await;
        res.unwrap();
        let (res, got) = s.read_exact(Vec::with_capacity(data.len())).await;
        res.unwrap();
        assert!(got == data);
    });
}

/// A server that requires a client certificate from `pki`'s CA.
fn mtls_server(pki: &Pki) -> TlsAcceptor {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca.clone()).unwrap();
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.key.clone()));
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![pki.leaf.clone(), pki.ca.clone()], key)
        .unwrap();
    TlsAcceptor::new(Arc::new(config))
}

#[test]
fn client_certificates_checked_and_missing_one_named() {
    let _g = serial();
    let pki = Pki::new();
    run_bounded(Duration::from_secs(30), async {
        let acceptor = mtls_server(&pki);
        // With a certificate from the CA (the server's own will do).
        let mut roots = rustls::RootCertStore::empty();
        roots.add(pki.ca.clone()).unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.key.clone()));
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_client_auth_cert(vec![pki.leaf.clone()], key)
            .unwrap();
        let (s, c) = handshake(&acceptor, &TlsConnector::new(Arc::new(config)), localhost()).await;
        let (s, _c) = (s.unwrap(), c.unwrap());
        let peer = s.connection().peer_certificates().expect("client certs");
        assert_eq!(peer[0], pki.leaf);

        // Without one: the server names what is missing; under TLS 1.3 the
        // client has finished its side and hears the refusal on its
        // first read.
        let (s, c) = handshake(&acceptor, &pki.client(&[]), localhost()).await;
        let s = s.unwrap_err();
        let t = tls_error(&s).expect("a TlsError");
        assert!(t.is_certificate_error(), "{s}");
        assert!(matches!(
            t.rustls_error(),
            rustls::Error::NoCertificatesPresented
        ));
        let e = match c {
            Err(e) => e,
            Ok(mut c) => c.read(Vec::with_capacity(8)).await.0.unwrap_err(),
        };
        assert!(
            tls_error(&e).is_some_and(TlsError::is_certificate_error),
            "{e}"
        );
        assert!(e.to_string().contains("refused our certificate"), "{e}");
    });
}

#[test]
fn asyncio_streams_over_tls() {
    let _g = serial();
    let pki = Pki::new();
    let big = XorShift::new(13).bytes(MIB);
    fds_checked(|| {
        run_bounded(Duration::from_secs(60), async {
            let acceptor = pki.server(&[]).handshake_timeout(Some(ms(500)));
            // Echo lines; then echo a 1 MiB block; close at the end.
            let server = acceptor
                .start_server(
                    |mut r, w| async move {
                        loop {
                            let line = r.readline().await.unwrap();
                            if line.is_empty() {
                                break; // close_notify
                            }
                            if line == b"block\n" {
                                let block = r.readexactly(MIB).await.unwrap();
                                w.write(&block).unwrap();
                            } else {
                                w.write(&line).unwrap();
                            }
                            w.drain().await.unwrap();
                        }
                        assert!(r.at_eof());
                        w.close();
                        w.wait_closed().await.unwrap();
                    },
                    "127.0.0.1:0",
                )
                .unwrap();
            let addr = server.local_addr().unwrap();

            // A client that sends garbage, then one that stalls: each
            // costs the server one connection, nothing more.
            let tcp = TcpStream::connect(addr).await.unwrap();
            let (res, _) = tcp.write_all(b"not TLS at all\r\n\r\n".to_vec()).await;
            res.unwrap();
            assert!(read_until_closed(&tcp).await.is_ok());
            let stalled = TcpStream::connect(addr).await.unwrap();
            assert!(
                read_until_closed(&stalled).await.is_ok(),
                "timed out, closed"
            );

            let connector = pki.client(&[]);
            let (mut r, w) = connector.open_connection(addr, localhost()).await.unwrap();
            for line in [&b"hello\n"[..], b"over tls\n"] {
                w.write(line).unwrap();
                assert_eq!(r.readline().await.unwrap(), line);
            }
            w.write(b"block\n").unwrap();
            w.write(&big).unwrap();
            w.drain().await.unwrap();
            let back = r.readexactly(MIB).await.unwrap();
            assert!(back == big, "1 MiB through the streams differs");
            // write_eof: close_notify then FIN; the server ends, closes.
            w.write_eof().unwrap();
            assert_eq!(r.read_to_end().await.unwrap(), b"");
            assert!(r.at_eof());
            // close (both ways): the reader then sees an end, not a
            // truncation.
            let (mut r, w) = connector.open_connection(addr, localhost()).await.unwrap();
            w.write(b"last\n").unwrap();
            assert_eq!(r.readline().await.unwrap(), b"last\n");
            w.close();
            w.wait_closed().await.unwrap();
            assert_eq!(r.read_to_end().await.unwrap(), b"");
            drop((r, w, server));
            ringloop::sleep(ms(20)).await; // the server task's close
        });
    });
}
