//! Receiving through a shared buffer group (`BufGroup`, `recv_stream`):
//! byte-exact through a tiny group with a slow consumer (the `ENOBUFS`
//! path), chunks going back on drop, a stream dropped mid-transfer losing
//! nothing, end of stream, a reset peer, many connections on one group,
//! growth, a stream holding every buffer, a group dropped while receives
//! are in flight, and no leaked fds.
//!
//! Runs on both backends (`RINGLOOP_BACKEND=epoll cargo test --test
//! bufring` for the second). The tests count fds, so they run one at a
//! time.

mod common;

use std::collections::VecDeque;
use std::io::{self, Write};
use std::net::Shutdown;

use common::{Sha256, XorShift, fd_count, fd_list, ms, run_bounded, serial};
use futures_util::StreamExt;
use ringloop::net::{BufGroup, Chunk, TcpListener, TcpStream, UnixStream};
use ringloop::{sleep, spawn};

/// A connected pair: (client, server).
async fn pair(listener: &TcpListener) -> (TcpStream, TcpStream) {
    let client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, _) = listener.accept().await.unwrap();
    (client, server)
}

/// Sends `data` then half-closes, from a task.
fn send_all_then_fin(client: TcpStream, data: Vec<u8>) -> ringloop::Task<()> {
    spawn(async move {
        let (res, _) = client.write_all(data).await;
        res.unwrap();
        client.shutdown(Shutdown::Write).await.unwrap();
        // Keep the client open until the reader is done (its close would
        // not lose bytes, but a reset must not race the test).
        sleep(ms(3_000)).await;
    })
}

#[test]
fn ten_mib_through_four_small_buffers_with_a_slow_consumer_is_byte_exact() {
    let _g = serial();
    run_bounded(ms(60_000), async {
        let group = BufGroup::new(4, 4096).unwrap();
        assert_eq!(
            (group.len(), group.buf_size(), group.available()),
            (4, 4096, 4)
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let (client, server) = pair(&listener).await;
        let data = XorShift::new(16).bytes(10 << 20);
        let want = Sha256::digest(&data);
        let writer = send_all_then_fin(client, data);
        let mut chunks = server.recv_stream(&group);
        let mut sha = Sha256::new();
        let (mut total, mut n) = (0usize, 0u64);
        // Hold up to three chunks (of four buffers) and pause now and then:
        // the kernel runs the group dry again and again.
        let mut held: VecDeque<Chunk> = VecDeque::new();
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.unwrap();
            assert!(!chunk.is_empty() && chunk.len() <= 4096, "{}", chunk.len());
            total += chunk.len();
            held.push_back(chunk);
            if held.len() == 3 {
                sha.update(&held.pop_front().unwrap());
            }
            n += 1;
            if n % 64 == 0 {
                sleep(ms(1)).await;
            }
        }
        for c in held.drain(..) {
            sha.update(&c);
        }
        assert_eq!(total, 10 << 20);
        assert_eq!(sha.finish(), want, "the bytes differ");
        assert!(
            group.times_empty() > 0,
            "the group never ran dry: the ENOBUFS path was not exercised"
        );
        assert_eq!(group.available(), 4, "every buffer is back");
        writer.cancel();
    });
}

#[test]
fn chunks_go_back_to_the_group_when_dropped() {
    let _g = serial();
    run_bounded(ms(10_000), async {
        let group = BufGroup::new(8, 16).unwrap();
        let (a, b) = UnixStream::pair().unwrap();
        let mut chunks = b.recv_stream(&group);
        let mut got = Vec::new();
        let mut held = Vec::new();
        for i in 0..5u8 {
            let (res, _) = a.write_all(vec![i; 16]).await;
            res.unwrap();
            let c = chunks.next().await.unwrap().unwrap();
            got.extend_from_slice(&c);
            held.push(c);
            assert_eq!(group.available(), 8 - held.len());
        }
        assert_eq!(got, (0..5u8).flat_map(|i| [i; 16]).collect::<Vec<_>>());
        held.truncate(2);
        assert_eq!(group.available(), 6);
        let v = held.pop().unwrap().into_vec();
        assert_eq!(v, [1u8; 16]);
        assert_eq!(group.available(), 7);
        drop(held);
        assert_eq!(group.available(), 8);
    });
}

