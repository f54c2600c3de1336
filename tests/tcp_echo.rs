//! TCP end to end against an echo server: bulk transfer checked with
//! SHA-256, many concurrent connections, half-close, and a peer reset in the
//! middle of a large write.

mod common;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::{Sha256, XorShift, ensure_nofile, hex, ms, run_bounded};
use ringloop::net::{TcpListener, TcpStream};
use ringloop::{Task, sleep, spawn};

/// What the echo server saw on one connection.
#[derive(Debug)]
struct ConnReport {
    bytes: u64,
    sha: [u8; 32],
    error: Option<io::ErrorKind>,
}

type Reports = Rc<RefCell<HashMap<SocketAddr, ConnReport>>>;

/// Echoes one connection (like examples/echo_server.rs), hashing what it
/// reads; records a report keyed by the peer's address before closing.
async fn echo(stream: TcpStream, peer: SocketAddr, reports: Reports) {
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut sha = Sha256::new();
    let mut bytes = 0u64;
    let outcome: io::Result<()> = async {
        loop {
            buf.clear();
            let (res, b) = stream.read(buf).await;
            let n = res?;
            if n == 0 {
                return Ok(());
            }
            assert_eq!(
                b.len(),
                n,
                "read's Ok(n) disagrees with the buffer's length"
            );
            sha.update(&b);
            bytes += n as u64;
            let (res, b) = stream.write_all(b).await;
            res?;
            buf = b;
        }
    }
    .await;
    let report = ConnReport {
        bytes,
        sha: sha.finish(),
        error: outcome.err().map(|e| e.kind()),
    };
    reports.borrow_mut().insert(peer, report);
    // The report is in before the client can see our FIN.
    drop(stream);
}

/// Starts an echo server on 127.0.0.1:0: its address, the per-connection
/// reports, and the accept loop's task (dropping it stops the server).
fn start_echo_server() -> (SocketAddr, Reports, Task<io::Result<()>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local_addr");
    let reports: Reports = Rc::default();
    let r = reports.clone();
    let server = spawn(async move {
        loop {
            let (stream, peer) = listener.accept().await?;
            spawn(echo(stream, peer, r.clone())).detach();
        }
    });
    (addr, reports, server)
}

#[test]
fn sha256_matches_fips_180_vectors() {
    let cases: [(&[u8], &str); 3] = [
        (
            b"abc",
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        ),
        (
            b"",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ),
        (
            b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
        ),
    ];
    for (msg, want) in cases {
        assert_eq!(hex(&Sha256::digest(msg)), want, "SHA-256 of {msg:?}");
    }
    // One million 'a', fed in uneven pieces.
    let mut h = Sha256::new();
    let a = vec![b'a'; 1_000_000];
    let mut rest = &a[..];
    let mut step = 1;
    while !rest.is_empty() {
        let n = step.min(rest.len());
        h.update(&rest[..n]);
        rest = &rest[n..];
        step = step * 7 % 1013 + 1;
    }
    assert_eq!(
        hex(&h.finish()),
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
    );
    // Streaming in any split equals one shot, across block boundaries.
    let data = XorShift::new(7).bytes(1000);
    let whole = Sha256::digest(&data);
    for split in [0, 1, 55, 56, 63, 64, 65, 119, 128, 999, 1000] {
        let mut h = Sha256::new();
        h.update(&data[..split]);
        h.update(&data[split..]);
        assert_eq!(h.finish(), whole, "split at {split}");
    }
}

#[test]
fn xorshift_is_deterministic() {
    let a = XorShift::new(42).bytes(1 << 16);
    let b = XorShift::new(42).bytes(1 << 16);
    let c = XorShift::new(43).bytes(1 << 16);
    assert_eq!(a, b);
    assert_ne!(a, c);
    // Not degenerate: every byte value shows up in 64 KiB.
    let mut seen = [false; 256];
    for &x in &a {
        seen[x as usize] = true;
    }
    assert!(seen.iter().all(|&s| s));
}

