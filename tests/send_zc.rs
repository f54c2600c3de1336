//! Zero-copy writes (`TcpStream::write_zc` / `write_all_zc`,
//! `IORING_OP_SEND_ZC`): byte-exact at sizes from 1 KiB to 4 MiB, mixed
//! with plain writes; a dropped write keeps its buffer until the kernel
//! lets go and loses nothing it reported; a reset peer is a clear error;
//! no fd is left behind. On the epoll backend (and kernels before 6.0)
//! the same calls are plain sends, and the same tests hold.
//!
//! The tests count the process's fds, so they run one at a time.

mod common;

use std::cell::Cell;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::rc::Rc;

use common::{XorShift, fd_count, fd_list, ms, run_bounded, serial};
use ringloop::io::IoBuf;
use ringloop::net::{TcpListener, TcpStream};
use ringloop::{Backend, sleep, spawn, wait_for};

/// A connected pair: (client, server).
async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local_addr");
    let client = TcpStream::connect(addr).await.expect("connect");
    let (server, _) = listener.accept().await.expect("accept");
    (client, server)
}

/// Waits (up to 2 s) for the fd count to come back to `baseline`.
async fn assert_fds_back_to(baseline: usize, what: &str) {
    for _ in 0..100 {
        if fd_count() == baseline {
            return;
        }
        sleep(ms(20)).await;
    }
    assert_eq!(
        fd_count(),
        baseline,
        "{what}: fds left open: {:?}",
        fd_list()
    );
}

fn on_epoll() -> bool {
    ringloop::ring_stats().expect("ring_stats").backend == Backend::Epoll
}

/// Panics with the first difference between `got` and `want`.
fn assert_same(got: &[u8], want: &[u8], what: &str) {
    if let Some(i) = got.iter().zip(want).position(|(a, b)| a != b) {
        panic!("{what}: first difference at byte {i} of {}", want.len());
    }
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
}

#[test]
fn bytes_are_exact_at_sizes_around_and_far_from_small() {
    let _g = serial();
    let sizes = [
        1024,
        4096,
        16 * 1024 - 1,
        16 * 1024,
        16 * 1024 + 1,
        64 * 1024,
        1 << 20,
        4 << 20,
    ];
    run_bounded(ms(30_000), async move {
        let baseline = fd_count();
        let (client, server) = pair().await;
        let mut rng = XorShift::new(16);
        let mut want = Vec::new();
        let mut chunks = Vec::new();
        for (i, &n) in sizes.iter().enumerate() {
            let chunk = rng.bytes(n);
            want.extend_from_slice(&chunk);
            // Every other chunk plain, so zero-copy and plain writes
            // interleave on one stream.
            chunks.push((i % 2 == 0, chunk));
        }
        let total = want.len();
        let writer = spawn(async move {
            for (zc, chunk) in chunks {
                let len = chunk.len();
                let (res, back) = if zc {
                    client.write_all_zc(chunk).await
                } else {
                    client.write_all(chunk).await
                };
                res.unwrap_or_else(|e| panic!("write of {len} bytes (zc: {zc}): {e}"));
                assert_eq!(back.len(), len, "the buffer comes back whole");
            }
            client
        });
        let (res, got) = server.read_exact(Vec::with_capacity(total)).await;
        res.expect("read_exact");
        assert_same(&got, &want, "zero-copy stream");
        let client = writer.await.expect("writer task");
        // One more of each single-write form: counts are reported, and
        // the reported bytes are the first ones of the buffer.
        let buf = rng.bytes(256 * 1024);
        let (res, back) = client.write_zc(buf).await;
        let n = res.expect("write_zc");
        assert!(n > 0 && n <= back.len(), "write_zc reported {n}");
        let (res, got) = server.read_exact(Vec::with_capacity(n)).await;
        res.expect("read_exact after write_zc");
        assert_same(&got, &back[..n], "write_zc's reported bytes");
        drop((client, server));
        assert_fds_back_to(baseline, "after the byte-exact transfers").await;
    });
}

/// A buffer that records when it is dropped.
struct Tracked {
    data: Box<[u8]>,
    dropped: Rc<Cell<bool>>,
}

// SAFETY: `data` is heap storage owned by the value: its address does not
// change when the value moves, and all of it is initialised.
unsafe impl IoBuf for Tracked {
    fn stable_ptr(&self) -> *const u8 {
        self.data.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.data.len()
    }
    fn bytes_total(&self) -> usize {
        self.data.len()
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.dropped.set(true);
    }
}

/// Reads `peer` to the end on a std thread.
fn read_all_on_thread(
    mut peer: std::net::TcpStream,
) -> std::thread::JoinHandle<io::Result<Vec<u8>>> {
    std::thread::spawn(move || {
        let mut got = Vec::new();
        peer.read_to_end(&mut got)?;
        Ok(got)
    })
}

