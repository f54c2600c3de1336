//! The asyncio streams layer ([`ringloop::io::open_connection`],
//! `StreamReader`) under the same peer faults as [`crate::peer`]: a stall
//! and a reset mid-message.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use crate::assert_fds_back;
use crate::common::{ms, run_bounded, serial};
use crate::peer::{fd_baseline, message, reset};
use ringloop::io::{StreamError, open_connection};
use ringloop::wait_for;

/// A peer that stalls mid-message: `wait_for(readexactly(n), 100 ms)` times
/// out (W2) and, as in asyncio, the bytes already buffered stay in the
/// reader: the next `readexactly(n)` returns the whole body.
#[test]
fn st3_stream_readexactly_timed_out_keeps_partial_bytes() {
    let _serial = serial();
    let base = fd_baseline();
    run_bounded(Duration::from_secs(60), async {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("local_addr");
        let (mut r, _w) = open_connection(addr).await.expect("open_connection");
        let (mut peer, _) = listener.accept().expect("accept");
        let msg = message(1000, 31);
        peer.write_all(&msg[..4 + 500]).expect("peer writes half");

        let head = r.readexactly(4).await.expect("length prefix");
        let len = u32::from_be_bytes(head[..].try_into().expect("4 bytes")) as usize;
        for _ in 0..2 {
            let t0 = Instant::now();
            let res = wait_for(r.readexactly(len), Some(ms(100))).await;
            assert!(res.is_err(), "readexactly of half a body returned");
            assert!(t0.elapsed() >= ms(100));
        }
        peer.write_all(&msg[4 + 500..])
            .expect("peer writes the rest");
        let body = r.readexactly(len).await.expect("the whole body");
        assert_eq!(body, &msg[4..], "the body, nothing lost or repeated");
    });
    assert_fds_back(base);
}

/// asyncio streams under a reset mid-message: `readexactly` fails with the
/// socket's ECONNRESET (asyncio raises `ConnectionResetError`), and so does
/// every later call, as asyncio's reader raises its exception again: the
/// stream is neither at EOF nor does it hand out the bytes that were
/// buffered (ST8). No panic, no hang.
#[test]
fn st3_stream_readexactly_across_a_reset() {
    let _serial = serial();
    let base = fd_baseline();
    run_bounded(Duration::from_secs(60), async {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("local_addr");
        let (mut r, _w) = open_connection(addr).await.expect("open_connection");
        let (mut peer, _) = listener.accept().expect("accept");
        let msg = message(1000, 41);
        peer.write_all(&msg[..4 + 300])
            .expect("peer writes 300 of 1000");
        let head = r.readexactly(4).await.expect("length prefix");
        assert_eq!(head, &msg[..4]);
        let pending = wait_for(r.readexactly(1000), Some(ms(50))).await;
        assert!(
            pending.is_err(),
            "readexactly of 300 of 1000 bytes returned"
        );
        reset(peer);

        let first = wait_for(r.readexactly(1000), Some(ms(5000)))
            .await
            .expect("readexactly across a reset hangs");
        match first {
            Err(StreamError::Io(e)) => {
                assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e:?}")
            }
            other => panic!("expected ECONNRESET, got {other:?}"),
        }
        for _ in 0..2 {
            match r.readexactly(1).await {
                Err(StreamError::Io(e)) => {
                    assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e:?}")
                }
                other => panic!("expected the reset again, got {other:?}"),
            }
        }
        assert!(!r.at_eof(), "a reset stream is not at EOF");
    });
    assert_fds_back(base);
}