/// 64 MiB each way on one connection; the client's halves run in two tasks.
#[test]
fn echo_64_mib_split_stream() {
    const TOTAL: usize = 64 << 20;
    // Generous: an unoptimised build hashes 192 MiB in ~30 s.
    run_bounded(Duration::from_secs(300), async {
        let (addr, reports, _server) = start_echo_server();
        let stream = TcpStream::connect(addr).await.expect("connect");
        let me = stream.local_addr().expect("local_addr");
        let (mut rd, mut wr) = stream.into_split();

        let writer = spawn(async move {
            let mut rng = XorShift::new(0x5eed);
            let mut sizes = XorShift::new(0x517e);
            let mut sha = Sha256::new();
            let mut sent = 0usize;
            let mut buf = Vec::with_capacity(256 * 1024);
            while sent < TOTAL {
                let n = sizes.range_usize(1, 256 * 1024).min(TOTAL - sent);
                buf.clear();
                buf.resize(n, 0);
                rng.fill(&mut buf);
                sha.update(&buf);
                let (res, b) = wr.write_all(buf).await;
                res.expect("client write_all");
                buf = b;
                sent += n;
            }
            wr.shutdown().await.expect("client shutdown(Write)");
            (sent, sha.finish())
        });
        let reader = spawn(async move {
            let mut sha = Sha256::new();
            let mut got = 0usize;
            let mut buf = Vec::with_capacity(128 * 1024);
            loop {
                buf.clear();
                let (res, b) = rd.read(buf).await;
                let n = res.expect("client read");
                assert_eq!(b.len(), n);
                if n == 0 {
                    break;
                }
                sha.update(&b);
                got += n;
                buf = b;
            }
            (got, sha.finish())
        });

        let (sent, sent_sha) = writer.await.expect("writer task");
        let (got, got_sha) = reader.await.expect("reader task");
        assert_eq!(sent, TOTAL);
        assert_eq!(got, TOTAL, "bytes echoed back");
        assert_eq!(hex(&got_sha), hex(&sent_sha), "SHA-256 received vs sent");
        let reports = reports.borrow();
        let server = reports
            .get(&me)
            .expect("the server reported our connection");
        assert_eq!(server.error, None, "server error");
        assert_eq!(server.bytes, TOTAL as u64, "bytes the server read");
        assert_eq!(hex(&server.sha), hex(&sent_sha), "SHA-256 the server saw");
    });
}

/// One client connection: writes `size` generated bytes (random chunk sizes)
/// while reading the echo; returns (local addr, sent SHA, received bytes,
/// received SHA).
async fn echo_client(
    addr: SocketAddr,
    seed: u64,
    size: usize,
) -> io::Result<(SocketAddr, [u8; 32], usize, [u8; 32])> {
    let stream = TcpStream::connect(addr).await?;
    let me = stream.local_addr()?;
    let s = &stream;
    let write = async move {
        let mut rng = XorShift::new(seed);
        let mut sha = Sha256::new();
        let mut sent = 0;
        while sent < size {
            let n = rng.range_usize(1, 16 * 1024).min(size - sent);
            let chunk = rng.bytes(n);
            sha.update(&chunk);
            let (res, _) = s.write_all(chunk).await;
            res?;
            sent += n;
        }
        s.shutdown(Shutdown::Write).await?;
        Ok::<_, io::Error>(sha.finish())
    };
    let read = async move {
        let mut sha = Sha256::new();
        let mut got = 0;
        let mut buf = Vec::with_capacity(8 * 1024);
        loop {
            buf.clear();
            let (res, b) = s.read(buf).await;
            let n = res?;
            if n == 0 {
                return Ok::<_, io::Error>((got, sha.finish()));
            }
            sha.update(&b);
            got += n;
            buf = b;
        }
    };
    let (w, r) = futures_util::future::join(write, read).await;
    let sent_sha = w?;
    let (got, got_sha) = r?;
    Ok((me, sent_sha, got, got_sha))
}

