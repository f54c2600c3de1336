//! asyncio stream fidelity: `at_eof` once data and EOF arrived together,
//! the limit and `LimitOverrunError` as asyncio computes them, sticky read
//! errors, and `StreamWriter::close` / `write_eof`.
//!
//! The peer is a plain `std` socket on 127.0.0.1, so what it sends (data,
//! FIN, RST) is in our kernel before the reader asks; its blocking reads
//! run on the blocking pool. Every test takes the binary's lock: one of
//! them counts the process's fds.

mod common;

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::time::Duration;

use common::{fd_count, fd_list, ms, reset, run_bounded, serial};
use ringloop::io::{StreamError, StreamReader, StreamWriter, open_connection};
use ringloop::wait_for;

const BOUND: Duration = Duration::from_secs(30);

/// Our reader and writer, and the peer's end of the connection.
async fn connection() -> (StreamReader, StreamWriter, std::net::TcpStream) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local_addr");
    let (r, w) = open_connection(addr).await.expect("open_connection");
    // The handshake is done: accept returns at once.
    let (peer, _) = listener.accept().expect("accept");
    (r, w, peer)
}

/// Lets what the peer sent over loopback reach our socket.
async fn settle() {
    ringloop::sleep(ms(20)).await;
}

#[track_caller]
fn assert_reset(e: &io::Error) {
    assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e:?}");
}

#[track_caller]
fn assert_stream_reset<T: std::fmt::Debug>(r: Result<T, StreamError>) {
    match r {
        Err(StreamError::Io(e)) => assert_reset(&e),
        other => panic!("expected ECONNRESET, got {other:?}"),
    }
}

#[track_caller]
fn overrun<T: std::fmt::Debug>(r: Result<T, StreamError>) -> ringloop::io::LimitOverrunError {
    match r {
        Err(StreamError::LimitOverrun(e)) => e,
        other => panic!("expected LimitOverrun, got {other:?}"),
    }
}

#[test]
fn st6_at_eof_after_data_and_eof_arrived_together() {
    let _serial = serial();
    run_bounded(BOUND, async {
        let (mut r, _w, mut peer) = connection().await;
        peer.write_all(b"last line\n").expect("peer writes");
        peer.shutdown(Shutdown::Write).expect("peer shuts down");
        settle().await;
        assert!(!r.at_eof(), "a line is still to be read");
        assert_eq!(r.readline().await.expect("readline"), b"last line\n");
        assert!(r.at_eof(), "buffer empty and the peer's EOF arrived");
        assert_eq!(r.read(10).await.expect("read"), b"");
        assert!(r.at_eof());
    });
}

#[test]
fn st6_at_eof_turns_true_when_eof_arrives_after_the_data_was_read() {
    let _serial = serial();
    run_bounded(BOUND, async {
        let (mut r, _w, mut peer) = connection().await;
        peer.write_all(b"abc").expect("peer writes");
        settle().await;
        assert_eq!(r.read(1).await.expect("read"), b"a");
        assert!(!r.at_eof(), "bytes still buffered");
        assert_eq!(r.read(10).await.expect("read"), b"bc");
        assert!(!r.at_eof(), "the peer has not closed");
        peer.shutdown(Shutdown::Write).expect("peer shuts down");
        settle().await;
        assert!(r.at_eof(), "EOF arrived, nothing buffered: no read needed");
        assert_eq!(r.read_to_end().await.expect("read_to_end"), b"");
    });
}

#[test]
fn st7_a_line_of_exactly_limit_bytes_plus_separator_is_accepted() {
    let _serial = serial();
    run_bounded(BOUND, async {
        let (mut r, _w, mut peer) = connection().await;
        r.set_limit(8);
        peer.write_all(b"01234567\nabcdefgh--")
            .expect("peer writes");
        settle().await;
        assert_eq!(
            r.readline().await.expect("8 bytes + newline"),
            b"01234567\n"
        );
        assert_eq!(
            r.readuntil(b"--")
                .await
                .expect("8 bytes + 2-byte separator"),
            b"abcdefgh--"
        );
        // `limit` bytes without the separator yet: not an overrun, it waits.
        peer.write_all(b"wxyz0123").expect("peer writes");
        settle().await;
        assert!(
            wait_for(r.readline(), Some(ms(50))).await.is_err(),
            "readline returned before its newline"
        );
        peer.write_all(b"\n").expect("peer writes");
        assert_eq!(r.readline().await.expect("readline"), b"wxyz0123\n");
    });
}

