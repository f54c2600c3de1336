//! Cancelling TCP operations: dropped reads lose and duplicate nothing,
//! dropped accepts and connects leak no fd and strand no connection,
//! connect timeouts and refusals on 127.0.0.1, and `gather` under a timeout.
//!
//! The tests count the process's fds, so they run one at a time.

mod common;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::pin::Pin;
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::{XorShift, fd_count, fd_list, ms, run_bounded, serial, us};
use ringloop::net::{ListenOptions, TcpListener, TcpStream};
use ringloop::{Task, TaskHandle, gather, shield, sleep, spawn, wait_for, yield_now};

/// A connected pair: (client, server).
async fn pair(listener: &TcpListener) -> (TcpStream, TcpStream) {
    let addr = listener.local_addr().expect("local_addr");
    let client = TcpStream::connect(addr).await.expect("connect");
    let (server, _) = listener.accept().await.expect("accept");
    (client, server)
}

/// Lets ring closes and orphan completions land, then waits (up to 2 s) for
/// the fd count to come back to `baseline`; returns the final count.
async fn settle_fds(baseline: usize) -> usize {
    sleep(ms(20)).await;
    for _ in 0..100 {
        if fd_count() == baseline {
            break;
        }
        sleep(ms(20)).await;
    }
    fd_count()
}

async fn assert_fds_back_to(baseline: usize, what: &str) {
    let now = settle_fds(baseline).await;
    assert_eq!(
        now,
        baseline,
        "{what}: fd count did not return to the baseline; open fds: {:?}",
        fd_list()
    );
}

/// Byte `j` of the test stream: little-endian u32 counters 0, 1, 2, ...
fn counter_byte(j: usize) -> u8 {
    ((j / 4) as u32).to_le_bytes()[j % 4]
}

fn counter_bytes(from: usize, n: usize) -> Vec<u8> {
    (from..from + n).map(counter_byte).collect()
}

/// Panics with the first difference between `got` and `want`.
fn assert_same_stream(got: &[u8], want: &[u8], what: &str) {
    if let Some(i) = got.iter().zip(want).position(|(a, b)| a != b) {
        let lo = i.saturating_sub(8);
        panic!(
            "{what}: first difference at byte {i} of {} received / {} sent: \
             got {:?}, want {:?}",
            got.len(),
            want.len(),
            &got[lo..(i + 8).min(got.len())],
            &want[lo..(i + 8).min(want.len())],
        );
    }
    assert_eq!(
        got.len(),
        want.len(),
        "{what}: received {} bytes, sent {} (the common prefix matches)",
        got.len(),
        want.len()
    );
}

/// A read cancelled by a timeout, then the peer writes: the next read gets
/// exactly those bytes, none lost and none twice.
#[test]
fn read_cancelled_by_timeout_then_next_read_gets_the_bytes() {
    let _serial = serial();
    run_bounded(Duration::from_secs(60), async {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let (client, server) = pair(&listener).await;
        for i in 0..300 {
            // Alternate a zero timeout (polled once) and 1 ms (in the kernel).
            let t = if i % 2 == 0 { Duration::ZERO } else { ms(1) };
            let r = wait_for(server.read(Vec::with_capacity(64)), Some(t)).await;
            assert!(
                r.is_err(),
                "round {i}: the read finished though nothing was sent: {:?}",
                r.map(|(res, b)| (res.ok(), b))
            );
            let (res, _) = client.write_all(b"hello world".to_vec()).await;
            res.expect("write");
            let (res, b) = server.read(Vec::with_capacity(64)).await;
            assert_eq!(res.expect("read"), 11, "round {i}");
            assert_eq!(b, b"hello world", "round {i}");
        }
        // Nothing more is pending.
        let r = wait_for(server.read(Vec::with_capacity(64)), Some(ms(30))).await;
        assert!(r.is_err(), "stray bytes after the last round");
    });
}