/// 500 connections at once, 64 KiB each way, every one checked.
#[test]
fn echo_500_concurrent_connections() {
    const CONNS: usize = 500;
    const SIZE: usize = 64 * 1024;
    ensure_nofile(2048);
    run_bounded(Duration::from_secs(120), async {
        let (addr, reports, _server) = start_echo_server();
        let clients: Vec<_> = (0..CONNS)
            .map(|i| spawn(echo_client(addr, i as u64, SIZE)))
            .collect();
        let mut results = Vec::with_capacity(CONNS);
        for (i, c) in clients.into_iter().enumerate() {
            let r = c.await.expect("client task");
            results.push(r.unwrap_or_else(|e| panic!("client {i}: {e}")));
        }
        // Every server handler has recorded its report once its client saw
        // EOF; all clients did.
        let reports = reports.borrow();
        assert_eq!(reports.len(), CONNS, "connections the server reported");
        for (i, (me, sent_sha, got, got_sha)) in results.into_iter().enumerate() {
            assert_eq!(got, SIZE, "client {i}: bytes echoed back");
            assert_eq!(got_sha, sent_sha, "client {i}: SHA-256 received vs sent");
            let s = reports.get(&me).expect("server report for client");
            assert_eq!(s.error, None, "client {i}: server error");
            assert_eq!(s.bytes, SIZE as u64, "client {i}: bytes the server read");
            assert_eq!(s.sha, sent_sha, "client {i}: SHA-256 the server saw");
        }
    });
}

/// Reads until end of stream.
async fn read_to_end(stream: &TcpStream) -> io::Result<Vec<u8>> {
    let mut all = Vec::new();
    let mut buf = Vec::with_capacity(4096);
    loop {
        buf.clear();
        let (res, b) = stream.read(buf).await;
        if res? == 0 {
            return Ok(all);
        }
        all.extend_from_slice(&b);
        buf = b;
    }
}

/// A server that reads a request to EOF, then replies and closes.
async fn reply_after_eof(listener: TcpListener) -> io::Result<usize> {
    let (stream, _) = listener.accept().await?;
    let req = read_to_end(&stream).await?;
    let reply = format!(
        "got {} bytes, sha256 {}",
        req.len(),
        hex(&Sha256::digest(&req))
    );
    let (res, _) = stream.write_all(reply.into_bytes()).await;
    res?;
    Ok(req.len())
}

/// The client half-closes; the server reads to EOF, replies and closes; the
/// client reads the reply to EOF.
#[test]
fn half_close() {
    run_bounded(Duration::from_secs(30), async {
        // TcpStream::shutdown(Write).
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("local_addr");
        let server = spawn(reply_after_eof(listener));
        let client = TcpStream::connect(addr).await.expect("connect");
        let request = XorShift::new(3).bytes(300_000);
        let want = format!(
            "got {} bytes, sha256 {}",
            request.len(),
            hex(&Sha256::digest(&request))
        );
        let (res, _) = client.write_all(request).await;
        res.expect("write request");
        client
            .shutdown(Shutdown::Write)
            .await
            .expect("shutdown(Write)");
        // Writing after shutdown(Write) fails (EPIPE), it does not kill us.
        let (res, _) = client.write(b"late".to_vec()).await;
        let e = res.expect_err("write after shutdown(Write) must fail");
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe, "{e}");
        let reply = read_to_end(&client).await.expect("read reply");
        assert_eq!(String::from_utf8(reply).expect("utf-8"), want);
        assert_eq!(server.await.expect("server task").expect("server"), 300_000);

        // Dropping an OwnedWriteHalf sends FIN; the read half still reads.
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("local_addr");
        let server = spawn(reply_after_eof(listener));
        let client = TcpStream::connect(addr).await.expect("connect");
        let (mut rd, mut wr) = client.into_split();
        let (res, _) = wr.write_all(b"half-closed by drop".to_vec()).await;
        res.expect("write");
        drop(wr);
        let mut reply = Vec::new();
        loop {
            let (res, b) = rd.read(Vec::with_capacity(64)).await;
            if res.expect("read reply") == 0 {
                break;
            }
            reply.extend_from_slice(&b);
        }
        let want = format!(
            "got 19 bytes, sha256 {}",
            hex(&Sha256::digest(b"half-closed by drop"))
        );
        assert_eq!(String::from_utf8(reply).expect("utf-8"), want);
        assert_eq!(server.await.expect("server task").expect("server"), 19);
    });
}

