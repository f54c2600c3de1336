//! asyncio streams: readline, readuntil, readexactly, drain, close,
//! start_server and open_connection.

use std::time::Duration;

use ringloop::io::{StreamError, StreamReader, StreamWriter, open_connection, start_server};
use ringloop::net::{TcpListener, TcpStream};

/// A reader over a connection whose peer sends `chunks` (with pauses, so
/// they arrive as separate reads) and then closes.
async fn reader_fed(chunks: Vec<&'static [u8]>) -> (StreamReader, StreamWriter) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    ringloop::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        for c in chunks {
            let (r, _) = s.write_all(c).await;
            r.unwrap();
            ringloop::sleep(Duration::from_millis(2)).await;
        }
    })
    .detach();
    open_connection(addr).await.unwrap()
}

#[test]
fn st1_readline_returns_through_newline_and_at_eof_what_is_left() {
    ringloop::run(async {
        let (mut r, _w) = reader_fed(vec![b"hel", b"lo\nwor", b"ld\nta", b"il"]).await;
        assert_eq!(r.readline().await.unwrap(), b"hello\n");
        assert_eq!(r.readline().await.unwrap(), b"world\n");
        assert_eq!(r.readline().await.unwrap(), b"tail", "at EOF: what is left");
        assert_eq!(r.readline().await.unwrap(), b"", "then empty");
        assert!(r.at_eof());
    })
    .unwrap();
}

#[test]
fn st2_readuntil_at_eof_without_separator_is_incomplete_with_partial() {
    ringloop::run(async {
        let (mut r, _w) = reader_fed(vec![b"abc--def", b"--gh"]).await;
        assert_eq!(r.readuntil(b"--").await.unwrap(), b"abc--");
        assert_eq!(
            r.readuntil(b"--").await.unwrap(),
            b"def--",
            "separator split across reads"
        );
        match r.readuntil(b"--").await {
            Err(StreamError::IncompleteRead(e)) => {
                assert_eq!(e.partial, b"gh");
                assert_eq!(e.expected, None);
            }
            other => panic!("expected IncompleteRead, got {other:?}"),
        }
    })
    .unwrap();
}

#[test]
fn st2_readuntil_past_the_limit_is_overrun_and_the_data_stays() {
    ringloop::run(async {
        let (mut r, _w) = reader_fed(vec![b"0123456789", b"abcdef\nrest"]).await;
        r.set_limit(8);
        match r.readuntil(b"\n").await {
            Err(StreamError::LimitOverrun(e)) => assert!(e.consumed > 8, "{e:?}"),
            other => panic!("expected LimitOverrun, got {other:?}"),
        }
        // The data stayed: with a bigger limit the same call succeeds.
        r.set_limit(64);
        assert_eq!(r.readuntil(b"\n").await.unwrap(), b"0123456789abcdef\n");
        assert_eq!(r.read(100).await.unwrap(), b"rest");
    })
    .unwrap();
}

#[test]
fn st2_default_limit_is_64_kib() {
    ringloop::run(async {
        let (r, _w) = reader_fed(vec![b"x"]).await;
        assert_eq!(r.limit(), 64 * 1024);
    })
    .unwrap();
}

#[test]
fn st3_readexactly_at_eof_is_incomplete_with_partial() {
    ringloop::run(async {
        let (mut r, _w) = reader_fed(vec![b"12345", b"678"]).await;
        assert_eq!(r.readexactly(4).await.unwrap(), b"1234");
        match r.readexactly(10).await {
            Err(StreamError::IncompleteRead(e)) => {
                assert_eq!(e.partial, b"5678");
                assert_eq!(e.expected, Some(10));
            }
            other => panic!("expected IncompleteRead, got {other:?}"),
        }
    })
    .unwrap();
}

#[test]
fn st4_drain_applies_back_pressure_at_the_high_water_mark() {
    ringloop::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (_r, w) = open_connection(addr).await.unwrap();
        // The peer accepts but does not read: the kernel buffers fill up.
        let (peer, _) = listener.accept().await.unwrap();
        w.set_write_buffer_limits(64 * 1024, 16 * 1024);
        // Below the high-water mark, drain returns at once.
        w.write(&[1u8; 1000]).unwrap();
        ringloop::wait_for(w.drain(), Some(Duration::from_millis(500)))
            .await
            .expect("below the high-water mark drain does not wait")
            .unwrap();
        // Far more than the socket buffers: drain must wait for the reader.
        let big = vec![7u8; 32 * 1024 * 1024];
        w.write(&big).unwrap();
        assert!(w.buffer_size() > 64 * 1024);
        let r = ringloop::wait_for(w.drain(), Some(Duration::from_millis(100))).await;
        assert!(r.is_err(), "drain returned while the peer was not reading");
        // Once the peer reads, drain completes with the buffer at or below
        // the low-water mark.
        let reader = ringloop::spawn(async move {
            let mut total = 0usize;
            let mut buf = Vec::with_capacity(256 * 1024);
            while total < 1000 + 32 * 1024 * 1024 {
                buf.clear();
                let (n, b) = peer.read(buf).await;
                total += n.unwrap();
                buf = b;
            }
            total
        });
        w.drain().await.unwrap();
        assert!(w.buffer_size() <= 16 * 1024, "{}", w.buffer_size());
        assert_eq!(reader.await.unwrap(), 1000 + 32 * 1024 * 1024);
    })
    .unwrap();
}

#[test]
fn st4_close_flushes_then_wait_closed_and_the_peer_sees_eof() {
    ringloop::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (_r, w) = open_connection(addr).await.unwrap();
        let (peer, _) = listener.accept().await.unwrap();
        w.write(b"last words").unwrap();
        w.close();
        assert!(w.is_closing());
        let e = w.write(b" refused after close").unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
        w.wait_closed().await.unwrap();
        let (res, buf) = peer.read_exact(Vec::with_capacity(10)).await;
        res.unwrap();
        assert_eq!(buf, b"last words");
        let (n, _) = peer.read(Vec::with_capacity(8)).await;
        assert_eq!(n.unwrap(), 0, "EOF after close");
    })
    .unwrap();
}

#[test]
fn st5_start_server_runs_each_connection_in_its_own_task() {
    ringloop::run(async {
        let server = start_server(
            |mut r, w| async move {
                // Each handler echoes its own lines, upper-cased, until EOF.
                loop {
                    let line = r.readline().await.unwrap();
                    if line.is_empty() {
                        break;
                    }
                    w.write(&line.to_ascii_uppercase()).unwrap();
                    w.drain().await.unwrap();
                }
            },
            "127.0.0.1:0",
        )
        .unwrap();
        let addr = server.local_addr().unwrap();
        // Two clients interleave: a handler blocked on one connection must
        // not hold up the other (one task per connection).
        let (mut r1, w1) = open_connection(addr).await.unwrap();
        let (mut r2, w2) = open_connection(addr).await.unwrap();
        w1.write(b"first ").unwrap();
        w2.write(b"second\n").unwrap();
        assert_eq!(r2.readline().await.unwrap(), b"SECOND\n");
        w1.write(b"line\n").unwrap();
        assert_eq!(r1.readline().await.unwrap(), b"FIRST LINE\n");
        drop((w1, w2));
    })
    .unwrap();
}

#[test]
fn st5_open_connection_to_a_closed_port_fails_cleanly() {
    ringloop::run(async {
        // Bind then drop a listener to get a port with nothing listening.
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        ringloop::sleep(Duration::from_millis(5)).await;
        let e = open_connection(("127.0.0.1", port)).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
        // And a stream connected the plain way still works beside streams.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        drop(c);
    })
    .unwrap();
}