/// Two tasks read one socket while an abandoned read is still in the
/// kernel: both wait for it to land, and both must be woken then (one
/// waker slot woke only the last to wait, and the other hung). Between
/// them they get every byte, once.
#[test]
fn two_readers_waiting_behind_an_abandoned_read_are_both_woken() {
    let _serial = serial();
    run_bounded(Duration::from_secs(60), async {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let (client, server) = pair(&listener).await;
        let server = Rc::new(server);
        for round in 0..50 {
            // A read in the kernel, abandoned: it stays in flight until its
            // cancellation completes.
            let r = wait_for(server.read(Vec::with_capacity(64)), Some(ms(1))).await;
            assert!(r.is_err(), "round {round}: nothing was sent");
            let readers: Vec<_> = (0..2)
                .map(|_| {
                    let server = server.clone();
                    spawn(async move {
                        let (res, buf) = server.read(Vec::with_capacity(8)).await;
                        res.expect("read");
                        buf
                    })
                })
                .collect();
            // Both have polled (and wait behind the abandoned read, or
            // already read) before any byte is sent.
            yield_now().await;
            let (res, _) = client.write_all(b"ab".to_vec()).await;
            res.expect("write");
            sleep(ms(5)).await;
            let (res, _) = client.write_all(b"cd".to_vec()).await;
            res.expect("write");
            let mut got = Vec::new();
            for r in readers {
                let buf = wait_for(r, Some(Duration::from_secs(5)))
                    .await
                    .unwrap_or_else(|_| panic!("round {round}: a reader was never woken"))
                    .expect("reader task");
                got.extend_from_slice(&buf);
            }
            // (A reader that took only part of a write leaves the rest.)
            while got.len() < 4 {
                let (res, buf) = server.read(Vec::with_capacity(8)).await;
                assert!(res.expect("read") > 0, "round {round}: early end");
                got.extend_from_slice(&buf);
            }
            got.sort_unstable();
            assert_eq!(got, b"abcd", "round {round}");
        }
    });
}

/// `read_exact` dropped at each stage — never polled, with its second read
/// in the kernel (cancelled), and after that read's completion arrived but
/// before it was polled — loses none of the bytes it had already received:
/// the next `read_exact` gets the whole message.
#[test]
fn read_exact_dropped_at_every_stage_loses_nothing() {
    let _serial = serial();
    run_bounded(Duration::from_secs(60), async {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let (client, server) = pair(&listener).await;
        let base = fd_count();
        for stage in 0..3 {
            let body = counter_bytes(stage * 1000, 1000);
            let (res, _) = client.write_all(body[..300].to_vec()).await;
            res.expect("write");
            {
                let mut fut = std::pin::pin!(server.read_exact(Vec::with_capacity(1000)));
                if stage > 0 {
                    // Poll until the first 300 bytes are in and the next
                    // read waits in the kernel.
                    for _ in 0..10 {
                        let polled = std::future::poll_fn(|cx| {
                            std::task::Poll::Ready(fut.as_mut().poll(cx).is_ready())
                        })
                        .await;
                        assert!(!polled, "stage {stage}: read_exact finished early");
                        // A sleep, not a yield: it takes a driver turn.
                        sleep(ms(1)).await;
                    }
                }
                if stage == 2 {
                    // The in-flight read completes; its CQE is reaped
                    // while nobody polls the future.
                    let (res, _) = client.write_all(body[300..500].to_vec()).await;
                    res.expect("write");
                    sleep(ms(5)).await;
                }
                // Dropped here.
            }
            let from = if stage == 2 { 500 } else { 300 };
            let (res, _) = client.write_all(body[from..].to_vec()).await;
            res.expect("write");
            let (res, got) = wait_for(server.read_exact(Vec::with_capacity(1000)), Some(ms(2000)))
                .await
                .unwrap_or_else(|_| panic!("stage {stage}: bytes lost, read_exact waits"));
            res.expect("read_exact");
            assert_same_stream(&got, &body, &format!("stage {stage}"));
        }
        let r = wait_for(server.read(Vec::with_capacity(64)), Some(ms(30))).await;
        assert!(r.is_err(), "stray bytes after the last stage");
        drop((client, server, listener));
        assert_fds_back_to(base.saturating_sub(3), "read_exact drops").await;
    });
}

