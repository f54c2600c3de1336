//! Socket hand-off: sockets handed in from std (`from_std`, `FromRawFd`),
//! as systemd socket activation, a `socket2` builder or a parent process
//! would, and handed out (`into_std`, `IntoRawFd`) with nothing lost: no
//! byte, datagram or connection ringloop received, no fd, and no epoll
//! registration left behind for the next fd with the same number.
//!
//! Every test runs on both backends (`RINGLOOP_BACKEND=epoll`); all share
//! one lock, as they count the process's fds and one needs the lowest
//! free fd number to be reused.

mod common;

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::linux::net::SocketAddrExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use common::{XorShift, fd_count, fd_list, ms, run_bounded, serial};
use ringloop::net::{
    IntoStdError, TcpListener, TcpStream, UdpSocket, UnixDatagram, UnixListener, UnixStream,
};
use ringloop::{spawn, wait_for, yield_now};

const LIMIT: Duration = Duration::from_secs(30);

/// Waits (up to 5 s) until the process has `baseline` fds again: sockets
/// ringloop closes are closed through the loop, a turn or two later.
async fn settle_fds(baseline: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while fd_count() != baseline && Instant::now() < deadline {
        ringloop::sleep(ms(2)).await;
    }
    assert_eq!(fd_count(), baseline, "fds: {:?}", fd_list());
}

fn nonblocking(fd: &impl AsRawFd) -> bool {
    // SAFETY: F_GETFL takes no pointer; the fd is open (borrowed).
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    assert!(flags >= 0, "F_GETFL: {}", io::Error::last_os_error());
    flags & libc::O_NONBLOCK != 0
}

