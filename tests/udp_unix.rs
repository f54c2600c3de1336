//! UDP and Unix socket round trips, and the cancellation guarantee for
//! datagrams: one received after its receive's future was dropped is kept,
//! whole, for the next receive.

use std::time::Duration;

use ringloop::net::{UdpSocket, UnixAddr, UnixDatagram, UnixListener, UnixStream};
use ringloop::wait_for;

fn unique(tag: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "ringloop-test-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

#[test]
fn udp_send_to_recv_from_round_trip() {
    ringloop::run(async {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        for i in 0..50u8 {
            let msg = vec![i; usize::from(i) + 1];
            let (r, _) = a.send_to(msg.clone(), b.local_addr().unwrap()).await;
            assert_eq!(r.unwrap(), msg.len());
            let (r, buf) = b.recv_from(Vec::with_capacity(512)).await;
            let (n, from) = r.unwrap();
            assert_eq!(from, a.local_addr().unwrap());
            assert_eq!(&buf[..n], &msg[..]);
        }
    })
    .unwrap();
}

#[test]
fn udp_connected_send_recv_and_peer_addr() {
    ringloop::run(async {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(a.peer_addr().is_err(), "unconnected socket has no peer");
        a.connect(b.local_addr().unwrap()).await.unwrap();
        b.connect(a.local_addr().unwrap()).await.unwrap();
        assert_eq!(a.peer_addr().unwrap(), b.local_addr().unwrap());
        let (r, _) = a.send(b"hello".to_vec()).await;
        r.unwrap();
        let (r, buf) = b.recv(Vec::with_capacity(16)).await;
        assert_eq!(&buf[..r.unwrap()], b"hello");
    })
    .unwrap();
}

#[test]
fn udp_datagram_arriving_after_a_dropped_recv_is_kept_whole() {
    ringloop::run(async {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = b.local_addr().unwrap();
        for round in 0..20u8 {
            // A receive that times out (its op is cancelled in the kernel).
            let r = wait_for(
                b.recv_from(Vec::with_capacity(64)),
                Some(Duration::from_millis(1)),
            )
            .await;
            assert!(r.is_err(), "nothing was sent yet");
            let msgs = [vec![round; 3], vec![round + 100; 5]];
            for m in &msgs {
                let (r, _) = a.send_to(m.clone(), to).await;
                r.unwrap();
            }
            // Both datagrams come back, whole and in order, whether the
            // cancelled receive caught the first one or not.
            for m in &msgs {
                let (r, buf) = b.recv_from(Vec::with_capacity(64)).await;
                let (n, _) = r.unwrap();
                assert_eq!(&buf[..n], &m[..], "round {round}");
            }
        }
    })
    .unwrap();
}

#[test]
fn unix_stream_path_and_abstract_round_trips() {
    ringloop::run(async {
        let dir = std::env::temp_dir().join(unique("dir"));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sock");
        for addr in [
            UnixAddr::from_pathname(&path),
            UnixAddr::from_abstract_name(unique("abs")),
        ] {
            let listener = UnixListener::bind(&addr).unwrap();
            assert_eq!(listener.local_addr().unwrap(), addr);
            let client = ringloop::spawn({
                let addr = addr.clone();
                async move { UnixStream::connect(&addr).await }
            });
            let (server, _peer) = listener.accept().await.unwrap();
            let client = client.await.unwrap().unwrap();
            assert_eq!(client.peer_addr().unwrap(), addr);
            let payload: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
            let writer = ringloop::spawn(async move {
                let (r, _) = client.write_all(payload).await;
                r.unwrap();
                client
            });
            let (r, buf) = server.read_exact(Vec::with_capacity(100_000)).await;
            r.unwrap();
            assert!(buf.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
            drop(writer.await.unwrap());
            let (r, _) = server.read(Vec::with_capacity(8)).await;
            assert_eq!(r.unwrap(), 0, "EOF after the client closed");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    })
    .unwrap();
}

#[test]
fn unix_stream_connect_to_missing_path_names_it() {
    ringloop::run(async {
        let missing = std::env::temp_dir().join(unique("missing"));
        let e = UnixStream::connect(missing.as_path()).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
        assert!(e.to_string().contains("missing"), "{e}");
    })
    .unwrap();
}

#[test]
fn unix_datagram_pair_bound_and_unbound() {
    ringloop::run(async {
        let (a, b) = UnixDatagram::pair().unwrap();
        let (r, _) = a.send(b"x".to_vec()).await;
        r.unwrap();
        let (r, buf) = b.recv(Vec::with_capacity(4)).await;
        assert_eq!(&buf[..r.unwrap()], b"x");

        let name = UnixAddr::from_abstract_name(unique("dgram"));
        let server = UnixDatagram::bind(&name).unwrap();
        let client = UnixDatagram::unbound().unwrap();
        let (r, _) = client.send_to(b"to server".to_vec(), &name).await;
        r.unwrap();
        let (r, buf) = server.recv_from(Vec::with_capacity(64)).await;
        let (n, from) = r.unwrap();
        assert_eq!(&buf[..n], b"to server");
        assert!(from.is_unnamed(), "an unbound sender is unnamed: {from:?}");
    })
    .unwrap();
}

#[test]
fn unix_path_too_long_is_a_clear_error() {
    ringloop::run(async {
        let long = "x".repeat(200);
        let e = UnixListener::bind(long.as_str()).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("107"), "{e}");
    })
    .unwrap();
}

#[test]
fn vectored_reads_and_writes_keep_order() {
    ringloop::run(async {
        let (a, b) = UnixStream::pair().unwrap();
        let parts = vec![
            b"abc".to_vec(),
            Vec::new(),
            b"defgh".to_vec(),
            b"i".to_vec(),
        ];
        let (r, parts) = a.write_vectored(parts).await;
        assert_eq!(r.unwrap(), 9);
        assert_eq!(parts.len(), 4, "buffers come back");
        let bufs = vec![
            Vec::with_capacity(4),
            Vec::with_capacity(2),
            Vec::with_capacity(10),
        ];
        let (r, bufs) = b.read_vectored(bufs).await;
        assert_eq!(r.unwrap(), 9);
        assert_eq!(bufs[0], b"abcd");
        assert_eq!(bufs[1], b"ef");
        assert_eq!(bufs[2], b"ghi");
    })
    .unwrap();
}

#[test]
fn close_returns_its_result_and_the_peer_sees_eof() {
    ringloop::run(async {
        let (a, b) = UnixStream::pair().unwrap();
        a.close().await.unwrap();
        let (n, _) = b.read(Vec::with_capacity(8)).await;
        assert_eq!(n.unwrap(), 0, "EOF once the peer closed");
    })
    .unwrap();
}

#[test]
fn close_with_an_abandoned_read_in_flight_cancels_it_and_closes() {
    ringloop::run(async {
        let (a, b) = UnixStream::pair().unwrap();
        // A read that times out leaves its op in the kernel (being cancelled).
        let r = wait_for(
            a.read(Vec::with_capacity(8)),
            Some(Duration::from_millis(1)),
        )
        .await;
        assert!(r.is_err());
        a.close().await.unwrap();
        // The fd is closed once the abandoned read has landed: the peer
        // sees EOF promptly.
        let (n, _) = wait_for(b.read(Vec::with_capacity(8)), Some(Duration::from_secs(5)))
            .await
            .expect("EOF arrives");
        assert_eq!(n.unwrap(), 0);
    })
    .unwrap();
}