/// Reads under random 0–2 ms timeouts race a writer sending a counter
/// stream in random chunks with random pauses: what is received is exactly
/// what was sent.
#[test]
fn read_timeouts_racing_writes_lose_and_duplicate_nothing() {
    let _serial = serial();
    run_bounded(Duration::from_secs(120), async {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut total_timeouts = 0;
        for seed in 0..3u64 {
            const TOTAL: usize = 512 * 1024;
            let (client, server) = pair(&listener).await;
            let writer = spawn(async move {
                let mut rng = XorShift::new(100 + seed);
                let mut off = 0;
                while off < TOTAL {
                    let n = rng.range_usize(1, 3000).min(TOTAL - off);
                    let (res, _) = client.write_all(counter_bytes(off, n)).await;
                    res.expect("write");
                    off += n;
                    match rng.range(0, 3) {
                        0 => {}
                        1 => yield_now().await,
                        _ => sleep(us(rng.range(0, 1000))).await,
                    }
                }
                client
                    .shutdown(Shutdown::Write)
                    .await
                    .expect("shutdown(Write)");
                off
            });
            let mut rng = XorShift::new(200 + seed);
            let mut got = Vec::with_capacity(TOTAL);
            let mut timeouts = 0;
            loop {
                let cap = rng.range_usize(1, 4096);
                let t = us(rng.range(0, 2000));
                match wait_for(server.read(Vec::with_capacity(cap)), Some(t)).await {
                    Ok((res, b)) => {
                        let n = res.expect("read");
                        assert_eq!(b.len(), n);
                        assert!(n <= cap, "read {n} bytes into a {cap}-byte buffer");
                        if n == 0 {
                            break;
                        }
                        got.extend_from_slice(&b);
                    }
                    Err(_) => timeouts += 1,
                }
            }
            assert_eq!(writer.await.expect("writer"), TOTAL);
            assert_same_stream(&got, &counter_bytes(0, TOTAL), "counter stream");
            total_timeouts += timeouts;
        }
        eprintln!("{total_timeouts} reads timed out");
        // The race was exercised: many reads were cancelled.
        assert!(
            total_timeouts >= 20,
            "only {total_timeouts} reads timed out"
        );
    });
}

/// Two tasks each read their own connection and, on success, cancel the
/// other (first one wins, as in happy eyeballs). Both reads complete in the
/// same loop turn, so the loser is cancelled while its read has already
/// completed: its bytes must still reach the next read.
#[test]
fn read_completed_then_task_cancelled_keeps_the_bytes() {
    let _serial = serial();
    run_bounded(Duration::from_secs(60), async {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("local_addr");
        for round in 0..20 {
            // Blocking std clients: their writes land while the loop is not
            // looking, so both reads complete in the same reap.
            let mut c1 = std::net::TcpStream::connect(addr).expect("connect 1");
            let (s1, _) = listener.accept().await.expect("accept 1");
            let mut c2 = std::net::TcpStream::connect(addr).expect("connect 2");
            let (s2, _) = listener.accept().await.expect("accept 2");
            let (s1, s2) = (Rc::new(s1), Rc::new(s2));
            let other_of_1: Rc<RefCell<Option<TaskHandle>>> = Rc::default();
            let other_of_2: Rc<RefCell<Option<TaskHandle>>> = Rc::default();
            let reader = |s: Rc<TcpStream>, other: Rc<RefCell<Option<TaskHandle>>>| async move {
                let (res, b) = s.read(Vec::with_capacity(64)).await;
                if let Some(h) = other.borrow().as_ref() {
                    h.cancel();
                }
                (res.expect("read"), b)
            };
            let t1 = spawn(reader(s1.clone(), other_of_1.clone()));
            let t2 = spawn(reader(s2.clone(), other_of_2.clone()));
            *other_of_1.borrow_mut() = Some(t2.handle());
            *other_of_2.borrow_mut() = Some(t1.handle());
            // Both reads reach the kernel.
            sleep(ms(5)).await;
            c1.write_all(b"first").expect("std write 1");
            c2.write_all(b"second").expect("std write 2");
            sleep(ms(20)).await;
            let r1 = t1.await;
            let r2 = t2.await;
            for (i, (r, s, want)) in [(r1, &s1, &b"first"[..]), (r2, &s2, &b"second"[..])]
                .into_iter()
                .enumerate()
            {
                match r {
                    Ok((n, b)) => {
                        assert_eq!(&b[..n], want, "round {round}: task {} read", i + 1);
                    }
                    Err(e) => {
                        assert!(e.is_cancelled(), "round {round}: {e}");
                        // The cancelled task's bytes go to the next read.
                        let next = wait_for(s.read(Vec::with_capacity(64)), Some(ms(2000))).await;
                        let (res, b) = next.unwrap_or_else(|_| {
                            panic!(
                                "round {round}: the bytes {:?} sent to cancelled task {} \
                                 were lost (the next read got nothing in 2 s)",
                                String::from_utf8_lossy(want),
                                i + 1
                            )
                        });
                        assert_eq!(res.expect("read"), want.len(), "round {round}");
                        assert_eq!(b, want, "round {round}");
                    }
                }
            }
        }
    });
}