fn unique_name(tag: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "ringloop-handoff-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Lets the loop run (a waiting turn) before a hand-off is retried;
/// fails the test if the hand-off is still refused after 5 s.
async fn retrylater(since: Instant, e: &dyn std::fmt::Display) {
    assert!(
        since.elapsed() < Duration::from_secs(5),
        "still refused after 5 s: {e}"
    );
    ringloop::sleep(ms(1)).await;
}

/// `into_std`, retried while it says `WouldBlock` (an op still in the
/// kernel until its cancellation lands).
macro_rules! into_std_retrying {
    ($sock:expr) => {{
        let mut sock = $sock;
        let since = Instant::now();
        loop {
            match sock.into_std() {
                Err(e) if e.error().kind() == io::ErrorKind::WouldBlock => {
                    retrylater(since, &e).await;
                    sock = e.into_inner();
                }
                other => break other,
            }
        }
    }};
}

/// Echoes whatever arrives on `s` until end of stream.
async fn echo(s: TcpStream) -> io::Result<()> {
    let mut buf = Vec::with_capacity(64 * 1024);
    loop {
        let (res, b) = s.read(buf).await;
        let n = res?;
        if n == 0 {
            return s.shutdown(std::net::Shutdown::Write).await;
        }
        let (res, mut b) = s.write_all(b).await;
        res?;
        b.clear();
        buf = b;
    }
}

/// Sends `data` through `client` to an echo server and checks every byte
/// comes back in order.
async fn echo_round_trip(client: TcpStream, data: Vec<u8>) {
    let (mut rd, mut wr) = client.into_split();
    let expected = data.clone();
    let writer = spawn(async move {
        let (res, _) = wr.write_all(data).await;
        res.expect("write");
        wr.shutdown().await.expect("shutdown");
    });
    let mut back = Vec::with_capacity(expected.len());
    loop {
        let (res, buf) = rd.read(Vec::with_capacity(64 * 1024)).await;
        let n = res.expect("read");
        if n == 0 {
            break;
        }
        back.extend_from_slice(&buf[..n]);
    }
    writer.await.expect("writer");
    assert_eq!(back.len(), expected.len(), "echoed length");
    assert!(back == expected, "the echo differs from what was sent");
}

#[test]
fn a_std_listener_handed_in_accepts_and_echoes_byte_exact() {
    let _g = serial();
    run_bounded(LIMIT, async {
        let baseline = fd_count();
        let mut rng = XorShift::new(15);
        for nonblocking_std in [false, true] {
            // Made outside ringloop, as a socket2 builder or systemd would.
            let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            std_listener.set_nonblocking(nonblocking_std).unwrap();
            let addr = std_listener.local_addr().unwrap();
            let listener = TcpListener::from_std(std_listener).expect("from_std");
            assert_eq!(listener.local_addr().unwrap(), addr);
            assert_eq!(listener.as_fd().as_raw_fd(), listener.as_raw_fd());
            let server = spawn(async move {
                for _ in 0..2 {
                    let (s, _) = listener.accept().await?;
                    echo(s).await?;
                }
                io::Result::Ok(())
            });
            // A client made by ringloop...
            let client = TcpStream::connect(addr).await.expect("connect");
            echo_round_trip(client, rng.bytes(1 << 20)).await;
            // ...and one connected by std, handed in (blocking or not).
            let std_client = std::net::TcpStream::connect(addr).expect("std connect");
            std_client.set_nonblocking(nonblocking_std).unwrap();
            let client = TcpStream::from_std(std_client).expect("from_std stream");
            echo_round_trip(client, rng.bytes(300_000)).await;
            server.await.expect("server task").expect("server");
        }
        settle_fds(baseline).await;
    });
}

#[test]
fn from_std_outside_a_loop_is_an_error_and_from_raw_fd_a_panic() {
    let _g = serial();
    let baseline = fd_count();
    let says_loop = |e: io::Error| {
        assert!(e.to_string().contains("loop"), "should name the loop: {e}");
    };
    says_loop(
        TcpListener::from_std(std::net::TcpListener::bind("127.0.0.1:0").unwrap()).unwrap_err(),
    );
    says_loop(UdpSocket::from_std(std::net::UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap_err());
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    says_loop(UnixStream::from_std(a).unwrap_err());
    drop(b);
    let (a, b) = std::os::unix::net::UnixDatagram::pair().unwrap();
    says_loop(UnixDatagram::from_std(a).unwrap_err());
    drop(b);
    // FromRawFd cannot return the error: it panics, and closes the fd.
    let fd = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .into_raw_fd();
    // SAFETY: `fd` is an open listener we own and give up here.
    let panic = catch_unwind(|| unsafe { TcpListener::from_raw_fd(fd) })
        .expect_err("from_raw_fd outside a loop panics");
    let msg = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("from_raw_fd") && msg.contains("loop"), "{msg}");
    assert_eq!(fd_count(), baseline, "fds: {:?}", fd_list());
}

#[test]
fn from_std_rejects_the_wrong_kind_of_socket_clearly() {
    let _g = serial();
    run_bounded(LIMIT, async {
        let baseline = fd_count();
        let expect_invalid = |what: &str, r: io::Result<()>, says: &str| {
            let e = r.expect_err(what);
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{what}: {e}");
            assert!(e.to_string().contains(says), "{what}: {e} (want {says:?})");
        };
        let fd = |s: OwnedFd| s;
        let udp = || fd(std::net::UdpSocket::bind("127.0.0.1:0").unwrap().into());
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = std_listener.local_addr().unwrap();
        let tcp_stream = || fd(std::net::TcpStream::connect(addr).unwrap().into());
        let tcp_listener = || fd(std::net::TcpListener::bind("127.0.0.1:0").unwrap().into());
        let unix_stream = || fd(std::os::unix::net::UnixStream::pair().unwrap().0.into());
        let unix_dgram = || fd(std::os::unix::net::UnixDatagram::pair().unwrap().0.into());
        let not_a_socket = || fd(std::fs::File::open("/dev/null").unwrap().into());

        expect_invalid(
            "a UDP socket as a TcpListener",
            TcpListener::from_std(udp().into()).map(drop),
            "SOCK_DGRAM",
        );
        expect_invalid(
            "a connected stream as a TcpListener",
            TcpListener::from_std(tcp_stream().into()).map(drop),
            "not listening",
        );
        expect_invalid(
            "a listener as a TcpStream",
            TcpStream::from_std(tcp_listener().into()).map(drop),
            "TcpListener",
        );
        expect_invalid(
            "a Unix stream as a TcpStream",
            TcpStream::from_std(unix_stream().into()).map(drop),
            "AF_UNIX",
        );
        expect_invalid(
            "a TCP stream as a UdpSocket",
            UdpSocket::from_std(tcp_stream().into()).map(drop),
            "SOCK_STREAM",
        );
        expect_invalid(
            "a TCP listener as a UnixListener",
            UnixListener::from_std(tcp_listener().into()).map(drop),
            "AF_INET",
        );
        expect_invalid(
            "a Unix datagram socket as a UnixStream",
            UnixStream::from_std(unix_dgram().into()).map(drop),
            "SOCK_DGRAM",
        );
        expect_invalid(
            "a Unix stream as a UnixDatagram",
            UnixDatagram::from_std(unix_stream().into()).map(drop),
            "SOCK_STREAM",
        );
        expect_invalid(
            "/dev/null as a UnixDatagram",
            UnixDatagram::from_std(not_a_socket().into()).map(drop),
            "not a socket",
        );
        // The backlog's connections, accepted and dropped by std.
        std_listener.set_nonblocking(true).unwrap();
        while std_listener.accept().is_ok() {}
        drop(std_listener);
        // Every rejected socket was closed.
        settle_fds(baseline).await;
    });
}

#[test]
fn tcp_stream_into_std_waits_for_ops_in_flight_and_kept_bytes_then_std_reads_what_follows() {
    let _g = serial();
    run_bounded(LIMIT, async {
        let baseline = fd_count();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        drop(listener);

        let (res, _) = client.write_all(b"abc".to_vec()).await;
        res.unwrap();
        // A read of 10 bytes takes "abc", waits for more, and times out:
        // its read op is dropped while in the kernel.
        let timed_out = wait_for(server.read_exact(Vec::with_capacity(10)), Some(ms(50))).await;
        assert!(timed_out.is_err(), "the read should have timed out");

        let e = server.into_std().expect_err("a read is still in flight");
        assert_eq!(e.error().kind(), io::ErrorKind::WouldBlock, "{e}");
        assert!(e.to_string().contains("still in the kernel"), "{e}");
        // Once it landed: the 3 bytes it had are kept, and must not be lost.
        let e = into_std_retrying!(e.into_inner()).expect_err("3 bytes are kept");
        assert_eq!(e.error().kind(), io::ErrorKind::ResourceBusy, "{e}");
        assert!(e.to_string().contains("3 bytes"), "{e}");
        let server = e.into_inner();
        let (res, kept) = server.read(Vec::with_capacity(3)).await;
        assert_eq!(res.unwrap(), 3);
        assert_eq!(kept, b"abc");

        let mut std_server = server.into_std().expect("nothing in flight or kept");
        assert!(
            !nonblocking(&std_server),
            "a ringloop stream goes out blocking"
        );
        std_server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        // What the peer sends after the hand-off is read by std.
        let (res, _) = client.write_all(b"defgh".to_vec()).await;
        res.unwrap();
        let mut after = [0; 5];
        std_server.read_exact(&mut after).unwrap();
        assert_eq!(&after, b"defgh");
        std_server.write_all(b"from std").unwrap();
        let (res, back) = client.read_exact(Vec::with_capacity(8)).await;
        res.unwrap();
        assert_eq!(back, b"from std");
        drop(std_server);
        let (res, _) = client.read(Vec::with_capacity(1)).await;
        assert_eq!(res.unwrap(), 0, "std's close reaches the ringloop peer");
        drop(client);
        settle_fds(baseline).await;
    });
}

#[test]
fn unix_stream_into_std_waits_for_kept_bytes_and_into_raw_fd_panics_while_in_flight() {
    let _g = serial();
    run_bounded(LIMIT, async {
        let baseline = fd_count();
        let (a, b) = UnixStream::pair().unwrap();
        let (res, _) = a.write_all(b"xy".to_vec()).await;
        res.unwrap();
        let timed_out = wait_for(b.read_exact(Vec::with_capacity(4)), Some(ms(30))).await;
        assert!(timed_out.is_err());
        let e = into_std_retrying!(b).expect_err("2 bytes are kept");
        assert_eq!(e.error().kind(), io::ErrorKind::ResourceBusy, "{e}");
        let b = e.into_inner();
        let (res, kept) = b.read_exact(Vec::with_capacity(2)).await;
        res.unwrap();
        assert_eq!(kept, b"xy");
        let (res, _) = a.write_all(b"tail".to_vec()).await;
        res.unwrap();
        let mut b = b.into_std().expect("handed off");
        assert!(!nonblocking(&b));
        b.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut tail = [0; 4];
        b.read_exact(&mut tail).unwrap();
        assert_eq!(&tail, b"tail");
        drop(b);

        // IntoRawFd cannot refuse: it panics, and the stream is closed.
        let (c, d) = UnixStream::pair().unwrap();
        let timed_out = wait_for(c.read(Vec::with_capacity(4)), Some(ms(10))).await;
        assert!(timed_out.is_err());
        let panic = catch_unwind(AssertUnwindSafe(|| c.into_raw_fd()))
            .expect_err("into_raw_fd with a read in flight panics");
        let msg = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(
            msg.contains("into_raw_fd") && msg.contains("still in the kernel"),
            "{msg}"
        );
        drop((a, d));
        settle_fds(baseline).await;
    });
}

/// Hands `$listener` off, accepting (and recording the byte each client
/// sent) the connections ringloop had accepted before.
macro_rules! hand_off_listener {
    ($listener:expr, $got:expr) => {{
        let mut listener = $listener;
        let since = Instant::now();
        loop {
            match listener.into_std() {
                Ok(l) => break l,
                Err(e) if e.error().kind() == io::ErrorKind::WouldBlock => {
                    retrylater(since, &e).await;
                    listener = e.into_inner();
                }
                Err(e) if e.error().kind() == io::ErrorKind::ResourceBusy => {
                    assert!(e.to_string().contains("accept()"), "{e}");
                    listener = e.into_inner();
                    let (s, _) = listener.accept().await.expect("a kept connection");
                    let (res, b) = s.read_exact(Vec::with_capacity(1)).await;
                    res.expect("its byte");
                    $got.push(b[0]);
                }
                Err(e) => panic!("unexpected refusal: {e}"),
            }
        }
    }};
}

/// Accepts on a std listener (made non-blocking here) until `want` bytes
/// were collected in all, each from one client; bounded.
fn accept_rest<S: Read>(mut accept: impl FnMut() -> io::Result<S>, got: &mut Vec<u8>, want: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while got.len() < want {
        match accept() {
            Ok(mut s) => {
                let mut b = [0];
                s.read_exact(&mut b).expect("the client's byte");
                got.push(b[0]);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                assert!(
                    Instant::now() < deadline,
                    "lost connections: got {got:?} of {want}"
                );
                std::thread::sleep(ms(1));
            }
            Err(e) => panic!("std accept: {e}"),
        }
    }
}

#[test]
fn a_tcp_listener_handed_off_after_accepting_loses_no_connection() {
    let _g = serial();
    run_bounded(LIMIT, async {
        let baseline = fd_count();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // One accept leaves the multishot accept armed.
        let first = std::net::TcpStream::connect(addr).unwrap();
        let (served, _) = listener.accept().await.unwrap();
        // Three more clients, each sending its number, all taken by the
        // armed accept before the hand-off.
        let before = fd_count();
        let mut clients = Vec::new();
        for i in 1..=3u8 {
            let mut c = std::net::TcpStream::connect(addr).unwrap();
            c.write_all(&[i]).unwrap();
            clients.push(c);
        }
        // Until the armed accept has taken all three (an fd each).
        let deadline = Instant::now() + Duration::from_secs(5);
        while fd_count() < before + 6 {
            assert!(Instant::now() < deadline, "not accepted: {:?}", fd_list());
            ringloop::sleep(ms(1)).await;
        }
        let mut got = Vec::new();
        let std_listener = hand_off_listener!(listener, got);
        assert_eq!(got.len(), 3, "ringloop had accepted all three: {got:?}");
        assert!(!nonblocking(&std_listener), "goes out blocking, as bound");
        assert_eq!(std_listener.local_addr().unwrap(), addr);
        std_listener.set_nonblocking(true).unwrap();
        accept_rest(|| std_listener.accept().map(|(s, _)| s), &mut got, 3);
        got.sort_unstable();
        assert_eq!(got, [1, 2, 3], "each connection exactly once");
        // And std keeps accepting.
        let late = std::net::TcpStream::connect(addr).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match std_listener.accept() {
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(ms(1));
                }
                Err(e) => panic!("std accept: {e}"),
            }
        }
        drop((first, served, clients, std_listener, late));
        settle_fds(baseline).await;
    });
}