/// Drops the stream at every few chunks, with data still arriving, and
/// reads on with a new stream or a plain read: the concatenation is the
/// exact stream (the chunks the dropped receive got were kept).
#[test]
fn a_dropped_stream_mid_transfer_loses_nothing() {
    let _g = serial();
    run_bounded(ms(60_000), async {
        let group = BufGroup::new(16, 1024).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let (client, server) = pair(&listener).await;
        let data = XorShift::new(7).bytes(2 << 20);
        let want = Sha256::digest(&data);
        let writer = send_all_then_fin(client, data);
        let mut rng = XorShift::new(99);
        let mut sha = Sha256::new();
        let mut total = 0;
        let mut drops = 0;
        'outer: loop {
            if rng.range(0, 4) == 0 {
                // A plain read in between.
                let (res, buf) = server.read(Vec::with_capacity(3000)).await;
                match res.unwrap() {
                    0 => break,
                    n => {
                        sha.update(&buf[..n]);
                        total += n;
                    }
                }
                continue;
            }
            let mut chunks = server.recv_stream(&group);
            let take = rng.range_usize(1, 6);
            for _ in 0..take {
                match chunks.next().await {
                    Some(c) => {
                        let c = c.unwrap();
                        sha.update(&c);
                        total += c.len();
                    }
                    None => break 'outer,
                }
            }
            // More data is on its way into the group's buffers.
            drop(chunks);
            drops += 1;
        }
        assert_eq!(total, 2 << 20);
        assert_eq!(sha.finish(), want, "bytes lost or reordered");
        assert!(drops > 10, "only {drops} drops");
        // Orphaned receives gave their buffers back.
        sleep(ms(10)).await;
        assert_eq!(group.available(), 16);
        writer.cancel();
    });
}

#[test]
fn the_stream_ends_at_the_peers_end_and_stays_ended() {
    let _g = serial();
    run_bounded(ms(10_000), async {
        let group = BufGroup::new(4, 64).unwrap();
        let (a, b) = UnixStream::pair().unwrap();
        let (res, _) = a.write_all(b"last words".to_vec()).await;
        res.unwrap();
        drop(a);
        let mut chunks = b.recv_stream(&group);
        let c = chunks.next().await.unwrap().unwrap();
        assert_eq!(&c[..], b"last words");
        assert!(chunks.next().await.is_none());
        assert!(chunks.next().await.is_none(), "ended for good");
        // A plain read after it sees the end too.
        let (res, _) = b.read(Vec::with_capacity(8)).await;
        assert_eq!(res.unwrap(), 0);
    });
}

#[test]
fn a_reset_peer_is_an_error_then_the_end() {
    let _g = serial();
    run_bounded(ms(10_000), async {
        let group = BufGroup::new(4, 4096).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut peer = std::net::TcpStream::connect(addr).unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let mut chunks = server.recv_stream(&group);
        peer.write_all(b"hi").unwrap();
        let c = chunks.next().await.unwrap().unwrap();
        assert_eq!(&c[..], b"hi");
        drop(c);
        common::reset(peer);
        let e = chunks.next().await.unwrap().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}");
        assert!(chunks.next().await.is_none());
        assert_eq!(group.available(), 4);
    });
}

#[test]
fn many_connections_share_one_small_group() {
    let _g = serial();
    run_bounded(ms(60_000), async {
        const CONNS: usize = 32;
        const EACH: usize = 64 << 10;
        let group = BufGroup::new(8, 512).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut readers = Vec::new();
        let mut writers = Vec::new();
        for i in 0..CONNS {
            let (client, server) = pair(&listener).await;
            let data = XorShift::new(i as u64 + 1).bytes(EACH);
            let want = Sha256::digest(&data);
            writers.push(send_all_then_fin(client, data));
            let group = group.clone();
            readers.push(spawn(async move {
                let mut chunks = server.recv_stream(&group);
                let (mut sha, mut total) = (Sha256::new(), 0);
                while let Some(c) = chunks.next().await {
                    let c = c.unwrap();
                    sha.update(&c);
                    total += c.len();
                }
                assert_eq!(total, EACH, "connection {i}");
                assert_eq!(sha.finish(), want, "connection {i}");
            }));
        }
        for r in readers {
            r.await.unwrap();
        }
        assert_eq!(group.available(), 8);
        for w in writers {
            w.cancel();
        }
    });
}