#[derive(Debug, PartialEq, Eq)]
enum ClientOutcome {
    /// Got the server's "served" then EOF.
    Served,
    /// EOF without data, or reset: accepted by an abandoned accept and closed.
    Closed,
    /// Neither within the deadline: the connection was stranded.
    Hung(Vec<u8>),
    /// Unexpected bytes or error.
    Other(String),
}

async fn accept_race_client(addr: SocketAddr, seed: u64, done: Rc<Cell<usize>>) -> ClientOutcome {
    let mut rng = XorShift::new(seed);
    sleep(us(rng.range(0, 200_000))).await;
    let outcome = async {
        let s = match TcpStream::connect(addr).await {
            Ok(s) => s,
            Err(e) => return ClientOutcome::Other(format!("connect: {e}")),
        };
        let mut got = Vec::new();
        loop {
            match wait_for(
                s.read(Vec::with_capacity(64)),
                Some(Duration::from_secs(10)),
            )
            .await
            {
                Err(_) => return ClientOutcome::Hung(got),
                Ok((Ok(0), _)) if got.is_empty() => return ClientOutcome::Closed,
                Ok((Ok(0), _)) if got == b"served" => return ClientOutcome::Served,
                Ok((Ok(0), _)) => return ClientOutcome::Other(format!("got {got:?}")),
                Ok((Ok(_), b)) => got.extend_from_slice(&b),
                Ok((Err(e), _)) if e.kind() == io::ErrorKind::ConnectionReset => {
                    return ClientOutcome::Closed;
                }
                Ok((Err(e), _)) => return ClientOutcome::Other(format!("read: {e}")),
            }
        }
    }
    .await;
    done.set(done.get() + 1);
    outcome
}

/// Accepts dropped by random 0–2 ms timeouts while 200 clients connect
/// over 200 ms:
/// every client is served or sees EOF/reset, and no fd is left behind.
#[test]
fn accepts_dropped_by_timeouts_strand_nothing_and_leak_no_fd() {
    let _serial = serial();
    run_bounded(Duration::from_secs(120), async {
        const CLIENTS: usize = 200;
        let baseline = settle_fds(fd_count()).await;
        {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            let addr = listener.local_addr().expect("local_addr");
            let done = Rc::new(Cell::new(0));
            let clients: Vec<Task<ClientOutcome>> = (0..CLIENTS)
                .map(|i| spawn(accept_race_client(addr, i as u64, done.clone())))
                .collect();
            let mut rng = XorShift::new(99);
            let mut served = 0;
            let mut timeouts = 0;
            let mut servers = Vec::new();
            while done.get() < CLIENTS {
                // A zero timeout drops the accept before it reaches the
                // kernel, where it still takes a pending connection.
                let t = match rng.range(0, 2) {
                    0 => Duration::ZERO,
                    _ => us(rng.range(1, 2000)),
                };
                match wait_for(listener.accept(), Some(t)).await {
                    Ok(Ok((s, _))) => {
                        served += 1;
                        servers.push(spawn(async move {
                            let (res, _) = s.write_all(b"served".to_vec()).await;
                            res
                        }));
                    }
                    Ok(Err(e)) => panic!("accept failed: {e}"),
                    Err(_) => timeouts += 1,
                }
            }
            let mut outcomes = Vec::new();
            for c in clients {
                outcomes.push(c.await.expect("client task"));
            }
            for s in servers {
                // A client may already be gone; only the bytes it saw count.
                let _ = s.await.expect("server task");
            }
            let bad: Vec<_> = outcomes
                .iter()
                .enumerate()
                .filter(|(_, o)| !matches!(o, ClientOutcome::Served | ClientOutcome::Closed))
                .collect();
            assert!(bad.is_empty(), "clients neither served nor closed: {bad:?}");
            let n_served = outcomes
                .iter()
                .filter(|o| **o == ClientOutcome::Served)
                .count();
            eprintln!(
                "{n_served} clients served, {} closed by dropped accepts; {timeouts} accepts timed out",
                CLIENTS - n_served
            );
            assert_eq!(n_served, served, "served clients vs accepted connections");
            assert!(timeouts > 0, "no accept was ever dropped");
        }
        assert_fds_back_to(baseline, "after dropped accepts").await;
    });
}