#[test]
fn a_unix_listener_handed_off_after_accepting_loses_no_connection() {
    let _g = serial();
    run_bounded(LIMIT, async {
        let baseline = fd_count();
        let name = unique_name("listener");
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(&name).unwrap();
        // From std, non-blocking, as a systemd-activated socket may be.
        let std_listener = std::os::unix::net::UnixListener::bind_addr(&addr).unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let listener = UnixListener::from_std(std_listener).unwrap();
        assert!(listener.local_addr().unwrap().as_abstract_name().is_some());
        let connect = || {
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(&name).unwrap();
            std::os::unix::net::UnixStream::connect_addr(&addr).unwrap()
        };
        let first = connect();
        let (served, _) = listener.accept().await.unwrap();
        let mut clients = Vec::new();
        for i in 1..=3u8 {
            let mut c = connect();
            c.write_all(&[i]).unwrap();
            clients.push(c);
        }
        for _ in 0..5 {
            yield_now().await;
        }
        let mut got = Vec::new();
        let std_listener = hand_off_listener!(listener, got);
        assert!(
            nonblocking(&std_listener),
            "goes out non-blocking, as it came"
        );
        accept_rest(|| std_listener.accept().map(|(s, _)| s), &mut got, 3);
        got.sort_unstable();
        assert_eq!(got, [1, 2, 3], "each connection exactly once");
        drop((first, served, clients, std_listener));
        settle_fds(baseline).await;
    });
}

