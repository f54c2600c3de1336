//! The TCP API's contracts: addresses, TCP_NODELAY, read_exact at EOF,
//! empty writes, bind errors, and sockets created outside a running loop.
//!
//! Some tests count the process's fds, so the tests run one at a time.

mod common;

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr};
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use common::{XorShift, fd_count, fd_list, ms, run_bounded, serial};
use ringloop::net::{ListenOptions, TcpListener, TcpStream};
use ringloop::{EventLoop, spawn, wait_for};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

async fn pair(listener: &TcpListener) -> (TcpStream, TcpStream, SocketAddr) {
    let addr = listener.local_addr().expect("local_addr");
    let client = TcpStream::connect(addr).await.expect("connect");
    let (server, peer) = listener.accept().await.expect("accept");
    (client, server, peer)
}

#[test]
fn local_and_peer_addresses_agree() {
    let _serial = serial();
    run_bounded(Duration::from_secs(30), async {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("listener local_addr");
        assert_eq!(addr.ip(), LOCALHOST);
        assert_ne!(addr.port(), 0, "port 0 resolves to a real port");
        let (client, server, peer) = pair(&listener).await;
        let c_local = client.local_addr().expect("client local_addr");
        assert_eq!(c_local.ip(), LOCALHOST);
        assert_ne!(c_local.port(), 0);
        assert_ne!(c_local.port(), addr.port());
        assert_eq!(client.peer_addr().expect("client peer_addr"), addr);
        assert_eq!(peer, c_local, "accept's peer address is the client's");
        assert_eq!(server.peer_addr().expect("server peer_addr"), c_local);
        assert_eq!(server.local_addr().expect("server local_addr"), addr);
        // The split halves' socket is the same connection.
        let (mut rd, mut wr) = client.into_split();
        let (res, _) = wr.write_all(b"hi".to_vec()).await;
        res.expect("write");
        let (res, b) = server.read_exact(Vec::with_capacity(2)).await;
        res.expect("read");
        assert_eq!(b, b"hi");
        let (res, _) = server.write_all(b"yo".to_vec()).await;
        res.expect("write");
        let (res, b) = rd.read_exact(Vec::with_capacity(2)).await;
        res.expect("read");
        assert_eq!(b, b"yo");
    });
}

#[test]
fn nodelay_round_trips() {
    let _serial = serial();
    run_bounded(Duration::from_secs(30), async {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let (client, server, _) = pair(&listener).await;
        for s in [&client, &server] {
            assert!(!s.nodelay().expect("nodelay"), "Nagle is on by default");
            s.set_nodelay(true).expect("set_nodelay(true)");
            assert!(s.nodelay().expect("nodelay"));
            s.set_nodelay(false).expect("set_nodelay(false)");
            assert!(!s.nodelay().expect("nodelay"));
        }
        client.set_nodelay(true).expect("set_nodelay");
        // Still a working connection.
        let (res, _) = client.write_all(b"ok".to_vec()).await;
        res.expect("write");
        let (res, b) = server.read_exact(Vec::with_capacity(2)).await;
        res.expect("read");
        assert_eq!(b, b"ok");
    });
}