/// Two tasks accept on two listeners and each cancels the other on success.
/// Both connections arrive in the same loop turn, so the loser is cancelled
/// after its accept completed: that connection must be closed (the client
/// sees EOF), not leaked.
#[test]
fn accept_completed_then_task_cancelled_closes_the_connection() {
    let _serial = serial();
    run_bounded(Duration::from_secs(60), async {
        let baseline = settle_fds(fd_count()).await;
        for round in 0..10 {
            let l1 = Rc::new(TcpListener::bind("127.0.0.1:0").expect("bind 1"));
            let l2 = Rc::new(TcpListener::bind("127.0.0.1:0").expect("bind 2"));
            let other_of_1: Rc<RefCell<Option<TaskHandle>>> = Rc::default();
            let other_of_2: Rc<RefCell<Option<TaskHandle>>> = Rc::default();
            let acceptor = |l: Rc<TcpListener>, other: Rc<RefCell<Option<TaskHandle>>>| async move {
                let r = l.accept().await;
                if let Some(h) = other.borrow().as_ref() {
                    h.cancel();
                }
                let (s, _) = r.expect("accept");
                let (res, _) = s.write_all(b"served".to_vec()).await;
                res.expect("write");
            };
            let t1 = spawn(acceptor(l1.clone(), other_of_1.clone()));
            let t2 = spawn(acceptor(l2.clone(), other_of_2.clone()));
            *other_of_1.borrow_mut() = Some(t2.handle());
            *other_of_2.borrow_mut() = Some(t1.handle());
            sleep(ms(5)).await;
            // Blocking connects: both handshakes finish while the loop is
            // not looking, so both accepts complete in the same reap.
            let mut c1 =
                std::net::TcpStream::connect(l1.local_addr().expect("addr 1")).expect("connect 1");
            let mut c2 =
                std::net::TcpStream::connect(l2.local_addr().expect("addr 2")).expect("connect 2");
            sleep(ms(20)).await;
            let r1 = t1.await;
            let r2 = t2.await;
            assert!(
                r1.is_ok() != r2.is_ok(),
                "round {round}: exactly one acceptor wins: {r1:?} {r2:?}"
            );
            drop((l1, l2));
            sleep(ms(20)).await;
            for (i, (r, c)) in [(r1, &mut c1), (r2, &mut c2)].into_iter().enumerate() {
                c.set_read_timeout(Some(Duration::from_secs(2)))
                    .expect("set_read_timeout");
                let mut got = Vec::new();
                let res = c.read_to_end(&mut got);
                let want: &[u8] = if r.is_ok() { b"served" } else { b"" };
                match res {
                    Ok(_) => assert_eq!(got, want, "round {round}: client {}", i + 1),
                    Err(e) if e.kind() == io::ErrorKind::ConnectionReset && r.is_err() => {}
                    Err(e) => panic!(
                        "round {round}: client {} (its acceptor was {}) saw neither EOF \
                         nor reset: {e}; the connection accepted for a cancelled task \
                         was leaked, not closed",
                        i + 1,
                        if r.is_ok() { "the winner" } else { "cancelled" }
                    ),
                }
            }
        }
        assert_fds_back_to(baseline, "after cancelled accept tasks").await;
    });
}