#[test]
fn st7_overrun_without_separator_reports_the_bytes_scanned_and_keeps_them() {
    let _serial = serial();
    run_bounded(BOUND, async {
        let (mut r, _w, mut peer) = connection().await;
        r.set_limit(4);
        peer.write_all(b"abcdefg").expect("peer writes");
        settle().await;
        let e = overrun(r.readuntil(b"--").await);
        // asyncio: buffered - len(separator) + 1 = 7 - 2 + 1.
        assert_eq!(e.consumed, 6, "{e:?}");
        assert!(!e.separator_found, "{e:?}");
        assert_eq!(
            e.to_string(),
            "Separator is not found, and chunk exceed the limit"
        );
        assert_eq!(r.read(100).await.expect("read"), b"abcdefg", "data stays");
    });
}

#[test]
fn st7_overrun_with_separator_beyond_the_limit_reports_its_offset_and_keeps_the_data() {
    let _serial = serial();
    run_bounded(BOUND, async {
        let (mut r, _w, mut peer) = connection().await;
        r.set_limit(4);
        peer.write_all(b"abcdef--gh").expect("peer writes");
        settle().await;
        let e = overrun(r.readuntil(b"--").await);
        assert_eq!(e.consumed, 6, "the separator's offset: {e:?}");
        assert!(e.separator_found, "{e:?}");
        assert_eq!(
            e.to_string(),
            "Separator is found, but chunk is longer than limit"
        );
        r.set_limit(6);
        assert_eq!(r.readuntil(b"--").await.expect("readuntil"), b"abcdef--");
        assert_eq!(r.read(100).await.expect("read"), b"gh");
    });
}

#[test]
fn st7_readline_overrun_drops_the_line_or_else_the_whole_buffer() {
    let _serial = serial();
    run_bounded(BOUND, async {
        let (mut r, _w, mut peer) = connection().await;
        r.set_limit(4);
        peer.write_all(b"abcdefg\nok\n").expect("peer writes");
        settle().await;
        let e = overrun(r.readline().await);
        assert_eq!((e.consumed, e.separator_found), (7, true), "{e:?}");
        assert_eq!(r.readline().await.expect("the next line"), b"ok\n");

        peer.write_all(b"abcdefgh").expect("peer writes");
        settle().await;
        let e = overrun(r.readline().await);
        assert_eq!((e.consumed, e.separator_found), (8, false), "{e:?}");
        peer.write_all(b"xy\n").expect("peer writes");
        assert_eq!(
            r.readline().await.expect("readline"),
            b"xy\n",
            "the overlong line's bytes were dropped"
        );
    });
}

#[test]
fn st8_after_a_reset_every_read_fails_with_the_same_error() {
    let _serial = serial();
    run_bounded(BOUND, async {
        let (mut r, _w, peer) = connection().await;
        reset(peer);
        settle().await;
        assert_reset(&r.read(10).await.expect_err("read after a reset"));
        assert_reset(&r.read(10).await.expect_err("and again, not EOF"));
        assert_reset(&r.read(0).await.expect_err("read(0)"));
        assert_stream_reset(r.readline().await);
        assert_stream_reset(r.readuntil(b"--").await);
        assert_stream_reset(r.readexactly(3).await);
        assert_reset(&r.read_to_end().await.expect_err("read_to_end"));
        assert!(!r.at_eof(), "a failed stream is not at EOF");
        assert_reset(&r.read(10).await.expect_err("still the reset"));
    });
}

#[test]
fn st8_a_reset_during_a_read_with_bytes_buffered_fails_every_later_read() {
    let _serial = serial();
    run_bounded(BOUND, async {
        let (mut r, _w, mut peer) = connection().await;
        peer.write_all(b"partial").expect("peer writes");
        let reading = ringloop::spawn(async move {
            let first = r.readexactly(100).await;
            let second = r.readexactly(100).await;
            let line = r.readline().await;
            let small = r.read(1).await;
            (first, second, line, small, r.at_eof())
        });
        settle().await; // The reader waits for more with 7 bytes buffered.
        reset(peer);
        let (first, second, line, small, eof) = reading.await.expect("reader task");
        assert_stream_reset(first);
        assert_stream_reset(second);
        assert_stream_reset(line);
        assert_reset(&small.expect_err("read(1) with bytes buffered"));
        assert!(!eof);
    });
}

#[test]
fn st8_a_reset_seen_first_by_at_eof_is_kept_for_the_reads() {
    let _serial = serial();
    run_bounded(BOUND, async {
        let (mut r, _w, peer) = connection().await;
        reset(peer);
        settle().await;
        assert!(!r.at_eof(), "reset, not EOF");
        assert_stream_reset(r.readexactly(1).await);
        assert_stream_reset(r.readexactly(1).await);
    });
}