/// Makes the socket's close send RST (SO_LINGER on, 0 s).
fn set_linger_zero(stream: &TcpStream) {
    let lg = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `lg` is a valid `linger` for the call's duration and the size
    // passed is its size; the fd is the stream's open socket.
    let r = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&lg as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "SO_LINGER: {}", io::Error::last_os_error());
}

/// Restores the previous SIGPIPE disposition when dropped.
struct SigpipeDefault(libc::sighandler_t);

impl SigpipeDefault {
    /// Rust programs start with SIGPIPE ignored, which would hide a send
    /// without MSG_NOSIGNAL: make SIGPIPE fatal again for the test.
    fn install() -> SigpipeDefault {
        // SAFETY: `signal` with SIG_DFL installs no handler code; the
        // previous disposition is restored on drop.
        let prev = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
        assert_ne!(prev, libc::SIG_ERR, "signal(SIGPIPE)");
        SigpipeDefault(prev)
    }
}

impl Drop for SigpipeDefault {
    fn drop(&mut self) {
        // SAFETY: reinstalls the disposition `signal` returned before.
        unsafe { libc::signal(libc::SIGPIPE, self.0) };
    }
}

/// The client resets the connection while the server writes megabytes: the
/// server's write_all fails (ECONNRESET/EPIPE) without SIGPIPE, and the
/// loop goes on serving new connections.
#[test]
fn peer_reset_during_large_write() {
    let _sigpipe = SigpipeDefault::install();
    run_bounded(Duration::from_secs(60), async {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("local_addr");
        let reset_done = Rc::new(Cell::new(false));
        let done = reset_done.clone();
        let client = spawn(async move {
            let s = TcpStream::connect(addr).await.expect("connect");
            // The server is writing once its first bytes arrive.
            let (res, _) = s.read_exact(Vec::with_capacity(4096)).await;
            res.expect("first bytes from the server");
            // Let it fill the socket buffers and block in send.
            sleep(ms(50)).await;
            set_linger_zero(&s);
            drop(s); // RST
            done.set(true);
        });
        let (srv, _) = listener.accept().await.expect("accept");
        let big = vec![0xa5u8; 64 << 20];
        let t0 = Instant::now();
        let (res, big) = srv.write_all(big).await;
        let e = res.expect_err("write_all of 64 MiB to a reset peer must fail");
        assert!(
            matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
            ),
            "expected ECONNRESET or EPIPE, got {e:?}"
        );
        assert!(reset_done.get(), "write_all failed before the client reset");
        assert_eq!(big.len(), 64 << 20, "the buffer comes back whole");
        assert!(t0.elapsed() < Duration::from_secs(30));
        // Writing again to the dead socket: an error, still no SIGPIPE.
        let (res, _) = srv.write(b"more".to_vec()).await;
        let e = res.expect_err("write to a reset connection");
        assert!(
            matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
            ),
            "{e:?}"
        );
        client.await.expect("client task");
        drop(srv);

        // The same loop and listener serve a new connection.
        let client = spawn(async move {
            let s = TcpStream::connect(addr).await.expect("connect again");
            let (res, _) = s.write_all(b"ping".to_vec()).await;
            res.expect("write ping");
            let (res, b) = s.read_exact(Vec::with_capacity(4)).await;
            res.expect("read pong");
            b
        });
        let (srv, _) = listener.accept().await.expect("accept after the reset");
        let (res, b) = srv.read_exact(Vec::with_capacity(4)).await;
        res.expect("read ping");
        assert_eq!(b, b"ping");
        let (res, _) = srv.write_all(b"pong".to_vec()).await;
        res.expect("write pong");
        assert_eq!(client.await.expect("client task"), b"pong");
    });
}