/// Connects dropped in flight (zero and tiny timeouts, and connects stuck
/// in SYN_SENT) leak no fd.
#[test]
fn connects_dropped_in_flight_leak_no_fd() {
    let _serial = serial();
    run_bounded(Duration::from_secs(120), async {
        let baseline = settle_fds(fd_count()).await;
        {
            let listener = Rc::new(TcpListener::bind("127.0.0.1:0").expect("bind"));
            let addr = listener.local_addr().expect("local_addr");
            // Drain the backlog so it never fills.
            let l = listener.clone();
            let acceptor = spawn(async move {
                while let Ok((s, _)) = l.accept().await {
                    drop(s);
                }
            });
            let mut rng = XorShift::new(5);
            let (mut dropped, mut connected) = (0, 0);
            for i in 0..1500 {
                let t = match i % 3 {
                    0 => Duration::ZERO,
                    1 => us(rng.range(1, 50)),
                    _ => us(rng.range(50, 500)),
                };
                let r = if i % 2 == 0 {
                    wait_for(TcpStream::connect(addr), Some(t)).await
                } else {
                    wait_for(TcpStream::connect_timeout(addr, ms(5000)), Some(t)).await
                };
                match r {
                    Ok(Ok(s)) => {
                        connected += 1;
                        drop(s);
                    }
                    Ok(Err(e)) => panic!("connect {i} failed: {e}"),
                    Err(_) => dropped += 1,
                }
            }
            eprintln!("{dropped} connects dropped, {connected} finished in time");
            assert!(dropped > 0, "no connect was dropped");
            assert!(connected > 0, "no connect finished in time");
            drop(acceptor);
            drop(listener);

            // Connects stuck in the kernel: a listener with backlog 0 and
            // one queued connection drops further SYNs, so these connects
            // are in flight (SYN_SENT) when their futures are dropped.
            let full = TcpListener::bind_with(
                "127.0.0.1:0",
                ListenOptions {
                    backlog: 0,
                    ..ListenOptions::default()
                },
            )
            .expect("bind backlog 0");
            let faddr = full.local_addr().expect("local_addr");
            let filler = TcpStream::connect(faddr).await.expect("filler connect");
            for i in 0..100 {
                let t = us(rng.range(500, 3000));
                let r = if i % 2 == 0 {
                    wait_for(TcpStream::connect(faddr), Some(t)).await
                } else {
                    wait_for(TcpStream::connect_timeout(faddr, ms(5000)), Some(t)).await
                };
                assert!(
                    r.is_err(),
                    "connect {i} to a full accept queue finished: {:?}",
                    r.map(|c| c.map(|s| s.local_addr().ok()))
                );
            }
            drop(filler);
            drop(full);
        }
        assert_fds_back_to(baseline, "after dropped connects").await;
    });
}

