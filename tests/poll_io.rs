//! The readiness path (`PollIo`): poll-based I/O on borrowed buffers, byte
//! exact both ways (vectored writes, a full send buffer), in order with the
//! owned-buffer reads it is mixed with (bytes kept by abandoned reads come
//! first, a read still in the kernel lands first), and cancellation that
//! loses nothing and leaks no fd. Runs on both backends
//! (`RINGLOOP_BACKEND=epoll cargo test --test poll_io`).

mod common;

use std::future::poll_fn;
use std::io::{self, IoSlice, Read, Write};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use common::{fd_count, ms, run_bounded, serial};
use futures_util::{AsyncReadExt, AsyncWriteExt};
use ringloop::io::{PollIo, ReadBuf};
use ringloop::net::{TcpListener, TcpStream, UnixStream};
use ringloop::{sleep, spawn, yield_now};

/// Byte `j` of a test stream.
fn byte(seed: u64, j: usize) -> u8 {
    let x = (j as u64)
        .wrapping_add(seed)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (x >> 56) as u8
}

fn bytes(seed: u64, from: usize, n: usize) -> Vec<u8> {
    (from..from + n).map(|j| byte(seed, j)).collect()
}

/// A connected pair: (client, server).
async fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, _) = listener.accept().await.unwrap();
    (client, server)
}

/// One `poll_read` into a fresh buffer: `None` while pending.
fn try_read(
    io: &mut PollIo<TcpStream>,
    cx: &mut std::task::Context<'_>,
) -> Option<io::Result<Vec<u8>>> {
    let mut storage = [MaybeUninit::<u8>::uninit(); 256];
    let mut buf = ReadBuf::uninit(&mut storage);
    match io.poll_read(cx, &mut buf) {
        Poll::Ready(Ok(())) => Some(Ok(buf.filled().to_vec())),
        Poll::Ready(Err(e)) => Some(Err(e)),
        Poll::Pending => None,
    }
}

/// Reads until end of stream.
async fn read_all(io: &mut PollIo<TcpStream>) -> io::Result<Vec<u8>> {
    let mut got = Vec::new();
    io.read_to_end(&mut got).await?;
    Ok(got)
}

const EACH_WAY: usize = 8 << 20;

async fn writer<S>(mut io: PollIo<S>, seed: u64) -> io::Result<usize> {
    let data = bytes(seed, 0, EACH_WAY);
    let mut off = 0;
    let mut k = 0usize;
    while off < data.len() {
        // Three slices of varying sizes, one of them empty.
        let s1 = (k * 7919 % 50_000 + 1).min(data.len() - off);
        let s2 = (k * 104_729 % 70_000).min(data.len() - off - s1);
        let parts = [
            IoSlice::new(&data[off..off + s1]),
            IoSlice::new(&[]),
            IoSlice::new(&data[off + s1..off + s1 + s2]),
        ];
        let n = io.write_vectored(&parts).await?;
        assert!(n > 0 && n <= s1 + s2);
        off += n;
        k += 1;
    }
    io.close().await?;
    Ok(k)
}

async fn reader<S>(mut io: PollIo<S>, seed: u64) -> io::Result<()> {
    let mut got = Vec::with_capacity(EACH_WAY);
    let mut buf = vec![0u8; 3001];
    loop {
        let n = io.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got.len(), EACH_WAY);
    assert!(got == bytes(seed, 0, EACH_WAY), "stream {seed} differs");
    Ok(())
}

/// 8 MiB each way through two pairs at once, written in uneven vectored
/// pieces (so the send buffer fills and writes wait for `POLLOUT`) and
/// read into odd-sized borrowed buffers: byte exact.
#[test]
fn eight_mib_each_way_byte_exact_with_vectored_writes() {
    run_bounded(Duration::from_secs(60), async {
        let (a, b) = tcp_pair().await;
        let (c, d) = UnixStream::pair().unwrap();
        let w1 = spawn(writer(a.into_poll_io(), 1));
        let r1 = spawn(reader(b.into_poll_io(), 1));
        let w2 = spawn(writer(c.into_poll_io(), 2));
        let r2 = spawn(reader(d.into_poll_io(), 2));
        let writes = w1.await.unwrap().unwrap() + w2.await.unwrap().unwrap();
        r1.await.unwrap().unwrap();
        r2.await.unwrap().unwrap();
        assert!(writes > 100, "{writes} writes");
    });
}

/// Bytes an owned read received after its future was dropped come before
/// the bytes the readiness path reads itself; and a read still in the
/// kernel when the `PollIo` starts lands first.
#[test]
fn kept_bytes_of_a_dropped_owned_read_come_first() {
    run_bounded(Duration::from_secs(10), async {
        for reap_first in [true, false] {
            let (client, server) = tcp_pair().await;
            let mut read = Box::pin(server.read(Vec::with_capacity(64)));
            assert!(futures_util::poll!(read.as_mut()).is_pending());
            yield_now().await; // the read is in the kernel
            let (res, _) = client.write_all(b"first,".to_vec()).await;
            res.unwrap();
            if reap_first {
                // The completion arrives; nobody polls it.
                sleep(ms(10)).await;
            }
            // Abandoned: in flight still (or landed with its bytes kept).
            drop(read);
            let mut io = server.into_poll_io();
            let (res, _) = client.write_all(b"second".to_vec()).await;
            res.unwrap();
            client.shutdown(std::net::Shutdown::Write).await.unwrap();
            assert_eq!(
                read_all(&mut io).await.unwrap(),
                b"first,second",
                "{reap_first}"
            );
        }
    });
}