#[test]
fn raw_fds_round_trip_as_in_socket_activation() {
    let _g = serial();
    run_bounded(LIMIT, async {
        let baseline = fd_count();
        // A parent (or systemd) passes a listening fd by number.
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = std_listener.local_addr().unwrap();
        let raw: RawFd = std_listener.into_raw_fd();
        // SAFETY: `raw` is an open listener we own, given up here.
        let listener = unsafe { TcpListener::from_raw_fd(raw) };
        assert_eq!(listener.as_raw_fd(), raw);
        let client = spawn(async move {
            let c = TcpStream::connect(addr).await?;
            let (res, _) = c.write_all(b"hello".to_vec()).await;
            res?;
            io::Result::Ok(c)
        });
        let (s, _) = listener.accept().await.unwrap();
        let (res, buf) = s.read_exact(Vec::with_capacity(5)).await;
        res.unwrap();
        assert_eq!(buf, b"hello");
        let c = client.await.unwrap().unwrap();
        // ...and ringloop gives streams and the listener back by number.
        let raw = s.into_raw_fd();
        // SAFETY: `raw` was just given up by ringloop; we own it.
        let mut std_s = unsafe { std::net::TcpStream::from_raw_fd(raw) };
        std_s.write_all(b"bye").unwrap();
        let (res, buf) = c.read_exact(Vec::with_capacity(3)).await;
        res.unwrap();
        assert_eq!(buf, b"bye");
        let raw = into_std_retrying!(listener)
            .map(IntoRawFd::into_raw_fd)
            .unwrap();
        // SAFETY: as above.
        let std_listener = unsafe { std::net::TcpListener::from_raw_fd(raw) };
        assert_eq!(std_listener.local_addr().unwrap(), addr);
        drop((std_s, c, std_listener));
        settle_fds(baseline).await;
    });
}