/// `connect_timeout` to a listening 127.0.0.1 port succeeds; connecting to a
/// 127.0.0.1 port nobody listens on is refused at once; a connect whose SYN
/// the listener drops (its accept queue is full) times out.
#[test]
fn connect_timeout_local_refused_and_timed_out() {
    let _serial = serial();
    run_bounded(Duration::from_secs(60), async {
        let baseline = settle_fds(fd_count()).await;
        {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            let addr = listener.local_addr().expect("local_addr");
            let c = TcpStream::connect_timeout(addr, Duration::from_secs(5))
                .await
                .expect("connect_timeout to a listening port");
            let (s, peer) = listener.accept().await.expect("accept");
            assert_eq!(peer, c.local_addr().expect("local_addr"));
            assert_eq!(c.peer_addr().expect("peer_addr"), addr);
            let (res, _) = c.write_all(b"x".to_vec()).await;
            res.expect("write");
            let (res, b) = s.read_exact(Vec::with_capacity(1)).await;
            res.expect("read");
            assert_eq!(b, b"x");

            // A port held by a connected (not listening) socket: nobody
            // listens there, and nobody else can bind it meanwhile.
            let dead = c.local_addr().expect("local_addr");
            let t0 = Instant::now();
            let e = TcpStream::connect(dead)
                .await
                .expect_err("connect to a port nobody listens on");
            assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}");
            let e2 = TcpStream::connect_timeout(dead, Duration::from_secs(5))
                .await
                .expect_err("connect_timeout to a port nobody listens on");
            assert_eq!(e2.kind(), io::ErrorKind::ConnectionRefused, "{e2}");
            assert!(
                t0.elapsed() < Duration::from_secs(2),
                "refusals took {:?}",
                t0.elapsed()
            );

            // Backlog 0: one connection fills the accept queue and further
            // SYNs are dropped, so connect_timeout's deadline passes.
            let full = TcpListener::bind_with(
                "127.0.0.1:0",
                ListenOptions {
                    backlog: 0,
                    ..ListenOptions::default()
                },
            )
            .expect("bind backlog 0");
            let faddr = full.local_addr().expect("local_addr");
            let mut fillers = Vec::new();
            let mut timed_out = None;
            for _ in 0..8 {
                let t0 = Instant::now();
                match TcpStream::connect_timeout(faddr, ms(300)).await {
                    Ok(s) => fillers.push(s),
                    Err(e) => {
                        timed_out = Some((e, t0.elapsed()));
                        break;
                    }
                }
            }
            let (e, took) = timed_out.expect("a connect to a full accept queue timed out");
            assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
            assert!(
                took >= ms(250) && took < Duration::from_secs(5),
                "connect_timeout(300 ms) took {took:?}"
            );
            assert!(!fillers.is_empty(), "the first connect fills the queue");
        }
        assert_fds_back_to(baseline, "after connect_timeout").await;
    });
}

type Child = Pin<Box<dyn Future<Output = ()>>>;

/// `gather` over reads and writes on four connections under random 0–2 ms
/// timeouts: reads are cancelled with the gather (their bytes must reach
/// later reads), writes are shielded (so what was sent is known). Every
/// connection's received stream equals its sent stream. Returns (rounds,
/// timeouts).
async fn gather_under_timeout(listener: &TcpListener, seed: u64) -> (usize, usize) {
    const CONNS: usize = 4;
    const TOTAL: usize = 256 * 1024;
    // Even connections: client -> server; odd: server -> client.
    let mut writers = Vec::new();
    let mut readers = Vec::new();
    for i in 0..CONNS {
        let (c, s) = pair(listener).await;
        let (w, r) = if i % 2 == 0 { (c, s) } else { (s, c) };
        writers.push(Rc::new(w));
        readers.push(Rc::new(r));
    }
    let sent: Vec<Rc<RefCell<Vec<u8>>>> = (0..CONNS).map(|_| Rc::default()).collect();
    let received: Vec<Rc<RefCell<Vec<u8>>>> = (0..CONNS).map(|_| Rc::default()).collect();
    let busy: Vec<Rc<Cell<bool>>> = (0..CONNS).map(|_| Rc::default()).collect();
    let errors: Rc<RefCell<Vec<String>>> = Rc::default();
    let data: Vec<Vec<u8>> = (0..CONNS)
        .map(|i| XorShift::new(seed * 100 + i as u64).bytes(TOTAL))
        .collect();
    let mut queued = [0usize; CONNS];
    let mut rng = XorShift::new(1234 + seed);
    let (mut rounds, mut timeouts) = (0, 0);
    loop {
        let all_written = (0..CONNS).all(|i| queued[i] == TOTAL && !busy[i].get());
        if all_written {
            break;
        }
        rounds += 1;
        assert!(rounds < 200_000, "no progress");
        let mut children: Vec<Child> = Vec::new();
        for i in 0..CONNS {
            // Some rounds leave a connection without a write, so its
            // read has to wait and may be cut off by the timeout.
            if queued[i] < TOTAL && !busy[i].get() && rng.range(0, 1) == 0 {
                let n = rng.range_usize(1, 4096).min(TOTAL - queued[i]);
                let chunk = data[i][queued[i]..queued[i] + n].to_vec();
                queued[i] += n;
                let (w, sent, b, errs) = (
                    writers[i].clone(),
                    sent[i].clone(),
                    busy[i].clone(),
                    errors.clone(),
                );
                b.set(true);
                // Spawned now, not when the child first runs: a gather
                // dropped before its children start cannot lose it.
                let write = shield(spawn(async move {
                    let (res, chunk) = w.write_all(chunk).await;
                    match res {
                        Ok(()) => sent.borrow_mut().extend_from_slice(&chunk),
                        Err(e) => errs.borrow_mut().push(format!("write: {e}")),
                    }
                    b.set(false);
                }));
                children.push(Box::pin(async move {
                    let _ = write.await;
                }));
            }
            let cap = rng.range_usize(1, 4096);
            let (r, recv, errs) = (readers[i].clone(), received[i].clone(), errors.clone());
            children.push(Box::pin(async move {
                let (res, b) = r.read(Vec::with_capacity(cap)).await;
                match res {
                    Ok(n) => recv.borrow_mut().extend_from_slice(&b[..n]),
                    Err(e) => errs.borrow_mut().push(format!("read: {e}")),
                }
            }));
        }
        let t = match rng.range(0, 7) {
            0 => Duration::ZERO,
            _ => us(rng.range(1, 2000)),
        };
        match wait_for(gather(children), Some(t)).await {
            Ok(r) => {
                r.expect("a gather child failed");
            }
            Err(_) => timeouts += 1,
        }
        assert!(errors.borrow().is_empty(), "{:?}", errors.borrow());
    }
    // Writers done: half-close them and drain every reader to EOF.
    for w in &writers {
        w.shutdown(Shutdown::Write).await.expect("shutdown(Write)");
    }
    for (i, r) in readers.iter().enumerate() {
        loop {
            let (res, b) = r.read(Vec::with_capacity(16 * 1024)).await;
            if res.expect("drain read") == 0 {
                break;
            }
            received[i].borrow_mut().extend_from_slice(&b);
        }
    }
    for i in 0..CONNS {
        let sent = sent[i].borrow();
        assert_eq!(sent.len(), TOTAL, "conn {i}: bytes written");
        assert!(*sent == data[i], "conn {i}: the writes went out of order");
        assert_same_stream(
            &received[i].borrow(),
            &sent,
            &format!("seed {seed}, conn {i}"),
        );
    }
    (rounds, timeouts)
}