#[test]
fn st9_close_closes_both_ways_the_local_reader_and_the_peer_see_eof() {
    let _serial = serial();
    run_bounded(BOUND, async {
        let (mut r, w, mut peer) = connection().await;
        // A reader waiting in the kernel when the writer closes.
        let reading = ringloop::spawn(async move {
            let line = r.readline().await;
            (line, r)
        });
        settle().await;
        w.write(b"bye\n").expect("write");
        w.close();
        assert!(w.is_closing());
        wait_for(w.wait_closed(), Some(Duration::from_secs(5)))
            .await
            .expect("wait_closed returns")
            .expect("closed cleanly");
        let (line, mut r) = wait_for(reading, Some(Duration::from_secs(5)))
            .await
            .expect("the local reader sees EOF once the writer closed")
            .expect("reader task");
        assert_eq!(line.expect("readline"), b"");
        assert!(r.at_eof());
        assert_eq!(r.read(10).await.expect("read"), b"");
        // The peer got the bytes, then EOF (both already in its kernel).
        let mut got = Vec::new();
        peer.read_to_end(&mut got).expect("peer reads");
        assert_eq!(got, b"bye\n");
    });
}

#[test]
fn st9_write_or_drain_after_close_is_an_error() {
    let _serial = serial();
    run_bounded(BOUND, async {
        let (_r, w, _peer) = connection().await;
        w.write(b"x").expect("write before close");
        w.close();
        for e in [
            w.write(b"more").expect_err("write after close"),
            w.write(b"").expect_err("even an empty write"),
            w.drain().await.expect_err("drain after close"),
        ] {
            assert_eq!(e.kind(), io::ErrorKind::BrokenPipe, "{e:?}");
            assert!(e.to_string().contains("closed"), "{e}");
        }
        w.wait_closed().await.expect("wait_closed");
        assert_eq!(
            w.write(b"late").expect_err("write once closed").kind(),
            io::ErrorKind::BrokenPipe
        );
        assert!(w.drain().await.is_err(), "drain once closed");
    });
}

#[test]
fn st9_write_eof_half_closes_and_the_reader_keeps_reading() {
    let _serial = serial();
    run_bounded(BOUND, async {
        let (mut r, w, mut peer) = connection().await;
        let peer_side = ringloop::to_thread(move || {
            let mut request = Vec::new();
            peer.read_to_end(&mut request).expect("peer reads to EOF");
            peer.write_all(b"response").expect("peer answers");
            peer.shutdown(Shutdown::Write).expect("peer shuts down");
            request
        });
        assert!(w.can_write_eof());
        w.write(b"request").expect("write");
        w.write_eof().expect("write_eof");
        w.write_eof().expect("a second write_eof is a no-op");
        assert!(!w.is_closing(), "write_eof is not close");
        let e = w.write(b"late").expect_err("write after write_eof");
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe, "{e:?}");
        w.drain().await.expect("drain after write_eof");
        assert_eq!(peer_side.await.expect("peer thread"), b"request");
        assert_eq!(r.read_to_end().await.expect("read_to_end"), b"response");
        w.close();
        w.wait_closed().await.expect("wait_closed after write_eof");
    });
}

#[test]
fn st9_close_with_a_cancelled_wait_loses_no_bytes_and_releases_the_fd() {
    let _serial = serial();
    run_bounded(BOUND, async {
        // The blocking pool (the peer runs there) and the ring are warm.
        ringloop::to_thread(|| ()).await.expect("warm-up job");
        settle().await;
        let base = fd_count();
        let (r, w, mut peer) = connection().await;
        let data: Vec<u8> = (0..4u32 << 20).map(|i| (i % 251) as u8).collect();
        let peer_side = ringloop::to_thread(move || {
            let mut got = Vec::new();
            peer.read_to_end(&mut got).expect("peer reads to EOF");
            got
        });
        w.write(&data).expect("write");
        w.close();
        // Cancelled: the wait is dropped long before 4 MiB went out.
        assert!(
            wait_for(w.wait_closed(), Some(Duration::ZERO))
                .await
                .is_err(),
            "4 MiB sent at once"
        );
        assert!(w.write(b"x").is_err(), "write while closing");
        drop(w);
        drop(r);
        let got = peer_side.await.expect("peer thread");
        assert_eq!(got.len(), data.len());
        assert!(got == data, "the bytes written before close, in order");
        let mut waited = 0;
        while fd_count() != base && waited < 2000 {
            ringloop::sleep(ms(1)).await;
            waited += 1;
        }
        assert_eq!(fd_count(), base, "fds: {:?}", fd_list());
    });
}

#[test]
fn dropping_the_writer_only_half_closes_the_reader_keeps_reading() {
    let _serial = serial();
    run_bounded(BOUND, async {
        let (mut r, w, mut peer) = connection().await;
        w.write(b"ping").expect("write");
        drop(w);
        let peer_side = ringloop::to_thread(move || {
            let mut got = Vec::new();
            peer.read_to_end(&mut got).expect("peer reads to EOF");
            peer.write_all(b"pong").expect("peer answers");
            got
        });
        assert_eq!(peer_side.await.expect("peer thread"), b"ping");
        assert_eq!(r.read_to_end().await.expect("read_to_end"), b"pong");
    });
}