/// The stale-registration hazard: an fd handed out by `into_raw_fd` and
/// closed by the user; a new ringloop socket gets the same number and must
/// still be woken by readiness. On the epoll backend this fails (the read
/// never completes) if the hand-off leaves the old fd's registration in
/// the driver.
#[test]
fn an_fd_handed_out_and_closed_leaves_no_stale_readiness_state() {
    let _g = serial();
    run_bounded(LIMIT, async {
        let baseline = fd_count();
        // Streams: an fd that waited for readiness, so epoll registered it.
        for round in 0..3 {
            let (a, b) = UnixStream::pair().unwrap();
            let reader = spawn(async move {
                let (res, _) = a.read(Vec::with_capacity(8)).await;
                (a, res)
            });
            for _ in 0..3 {
                yield_now().await; // the read waits for readiness
            }
            let (res, _) = b.write_all(b"x".to_vec()).await;
            res.unwrap();
            let (a, res) = reader.await.unwrap();
            assert_eq!(res.unwrap(), 1);
            let n = a.into_raw_fd();
            // SAFETY: `n` is ours since into_raw_fd; closed once, here.
            assert_eq!(unsafe { libc::close(n) }, 0);
            // The lowest free number is `n`: the next socket gets it.
            let (c, d) = UnixStream::pair().unwrap();
            let (waiter, sender) = if c.as_raw_fd() == n {
                (c, d)
            } else {
                assert_eq!(d.as_raw_fd(), n, "round {round}: fd {n} was not reused");
                (d, c)
            };
            let t = spawn(async move { waiter.read(Vec::with_capacity(8)).await.0 });
            for _ in 0..3 {
                yield_now().await; // no data yet: the read waits
            }
            let (res, _) = sender.write_all(b"y".to_vec()).await;
            res.unwrap();
            let got = wait_for(t, Some(Duration::from_secs(3)))
                .await
                .expect("a read on the reused fd number got no readiness (stale registration)")
                .unwrap();
            assert_eq!(got.unwrap(), 1);
            drop((b, sender));
            // Closed (through the loop) before the next round's numbers.
            settle_fds(baseline).await;
        }
        // Datagrams: the same with UDP sockets.
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = a.local_addr().unwrap();
        let reader = spawn(async move {
            let (res, _) = a.recv_from(Vec::with_capacity(8)).await;
            (a, res)
        });
        for _ in 0..3 {
            yield_now().await;
        }
        peer.send_to(b"1", to).unwrap();
        let (a, res) = reader.await.unwrap();
        assert_eq!(res.unwrap().0, 1);
        let n = a.into_raw_fd();
        // SAFETY: as above.
        assert_eq!(unsafe { libc::close(n) }, 0);
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        assert_eq!(b.as_raw_fd(), n, "fd {n} was not reused");
        let to = b.local_addr().unwrap();
        let t = spawn(async move { b.recv_from(Vec::with_capacity(8)).await.0 });
        for _ in 0..3 {
            yield_now().await;
        }
        peer.send_to(b"2", to).unwrap();
        let got = wait_for(t, Some(Duration::from_secs(3)))
            .await
            .expect("a receive on the reused fd number got no readiness (stale registration)")
            .unwrap();
        assert_eq!(got.unwrap().0, 1);
        drop(peer);
        settle_fds(baseline).await;
    });
}