#[test]
fn gather_under_timeout_loses_and_duplicates_nothing() {
    let _serial = serial();
    run_bounded(Duration::from_secs(120), async {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let (mut rounds, mut timeouts) = (0, 0);
        for seed in 0..6 {
            let (r, t) = gather_under_timeout(&listener, seed).await;
            rounds += r;
            timeouts += t;
        }
        eprintln!("{rounds} gather rounds, {timeouts} timed out");
        assert!(
            timeouts >= 100,
            "only {timeouts} of {rounds} gathers timed out"
        );
    });
}

/// ST8 below the streams layer: a read whose future was dropped after the
/// kernel failed it with the peer's reset (the completion arrived, nobody
/// polled it) hands that reset to the next read; it is not turned into a
/// quiet end-of-stream. Vectored reads likewise.
#[test]
fn st8_a_reset_taken_by_a_dropped_read_reaches_the_next_read() {
    let _serial = serial();
    run_bounded(Duration::from_secs(10), async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        for vectored in [false, true] {
            let client = std::net::TcpStream::connect(addr).unwrap();
            let (server, _) = listener.accept().await.unwrap();
            let mut read: Pin<Box<dyn Future<Output = io::Result<usize>>>> = if vectored {
                Box::pin(async {
                    let (res, _) = server
                        .read_vectored(vec![Vec::with_capacity(8), Vec::with_capacity(8)])
                        .await;
                    res
                })
            } else {
                Box::pin(async { server.read(Vec::with_capacity(16)).await.0 })
            };
            // Submit the read, let the reset fail it in the kernel, and reap
            // that completion without polling the read again.
            assert!(futures_util::poll!(read.as_mut()).is_pending());
            yield_now().await;
            common::reset(client);
            sleep(ms(10)).await;
            drop(read);
            let (res, _) = server.read(Vec::with_capacity(16)).await;
            assert_eq!(
                res.map_err(|e| e.kind()),
                Err(io::ErrorKind::ConnectionReset),
                "vectored: {vectored}"
            );
        }
    });
}