/// Whether a waker was woken.
struct Flag(std::sync::atomic::AtomicBool);

impl futures_util::task::ArcWake for Flag {
    fn wake_by_ref(arc_self: &std::sync::Arc<Self>) {
        arc_self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A readiness read waiting for `POLLIN` is woken by bytes an owned read
/// keeps (they may be all there is: the owned read took the bytes its
/// poll was waiting for), and serves them.
#[test]
fn a_waiting_readiness_read_is_woken_by_kept_bytes() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    run_bounded(Duration::from_secs(10), async {
        for _ in 0..20 {
            let (client, server) = tcp_pair().await;
            let mut io = server.into_poll_io();
            // The readiness read arms its poll and waits, with a waker of
            // its own (as if in another task).
            let flag = Arc::new(Flag(AtomicBool::new(false)));
            let waker = futures_util::task::waker(flag.clone());
            let mut cx = std::task::Context::from_waker(&waker);
            assert!(try_read(&mut io, &mut cx).is_none(), "nothing was sent yet");
            yield_now().await; // the poll is in the kernel
            // An owned read through the stream takes the next bytes and is
            // abandoned after they arrived.
            let mut owned = Box::pin(io.get_ref().read(Vec::with_capacity(64)));
            assert!(futures_util::poll!(owned.as_mut()).is_pending());
            yield_now().await;
            let (res, _) = client.write_all(b"kept".to_vec()).await;
            res.unwrap();
            sleep(ms(5)).await;
            drop(owned);
            sleep(ms(1)).await;
            assert!(
                flag.0.load(Ordering::SeqCst),
                "the waiting readiness read was not woken"
            );
            let got = try_read(&mut io, &mut cx).expect("ready").unwrap();
            assert_eq!(got, b"kept");
        }
    });
}

/// A reset an abandoned owned read got reaches the readiness path.
#[test]
fn a_reset_kept_by_a_dropped_read_reaches_the_readiness_path() {
    run_bounded(Duration::from_secs(10), async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let mut read = Box::pin(server.read(Vec::with_capacity(16)));
        assert!(futures_util::poll!(read.as_mut()).is_pending());
        yield_now().await;
        common::reset(client);
        sleep(ms(10)).await;
        drop(read);
        let mut io = server.into_poll_io();
        let e = read_all(&mut io).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
    });
}

/// Dropping a read or write that waits for readiness loses nothing: the
/// owned reads after it get every byte, in order.
#[test]
fn a_dropped_readiness_wait_loses_nothing() {
    run_bounded(Duration::from_secs(10), async {
        let (client, server) = tcp_pair().await;
        let mut io = server.into_poll_io();
        {
            let mut buf = [0u8; 16];
            let mut read = io.read(&mut buf);
            assert!(futures_util::poll!(&mut read).is_pending());
        } // dropped with its POLL_ADD in flight
        let (res, _) = client.write_all(b"after the drop".to_vec()).await;
        res.unwrap();
        sleep(ms(5)).await;
        let server = io.into_inner();
        let (res, buf) = server.read_exact(Vec::with_capacity(14)).await;
        res.unwrap();
        assert_eq!(buf, b"after the drop");
    });
}

/// A `PollIo` dropped with polls armed in both directions, a thousand
/// times: no fd is left open.
#[test]
fn dropping_armed_poll_ios_leaks_no_fd() {
    let _serial = serial();
    run_bounded(Duration::from_secs(30), async {
        let baseline = fd_count();
        for _ in 0..200 {
            let (a, b) = UnixStream::pair().unwrap();
            let (mut a, b) = (a.into_poll_io(), b.into_poll_io());
            // Fill `a`'s send buffer so that its write waits for POLLOUT.
            let chunk = vec![7u8; 1 << 16];
            let mut full = false;
            for _ in 0..64 {
                let mut w = a.write(&chunk);
                match futures_util::poll!(&mut w) {
                    Poll::Ready(r) => {
                        r.unwrap();
                    }
                    Poll::Pending => {
                        full = true;
                        break;
                    }
                }
            }
            assert!(full, "the send buffer never filled");
            let mut b = b;
            let mut buf = [0u8; 1];
            // `b` has data; read one byte, then arm a read on `a`.
            b.read_exact(&mut buf).await.unwrap();
            let mut rbuf = [0u8; 8];
            let mut r = a.read(&mut rbuf);
            assert!(futures_util::poll!(&mut r).is_pending());
            drop(r);
            drop(a);
            drop(b);
        }
        for _ in 0..100 {
            if fd_count() == baseline {
                break;
            }
            sleep(ms(10)).await;
        }
        assert_eq!(fd_count(), baseline, "fds: {:?}", common::fd_list());
    });
}