#[test]
fn a_growable_group_grows_when_it_runs_dry() {
    let _g = serial();
    run_bounded(ms(10_000), async {
        let group = BufGroup::growable(2, 256, 16).unwrap();
        let (a, b) = UnixStream::pair().unwrap();
        let mut chunks = b.recv_stream(&group);
        let mut held = Vec::new();
        let mut got = Vec::new();
        // Hold everything: the group must grow to serve the reads.
        for i in 0..10u8 {
            let (res, _) = a.write_all(vec![i; 256]).await;
            res.unwrap();
            let c = chunks.next().await.unwrap().unwrap();
            got.extend_from_slice(&c);
            held.push(c);
        }
        assert_eq!(got, (0..10u8).flat_map(|i| [i; 256]).collect::<Vec<_>>());
        assert!(group.len() >= 10 && group.len() <= 16, "{}", group.len());
        assert!(held.iter().all(|c| c.len() == 256));
        drop(held);
        assert_eq!(group.available(), group.len());
    });
}

/// A consumer that keeps every chunk of a fixed group and asks for more
/// does not wait forever: the next chunk comes in a heap buffer.
#[test]
fn a_stream_holding_every_buffer_still_gets_the_next_chunk() {
    let _g = serial();
    run_bounded(ms(10_000), async {
        let group = BufGroup::new(2, 64).unwrap();
        let (a, b) = UnixStream::pair().unwrap();
        let mut chunks = b.recv_stream(&group);
        let mut held = Vec::new();
        let mut got = Vec::new();
        for i in 0..6u8 {
            let (res, _) = a.write_all(vec![i; 64]).await;
            res.unwrap();
            let c = chunks.next().await.unwrap().unwrap();
            got.extend_from_slice(&c);
            held.push(c);
        }
        assert_eq!(got, (0..6u8).flat_map(|i| [i; 64]).collect::<Vec<_>>());
        assert_eq!(group.available(), 0);
        drop(held);
        assert_eq!(group.available(), 2);
    });
}

/// The user's handle, the streams and the loop go in every order while
/// receives are armed and data is in flight: nothing is freed under the
/// kernel (run under scripts/asan.sh too) and no fd stays open.
#[test]
fn a_group_dropped_while_receives_are_in_flight_is_safe_and_leaks_no_fd() {
    let _g = serial();
    // A loop leaves a per-thread eventfd behind it (reused by the next
    // loop on the thread): count from after a first loop.
    run_bounded(ms(5_000), async {});
    let before = fd_count();
    for round in 0..3 {
        let outliving = run_bounded(ms(10_000), async move {
            let group = BufGroup::new(64, 128).unwrap();
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let mut keep = Vec::new();
            for i in 0..8 {
                let (client, server) = pair(&listener).await;
                let mut chunks = server.recv_stream(&group);
                if i % 2 == 0 {
                    // Armed and fed: data lands in the group's buffers.
                    let (res, _) = client.write_all(vec![7u8; 1000]).await;
                    res.unwrap();
                    let c = chunks.next().await.unwrap().unwrap();
                    assert!(c.iter().all(|&b| b == 7));
                    keep.push((client, server, Some(chunks), Some(c)));
                } else {
                    // Armed on an idle connection: polled once.
                    let idle = ringloop::wait_for(chunks.next(), Some(ms(1))).await;
                    assert!(idle.is_err(), "no data was sent");
                    keep.push((client, server, Some(chunks), None));
                }
            }
            drop(group); // the streams keep it
            match round {
                0 => {
                    // Streams dropped with completions queued, then the loop.
                    for (_, _, chunks, _) in &mut keep {
                        chunks.take();
                    }
                }
                1 => {
                    // Chunks outlive their streams, then the loop.
                    for (_, _, chunks, _) in &mut keep {
                        chunks.take();
                    }
                    sleep(ms(5)).await;
                }
                _ => {} // everything armed when the loop goes
            }
            // Chunks still held outlive the loop (dropped after it).
            let chunks: Vec<Chunk> = keep.iter_mut().filter_map(|k| k.3.take()).collect();
            drop(keep);
            chunks
        });
        assert_eq!(outliving.len(), 4);
        drop(outliving);
    }
    // The loops are gone: every socket was closed.
    let mut after = fd_count();
    for _ in 0..100 {
        if after == before {
            break;
        }
        std::thread::sleep(ms(20));
        after = fd_count();
    }
    assert_eq!(after, before, "fds left open: {:?}", fd_list());
}