#[test]
fn read_exact_fills_the_buffer_or_keeps_the_partial_bytes_at_eof() {
    let _serial = serial();
    run_bounded(Duration::from_secs(30), async {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let (client, server, _) = pair(&listener).await;

        // A large read_exact spans many segments and partial reads.
        let data = XorShift::new(11).bytes(3 << 20);
        let expect = data.clone();
        let writer = spawn(async move {
            let mut off = 0;
            let mut rng = XorShift::new(12);
            while off < data.len() {
                let n = rng.range_usize(1, 100_000).min(data.len() - off);
                let (res, _) = client.write_all(data[off..off + n].to_vec()).await;
                res.expect("write");
                off += n;
                if rng.range(0, 3) == 0 {
                    ringloop::sleep(ms(1)).await;
                }
            }
            client
        });
        let (res, b) = server.read_exact(Vec::with_capacity(3 << 20)).await;
        res.expect("read_exact of 3 MiB");
        assert!(b == expect, "read_exact's bytes differ from those sent");
        let client = writer.await.expect("writer");

        // A boxed slice is filled whole too.
        let (res, _) = client.write_all(b"0123456789".to_vec()).await;
        res.expect("write");
        let (res, b) = server.read_exact(vec![0u8; 10].into_boxed_slice()).await;
        res.expect("read_exact into Box<[u8]>");
        assert_eq!(&b[..], b"0123456789");

        // Five bytes, then EOF, into a ten-byte read_exact.
        let (res, _) = client.write_all(b"abcde".to_vec()).await;
        res.expect("write");
        client
            .shutdown(Shutdown::Write)
            .await
            .expect("shutdown(Write)");
        let (res, b) = server.read_exact(Vec::with_capacity(10)).await;
        let e = res.expect_err("read_exact past EOF must fail");
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
        assert_eq!(b, b"abcde", "the bytes that did arrive are kept");
        // EOF stays EOF.
        for _ in 0..3 {
            let (res, b) = server.read(Vec::with_capacity(10)).await;
            assert_eq!(res.expect("read at EOF"), 0);
            assert!(b.is_empty());
        }
        let (res, b) = server.read_exact(Vec::with_capacity(4)).await;
        assert_eq!(
            res.expect_err("read_exact at EOF").kind(),
            io::ErrorKind::UnexpectedEof
        );
        assert!(b.is_empty());
    });
}

#[test]
fn writing_an_empty_buffer_sends_nothing() {
    let _serial = serial();
    run_bounded(Duration::from_secs(30), async {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let (client, server, _) = pair(&listener).await;
        let (res, b) = client.write(Vec::new()).await;
        assert_eq!(res.expect("write of an empty Vec"), 0);
        assert!(b.is_empty());
        let (res, _) = client.write_all(Vec::with_capacity(100)).await;
        res.expect("write_all of an empty Vec");
        let (res, _) = client.write(&b""[..]).await;
        assert_eq!(res.expect("write of an empty static slice"), 0);
        let (res, _) = client.write_all(String::new()).await;
        res.expect("write_all of an empty String");
        // The peer sees no data and no EOF...
        let r = wait_for(server.read(Vec::with_capacity(16)), Some(ms(30))).await;
        assert!(
            r.is_err(),
            "an empty write made the peer's read return: {:?}",
            r.map(|(res, b)| (res.ok(), b))
        );
        // ...and the connection still carries data.
        let (res, _) = client.write_all(b"after".to_vec()).await;
        res.expect("write");
        let (res, b) = server.read_exact(Vec::with_capacity(5)).await;
        res.expect("read");
        assert_eq!(b, b"after");
    });
}

#[test]
fn bind_errors_are_clear() {
    let _serial = serial();
    run_bounded(Duration::from_secs(30), async {
        let first = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = first.local_addr().expect("local_addr");
        let before = fd_count();
        for r in [
            TcpListener::bind(addr),
            TcpListener::bind(addr.to_string()),
            TcpListener::bind_with(addr, ListenOptions::default()),
        ] {
            let e = r.expect_err("a second listener on the same address");
            assert_eq!(e.kind(), io::ErrorKind::AddrInUse, "{e}");
            assert!(
                e.to_string().contains(&addr.to_string()),
                "the error names the address {addr}: {e}"
            );
        }
        let e = TcpListener::bind("not an address").expect_err("a bad address");
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
        // Failed binds leave no socket behind.
        assert_eq!(fd_count(), before, "fds: {:?}", fd_list());
        // The first listener is unharmed.
        let (client, server, _) = pair(&first).await;
        let (res, _) = client.write_all(b"x".to_vec()).await;
        res.expect("write");
        let (res, b) = server.read_exact(Vec::with_capacity(1)).await;
        res.expect("read");
        assert_eq!(b, b"x");
    });
}