#[test]
fn dropped_write_keeps_its_buffer_and_loses_nothing_reported() {
    let _g = serial();
    run_bounded(ms(30_000), async move {
        let baseline = fd_count();
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr: SocketAddr = std_listener.local_addr().expect("addr");
        let client = TcpStream::connect(addr).await.expect("connect");
        let (peer, _) = std_listener.accept().expect("accept");
        drop(std_listener);
        let mut rng = XorShift::new(7);
        // A reported write first; small, since a zero-copy write ends at
        // the peer's ACK and the peer does not read yet (16 KiB fits any
        // loopback receive window).
        let first = rng.bytes(16 * 1024);
        let (res, first) = client.write_all_zc(first).await;
        res.expect("first write");
        // Then 32 MiB nobody reads: it fills both socket buffers and
        // waits, until the timeout drops it.
        let big = rng.bytes(32 << 20);
        let want_big = big.clone();
        let dropped = Rc::new(Cell::new(false));
        let tracked = Tracked {
            data: big.into_boxed_slice(),
            dropped: dropped.clone(),
        };
        let timed_out = wait_for(client.write_all_zc(tracked), Some(ms(100))).await;
        assert!(
            timed_out.is_err(),
            "a 32 MiB write to a peer that reads nothing finished"
        );
        if !on_epoll() {
            // Dropped, but the kernel still has the pages: the driver
            // must hold the buffer until the notification.
            assert!(
                !dropped.get(),
                "the buffer was freed while the kernel held it"
            );
        }
        // Memory reuse would show as wrong bytes in what the peer gets.
        let noise: Vec<Vec<u8>> = (0..64).map(|i| vec![i as u8; 1 << 20]).collect();
        let reader = read_all_on_thread(peer);
        drop(client);
        for _ in 0..100 {
            if dropped.get() {
                break;
            }
            sleep(ms(20)).await;
        }
        assert!(
            dropped.get(),
            "the dropped write's buffer was never released"
        );
        drop(noise);
        let got = ringloop::to_thread(move || reader.join().expect("reader"))
            .await
            .expect("to_thread")
            .expect("read_to_end");
        assert!(
            got.len() >= first.len(),
            "the reported write was lost: got {} bytes",
            got.len()
        );
        assert_same(&got[..first.len()], &first, "the reported write");
        let rest = &got[first.len()..];
        assert!(rest.len() <= want_big.len(), "more bytes than were written");
        assert_same(
            rest,
            &want_big[..rest.len()],
            "the dropped write's sent prefix",
        );
        assert_fds_back_to(baseline, "after the dropped write").await;
    });
}

#[test]
fn reset_peer_is_a_clear_error() {
    let _g = serial();
    run_bounded(ms(30_000), async move {
        let baseline = fd_count();
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = std_listener.local_addr().expect("addr");
        let client = TcpStream::connect(addr).await.expect("connect");
        let (peer, _) = std_listener.accept().expect("accept");
        drop(std_listener);
        common::reset(peer);
        let mut buf = vec![5u8; 1 << 20];
        let mut err = None;
        for _ in 0..100 {
            let (res, b) = client.write_all_zc(buf).await;
            buf = b;
            if let Err(e) = res {
                err = Some(e);
                break;
            }
            sleep(ms(10)).await;
        }
        let e = err.expect("writes to a reset peer kept succeeding");
        assert!(
            matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
            ),
            "unexpected error kind for a reset peer: {e:?}"
        );
        assert_eq!(buf.len(), 1 << 20, "the buffer comes back with the error");
        drop(client);
        assert_fds_back_to(baseline, "after the reset").await;
    });
}

#[test]
fn many_writes_and_dropped_writes_leave_no_fd() {
    let _g = serial();
    run_bounded(ms(30_000), async move {
        let baseline = fd_count();
        for round in 0..20 {
            let (client, server) = pair().await;
            // A zero-copy write ends when the peer has acknowledged the
            // bytes: the peer reads them meanwhile.
            let reader = spawn(async move {
                let (res, got) = server.read_exact(Vec::with_capacity(200 * 1024)).await;
                res.expect("read_exact");
                assert!(got.iter().all(|&b| b == round as u8), "wrong bytes");
                server
            });
            let (res, _) = client.write_all_zc(vec![round as u8; 200 * 1024]).await;
            res.expect("write_all_zc");
            let server = reader.await.expect("reader task");
            // A write that cannot finish (nobody reads 16 MiB), dropped.
            let stuck = wait_for(client.write_all_zc(vec![1u8; 16 << 20]), Some(ms(5))).await;
            assert!(
                stuck.is_err(),
                "16 MiB to a peer that reads nothing finished"
            );
            drop((client, server));
        }
        assert_fds_back_to(baseline, "after 20 connections with dropped writes").await;
    });
}