#[test]
fn chunks_outliving_their_loop_just_free_memory() {
    let _g = serial();
    let kept: Vec<Chunk> = run_bounded(ms(10_000), async {
        let group = BufGroup::new(4, 32).unwrap();
        let (a, b) = UnixStream::pair().unwrap();
        let (res, _) = a.write_all(b"survivor".to_vec()).await;
        res.unwrap();
        let mut chunks = b.recv_stream(&group);
        vec![chunks.next().await.unwrap().unwrap()]
    });
    assert_eq!(&kept[0][..], b"survivor");
    drop(kept);
}

#[test]
fn a_group_of_another_loop_is_an_error() {
    let _g = serial();
    let group = run_bounded(ms(5_000), async { BufGroup::new(2, 64).unwrap() });
    run_bounded(ms(5_000), async move {
        let (_a, b) = UnixStream::pair().unwrap();
        let mut chunks = b.recv_stream(&group);
        let e = chunks.next().await.unwrap().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
        assert!(e.to_string().contains("another event loop"), "{e}");
        assert!(chunks.next().await.is_none());
    });
}

#[test]
fn bad_group_sizes_are_clear_errors() {
    let _g = serial();
    run_bounded(ms(5_000), async {
        for (count, size, max) in [(0, 64, 0), (4, 0, 4), (4, 64, 2), (1 << 16, 64, 1 << 16)] {
            let e = BufGroup::growable(count, size, max).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
        }
    });
    let e = BufGroup::new(4, 64).unwrap_err();
    assert!(e.to_string().contains("event loop"), "{e}");
}

/// The stream is a `futures` `Stream` as well (`StreamExt` works on it).
#[test]
fn the_stream_works_with_stream_combinators() {
    let _g = serial();
    run_bounded(ms(5_000), async {
        let group = BufGroup::new(4, 8).unwrap();
        let (a, b) = UnixStream::pair().unwrap();
        let (res, _) = a.write_all(b"abcdefghijklmnopqrstuvwxyz".to_vec()).await;
        res.unwrap();
        drop(a);
        let all: Vec<u8> = b
            .recv_stream(&group)
            .map(|c| c.unwrap().into_vec())
            .concat()
            .await;
        assert_eq!(all, b"abcdefghijklmnopqrstuvwxyz");
    });
}

/// Many streams that see the group run dry together grow it once, not
/// once each: 64 connections whose chunks are all held need 64 buffers,
/// and the group (growing from 2, doubling) ends at 64 or 128, not at its
/// maximum.
#[test]
fn a_growable_group_grows_once_per_dry_spell() {
    let _g = serial();
    run_bounded(ms(20_000), async {
        const CONNS: usize = 64;
        let group = BufGroup::growable(2, 64, 4096).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut pairs = Vec::new();
        for _ in 0..CONNS {
            pairs.push(pair(&listener).await);
        }
        let mut streams: Vec<_> = pairs.iter().map(|(_, s)| s.recv_stream(&group)).collect();
        // Every receive armed before the data comes: they find the group
        // dry together.
        for s in &mut streams {
            assert!(ringloop::wait_for(s.next(), Some(ms(1))).await.is_err());
        }
        for (i, (client, _)) in pairs.iter().enumerate() {
            let (res, _) = client.write_all(vec![i as u8; 64]).await;
            res.unwrap();
        }
        sleep(ms(20)).await;
        let mut held = Vec::new();
        for (i, s) in streams.iter_mut().enumerate() {
            let mut got = Vec::new();
            while got.len() < 64 {
                let c = s.next().await.unwrap().unwrap();
                got.extend_from_slice(&c);
                held.push(c);
            }
            assert_eq!(got, vec![i as u8; 64]);
        }
        assert!(
            (CONNS..=2 * CONNS).contains(&group.len()),
            "the group grew to {} buffers for {CONNS} chunks held",
            group.len()
        );
        drop(held);
        assert_eq!(group.available(), group.len());
    });
}