/// Polls `fut` once outside any loop.
fn poll_once<F: Future>(fut: F) -> Poll<F::Output> {
    let mut fut = pin!(fut);
    fut.as_mut().poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn sockets_outside_a_running_loop_are_an_error_not_a_panic() {
    let _serial = serial();
    // A listening address to connect to, made with std.
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("std bind");
    let addr = std_listener.local_addr().expect("local_addr");
    let before = fd_count();

    let check = |what: &str, e: io::Error| {
        assert!(
            e.to_string().contains("loop"),
            "{what}: the error should say a running loop is needed: {e}"
        );
    };
    // No loop at all on this thread.
    check(
        "bind, no loop",
        TcpListener::bind("127.0.0.1:0").expect_err("bind outside a loop"),
    );
    match poll_once(TcpStream::connect(addr)) {
        Poll::Ready(r) => check("connect, no loop", r.expect_err("connect outside a loop")),
        Poll::Pending => panic!("connect outside a loop is pending, not an error"),
    }
    match poll_once(TcpStream::connect_timeout(addr, ms(100))) {
        Poll::Ready(r) => check(
            "connect_timeout, no loop",
            r.expect_err("connect_timeout outside a loop"),
        ),
        Poll::Pending => panic!("connect_timeout outside a loop is pending, not an error"),
    }
    // A loop that exists but is not running.
    let lp = EventLoop::new().expect("event loop");
    let with_loop = fd_count();
    check(
        "bind, loop not running",
        TcpListener::bind("127.0.0.1:0").expect_err("bind with the loop not running"),
    );
    assert_eq!(fd_count(), with_loop, "a failed bind leaked its socket");
    drop(lp);
    assert_eq!(fd_count(), before, "fds: {:?}", fd_list());
    // The same calls inside a running loop work.
    run_bounded(Duration::from_secs(30), async move {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind inside the loop");
        assert_ne!(l.local_addr().expect("local_addr").port(), 0);
        let s = TcpStream::connect(addr)
            .await
            .expect("connect inside the loop");
        assert_eq!(s.peer_addr().expect("peer_addr"), addr);
    });
    drop(std_listener);
}

/// Several tasks accepting on one listener (one multishot accept feeds
/// them): every connection is accepted exactly once, including after one
/// acceptor gives up mid-way (its dropped accept hands the wake-up on).
#[test]
fn concurrent_acceptors_share_one_listener() {
    let _serial = serial();
    ringloop::run(async {
        let listener = std::rc::Rc::new(ringloop::net::TcpListener::bind("127.0.0.1:0").unwrap());
        let addr = listener.local_addr().unwrap();
        let accepted = std::rc::Rc::new(std::cell::Cell::new(0usize));
        let mut acceptors = Vec::new();
        for _ in 0..3 {
            let (l, n) = (listener.clone(), accepted.clone());
            acceptors.push(ringloop::spawn(async move {
                loop {
                    let (s, _) = l.accept().await.unwrap();
                    n.set(n.get() + 1);
                    drop(s);
                }
            }));
        }
        // One acceptor quits while the others keep going.
        ringloop::yield_now().await;
        drop(acceptors.pop());
        let mut clients = Vec::new();
        for _ in 0..40 {
            clients.push(ringloop::net::TcpStream::connect(addr).await.unwrap());
        }
        let t0 = std::time::Instant::now();
        while accepted.get() < 40 {
            assert!(
                t0.elapsed() < std::time::Duration::from_secs(5),
                "accepted {}",
                accepted.get()
            );
            ringloop::sleep(std::time::Duration::from_millis(1)).await;
        }
        assert_eq!(accepted.get(), 40);
        drop(acceptors);
    })
    .unwrap();
}