/// A receive dropped while waiting, then a datagram: whichever side ends
/// up with it (ringloop's kept datagram, or the kernel's queue for std),
/// it is received exactly once.
#[test]
fn udp_and_unix_datagram_hand_offs_lose_no_datagram() {
    let _g = serial();
    run_bounded(LIMIT, async {
        let baseline = fd_count();
        // UDP, handed in from std non-blocking.
        let std_socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        std_socket.set_nonblocking(true).unwrap();
        let socket = UdpSocket::from_std(std_socket).unwrap();
        let to = socket.local_addr().unwrap();
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.send_to(b"one", to).unwrap();
        let (res, buf) = socket.recv_from(Vec::with_capacity(16)).await;
        let (n, from) = res.unwrap();
        assert_eq!((&buf[..n], from), (&b"one"[..], peer.local_addr().unwrap()));
        let timed_out = wait_for(socket.recv_from(Vec::with_capacity(16)), Some(ms(20))).await;
        assert!(timed_out.is_err());
        peer.send_to(b"two", to).unwrap();
        let mut got = Vec::new();
        let std_socket = match into_std_retrying!(socket) {
            Ok(s) => s,
            Err(e) => {
                // The dropped receive got it: ringloop keeps it, whole.
                assert_eq!(e.error().kind(), io::ErrorKind::ResourceBusy, "{e}");
                let s = e.into_inner();
                let (res, buf) = s.recv_from(Vec::with_capacity(16)).await;
                got.push(buf[..res.unwrap().0].to_vec());
                s.into_std().expect("nothing kept any more")
            }
        };
        assert!(
            nonblocking(&std_socket),
            "goes out non-blocking, as it came"
        );
        std_socket.set_nonblocking(false).unwrap();
        std_socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0; 16];
        if got.is_empty() {
            let n = std_socket.recv(&mut buf).unwrap();
            got.push(buf[..n].to_vec());
        }
        assert_eq!(got, [b"two".to_vec()], "received exactly once");
        peer.send_to(b"three", to).unwrap();
        let n = std_socket.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"three");
        drop((std_socket, peer));

        // Unix datagrams, made by ringloop.
        let (a, b) = UnixDatagram::pair().unwrap();
        let (res, _) = a.send(b"first".to_vec()).await;
        res.unwrap();
        let timed_out = wait_for(
            async {
                let (res, _) = b.recv(Vec::with_capacity(16)).await;
                res.unwrap();
                b.recv(Vec::with_capacity(16)).await
            },
            Some(ms(20)),
        )
        .await;
        assert!(timed_out.is_err());
        let (res, _) = a.send(b"second".to_vec()).await;
        res.unwrap();
        let b = into_std_retrying!(b);
        let mut got = Vec::new();
        let b = match b {
            Ok(b) => b,
            Err(e) => {
                assert_eq!(e.error().kind(), io::ErrorKind::ResourceBusy, "{e}");
                let b = e.into_inner();
                let (res, buf) = b.recv(Vec::with_capacity(16)).await;
                got.push(buf[..res.unwrap()].to_vec());
                b.into_std().expect("nothing kept any more")
            }
        };
        assert!(!nonblocking(&b));
        b.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        if got.is_empty() {
            let n = b.recv(&mut buf).unwrap();
            got.push(buf[..n].to_vec());
        }
        assert_eq!(got, [b"second".to_vec()], "received exactly once");
        drop((a, b));
        settle_fds(baseline).await;
    });
}