/// Request/response in small pieces with a blocking peer on a thread, so
/// each read finds the socket drained and waits for the next edge (a
/// short read marks the stream drained: the wait starts without a
/// syscall, and the edge must still come).
async fn small_round_trips(rounds: u32) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_nodelay(true).unwrap();
        let mut buf = [0u8; 5];
        for i in 0..rounds {
            s.write_all(&i.to_le_bytes()).unwrap();
            s.read_exact(&mut buf).unwrap();
            assert_eq!(&buf[..4], &i.to_le_bytes());
            assert_eq!(buf[4], b'!');
        }
    });
    let (server, _) = listener.accept().await.unwrap();
    server.set_nodelay(true).unwrap();
    let mut io = server.into_poll_io();
    let mut req = [0u8; 4];
    for _ in 0..rounds {
        io.read_exact(&mut req).await.unwrap();
        let out = [req[0], req[1], req[2], req[3], b'!'];
        io.write_all(&out).await.unwrap();
    }
    ringloop::to_thread(move || peer.join().unwrap())
        .await
        .unwrap();
}

#[test]
fn many_small_round_trips_through_polls() {
    run_bounded(Duration::from_secs(30), small_round_trips(2000));
}

/// The epoll backend, forced (so this runs in the io_uring pass too): the
/// multishot read poll reports each edge after a drained read, and a write
/// that filled the send buffer resumes when the peer drains it.
#[test]
fn on_the_epoll_backend_drained_sockets_wake_on_the_next_edge() {
    let lp = ringloop::Builder::new()
        .backend(ringloop::Backend::Epoll)
        .build()
        .unwrap();
    lp.run_until_complete(async {
        small_round_trips(500).await;
        let (a, b) = UnixStream::pair().unwrap();
        let (mut a, mut b) = (a.into_poll_io(), b.into_poll_io());
        let data = bytes(3, 0, 4 << 20);
        let writer = spawn(async move {
            a.write_all(&data).await.unwrap();
            a.close().await.unwrap();
        });
        sleep(ms(20)).await; // the writer fills the buffer and waits
        let got = read_all_of(&mut b).await;
        assert!(got == bytes(3, 0, 4 << 20));
        writer.await.unwrap();
    })
    .unwrap();
}

async fn read_all_of<S>(io: &mut PollIo<S>) -> Vec<u8> {
    let mut got = Vec::new();
    io.read_to_end(&mut got).await.unwrap();
    got
}

/// The raw poll interface on a `Pin<&mut>`: `PollRead`/`PollWrite` as a
/// TLS stream or an adapter calls them.
#[test]
fn poll_traits_through_pin() {
    use ringloop::io::{PollRead, PollWrite};
    run_bounded(Duration::from_secs(10), async {
        let (a, b) = UnixStream::pair().unwrap();
        let (mut a, mut b) = (a.into_poll_io(), b.into_poll_io());
        assert!(a.is_write_vectored());
        let n = poll_fn(|cx| Pin::new(&mut a).poll_write(cx, b"pin"))
            .await
            .unwrap();
        assert_eq!(n, 3);
        poll_fn(|cx| Pin::new(&mut a).poll_shutdown(cx))
            .await
            .unwrap();
        let mut storage = [0u8; 8];
        let mut buf = ReadBuf::new(&mut storage);
        poll_fn(|cx| Pin::new(&mut b).poll_read(cx, &mut buf))
            .await
            .unwrap();
        assert_eq!(buf.filled(), b"pin");
        let mut buf = ReadBuf::new(&mut storage);
        poll_fn(|cx| Pin::new(&mut b).poll_read(cx, &mut buf))
            .await
            .unwrap();
        assert!(buf.filled().is_empty(), "end of stream");
    });
}

/// A stream taken back from a `PollIo` whose read was waiting can be
/// handed off as a std socket once the cancelled wait has completed (the
/// next loop turn), with nothing lost: bytes sent meanwhile are there.
#[test]
fn a_stream_taken_back_from_a_waiting_poll_io_hands_off_after_a_turn() {
    run_bounded(Duration::from_secs(10), async {
        let (client, server) = tcp_pair().await;
        let mut io = server.into_poll_io();
        {
            let mut buf = [0u8; 8];
            let mut read = io.read(&mut buf);
            assert!(futures_util::poll!(&mut read).is_pending());
        }
        let mut stream = io.into_inner();
        let (res, _) = client.write_all(b"handed".to_vec()).await;
        res.unwrap();
        let std_stream = loop {
            match stream.into_std() {
                Ok(s) => break s,
                Err(e) => {
                    stream = e.into_inner();
                    yield_now().await;
                }
            }
        };
        let got = ringloop::to_thread(move || {
            let mut s = std_stream;
            s.set_nonblocking(false).unwrap();
            let mut buf = [0u8; 6];
            s.read_exact(&mut buf).map(|()| buf)
        })
        .await
        .unwrap()
        .unwrap();
        assert_eq!(&got, b"handed");
    });
}