/// `IntoStdError` gives the socket back and converts into its reason.
#[test]
fn a_refused_hand_off_gives_the_socket_back_working() {
    let _g = serial();
    run_bounded(LIMIT, async {
        let baseline = fd_count();
        let (a, b) = UnixStream::pair().unwrap();
        let timed_out = wait_for(b.read(Vec::with_capacity(4)), Some(ms(10))).await;
        assert!(timed_out.is_err());
        let e: IntoStdError<UnixStream> = b.into_std().expect_err("a read in flight");
        assert!(format!("{e:?}").contains("IntoStdError"));
        let (reason, b) = e.into_parts();
        assert_eq!(reason.kind(), io::ErrorKind::WouldBlock);
        // The stream still works through ringloop.
        let (res, _) = a.write_all(b"ok".to_vec()).await;
        res.unwrap();
        let (res, buf) = b.read_exact(Vec::with_capacity(2)).await;
        res.unwrap();
        assert_eq!(buf, b"ok");
        // `?` turns the refusal into its io::Error.
        let timed_out = wait_for(b.read(Vec::with_capacity(4)), Some(ms(10))).await;
        assert!(timed_out.is_err());
        let as_io = || -> io::Result<std::os::unix::net::UnixStream> { Ok(b.into_std()?) };
        assert_eq!(as_io().unwrap_err().kind(), io::ErrorKind::WouldBlock);
        drop(a);
        settle_fds(baseline).await;
    });
}
