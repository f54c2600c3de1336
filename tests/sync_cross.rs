//! The cross-thread channel (`ringloop::sync::cross`): loops on two threads,
//! many producer threads, back-pressure, closing from either side, dropped
//! `send`/`recv` futures, the blocking forms and the `Stream` impl.

mod common;

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use common::{ms, run_bounded};
use futures_util::StreamExt;
use ringloop::sync::cross::{self, CapacityError, SendError, TryRecvError, TrySendError};
use ringloop::{spawn, yield_now};

const LIMIT: Duration = Duration::from_secs(60);

fn noop_cx() -> Context<'static> {
    Context::from_waker(Waker::noop())
}

/// A value that counts its drops.
struct Counted(u32, Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.1.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn l10_two_loops_on_two_threads_ping_pong_100k_in_order() {
    const N: u64 = 100_000;
    let (ping_tx, mut ping_rx) = cross::channel::<u64>(1).unwrap();
    let (pong_tx, mut pong_rx) = cross::channel::<u64>(1).unwrap();
    let ponger = thread::spawn(move || {
        run_bounded(LIMIT, async move {
            let mut expected = 0;
            while let Some(n) = ping_rx.recv().await {
                assert_eq!(n, expected);
                expected += 1;
                pong_tx.send(n * 2).await.unwrap();
            }
            expected
        })
    });
    run_bounded(LIMIT, async move {
        for i in 0..N {
            ping_tx.send(i).await.unwrap();
            assert_eq!(pong_rx.recv().await, Some(i * 2));
        }
        drop(ping_tx);
        assert_eq!(pong_rx.recv().await, None);
    });
    assert_eq!(ponger.join().unwrap(), N);
}

#[test]
fn l10_four_producer_threads_into_one_loop_every_message_exactly_once() {
    const PRODUCERS: usize = 4;
    const EACH: u32 = 25_000;
    let (tx, mut rx) = cross::channel::<(usize, u32)>(64).unwrap();
    // Two producers are plain threads (blocking sends), two run loops.
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|id| {
            let tx = tx.clone();
            thread::spawn(move || {
                if id % 2 == 0 {
                    for seq in 0..EACH {
                        tx.send_blocking((id, seq)).unwrap();
                    }
                } else {
                    run_bounded(LIMIT, async move {
                        for seq in 0..EACH {
                            tx.send((id, seq)).await.unwrap();
                        }
                    });
                }
            })
        })
        .collect();
    drop(tx);
    let next = run_bounded(LIMIT, async move {
        let mut next = [0u32; PRODUCERS];
        while let Some((id, seq)) = rx.recv().await {
            // Each producer's messages arrive once each, in its order.
            assert_eq!(seq, next[id], "producer {id}");
            next[id] += 1;
        }
        next
    });
    assert_eq!(next, [EACH; PRODUCERS]);
    producers.into_iter().for_each(|p| p.join().unwrap());
}

#[test]
fn q1_backpressure_a_send_waits_until_a_recv_makes_room() {
    // Within one loop: the second send waits for the first recv.
    run_bounded(LIMIT, async {
        let (tx, mut rx) = cross::channel(1).unwrap();
        tx.send(1).await.unwrap();
        assert_eq!(tx.try_send(9), Err(TrySendError::Full(9)));
        let sender = spawn(async move { tx.send(2).await });
        for _ in 0..5 {
            yield_now().await;
        }
        assert!(!sender.is_done());
        assert_eq!(rx.len(), 1);
        assert_eq!(rx.recv().await, Some(1));
        sender.await.unwrap().unwrap();
        assert_eq!(rx.recv().await, Some(2));
        assert_eq!(rx.recv().await, None);
    });

    // Across threads: a blocked plain-thread sender resumes after a recv.
    let (tx, mut rx) = cross::channel(1).unwrap();
    tx.try_send(0).unwrap();
    let sent = Arc::new(AtomicBool::new(false));
    let producer = thread::spawn({
        let sent = sent.clone();
        move || {
            tx.send_blocking(1).unwrap();
            sent.store(true, Ordering::SeqCst);
        }
    });
    thread::sleep(ms(50));
    assert!(!sent.load(Ordering::SeqCst), "send did not wait for room");
    assert_eq!(rx.recv_blocking(), Some(0));
    assert_eq!(rx.recv_blocking(), Some(1));
    producer.join().unwrap();
    assert!(sent.load(Ordering::SeqCst));
}

#[test]
fn q3_waiting_senders_are_served_in_fifo_order() {
    run_bounded(LIMIT, async {
        let (tx, mut rx) = cross::channel(1).unwrap();
        tx.try_send("first").unwrap();
        let senders: Vec<_> = ["a", "b", "c"]
            .into_iter()
            .map(|v| {
                let tx = tx.clone();
                spawn(async move { tx.send(v).await })
            })
            .collect();
        for _ in 0..3 {
            yield_now().await;
        }
        // Room is owed to the waiting senders: a newcomer cannot take it.
        assert_eq!(rx.recv().await, Some("first"));
        assert_eq!(tx.try_send("late"), Err(TrySendError::Full("late")));
        drop(tx);
        let mut got = Vec::new();
        while let Some(v) = rx.recv().await {
            got.push(v);
        }
        assert_eq!(got, ["a", "b", "c"]);
        for s in senders {
            s.await.unwrap().unwrap();
        }
    });
}

#[test]
fn closed_errors_when_the_receiver_is_gone_or_closed() {
    let (tx, rx) = cross::channel(2).unwrap();
    assert!(!tx.is_closed());
    drop(rx);
    assert!(tx.is_closed());
    assert_eq!(tx.try_send(1), Err(TrySendError::Closed(1)));
    assert_eq!(tx.send_blocking(2), Err(SendError(2)));
    run_bounded(LIMIT, async move {
        assert_eq!(tx.send(3).await.unwrap_err().0, 3);
    });

    // `close` fails a sender blocked in another thread at once, and the
    // receiver still drains what was queued.
    let (tx, mut rx) = cross::channel(1).unwrap();
    tx.try_send(10).unwrap();
    let blocked = thread::spawn(move || {
        let res = tx.send_blocking(11);
        (res, tx)
    });
    thread::sleep(ms(20));
    rx.close();
    let (res, tx) = blocked.join().unwrap();
    assert_eq!(res, Err(SendError(11)));
    assert!(tx.is_closed());
    assert!(rx.is_closed());
    assert_eq!(rx.try_recv(), Ok(10));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    assert_eq!(rx.recv_blocking(), None);
    assert_eq!(tx.try_send(12), Err(TrySendError::Closed(12)));
}

#[test]
fn closed_recv_ends_once_every_sender_is_gone_and_drained() {
    let (tx, mut rx) = cross::channel(4).unwrap();
    let tx2 = tx.clone();
    tx.try_send(1).unwrap();
    tx2.try_send(2).unwrap();
    drop(tx);
    assert!(!rx.is_closed());
    assert_eq!(rx.try_recv(), Ok(1));
    drop(tx2);
    assert!(rx.is_closed());
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));

    // A receiver waiting in another loop is woken by the last sender's drop.
    let (tx, mut rx) = cross::channel::<u8>(1).unwrap();
    let waiter = thread::spawn(move || run_bounded(LIMIT, async move { rx.recv().await }));
    thread::sleep(ms(20));
    drop(tx);
    assert_eq!(waiter.join().unwrap(), None);
}

#[test]
fn receiver_drop_drops_the_queued_values() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = cross::channel(4).unwrap();
    for i in 0..3 {
        tx.try_send(Counted(i, drops.clone())).unwrap();
    }
    drop(rx);
    assert_eq!(drops.load(Ordering::SeqCst), 3);
    // The refused value comes back to the caller.
    let back = tx
        .try_send(Counted(9, drops.clone()))
        .unwrap_err()
        .into_inner();
    assert_eq!(back.0, 9);
}

#[test]
fn q2_dropped_send_futures_insert_nothing_and_pass_their_slot_on() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, mut rx) = cross::channel(1).unwrap();
    tx.try_send(Counted(0, drops.clone())).unwrap();
    let mut cx = noop_cx();
    {
        let mut a = Box::pin(tx.send(Counted(1, drops.clone())));
        let mut b = pin!(tx.send(Counted(2, drops.clone())));
        assert!(a.as_mut().poll(&mut cx).is_pending());
        assert!(b.as_mut().poll(&mut cx).is_pending());
        // The freed slot is granted to `a`, which is then dropped unpolled:
        // the slot passes to `b`, and `a`'s value is dropped, not sent.
        assert_eq!(rx.try_recv().unwrap().0, 0);
        assert_eq!(
            tx.try_send(Counted(8, drops.clone()))
                .unwrap_err()
                .into_inner()
                .0,
            8
        );
        let before = drops.load(Ordering::SeqCst);
        drop(a);
        assert_eq!(drops.load(Ordering::SeqCst), before + 1);
        assert!(matches!(b.as_mut().poll(&mut cx), Poll::Ready(Ok(()))));
    }
    assert_eq!(rx.try_recv().unwrap().0, 2);
    assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));

    // A send dropped while still waiting leaves the queue of waiters, and
    // the room it never got is free for the next send.
    tx.try_send(Counted(3, drops.clone())).unwrap();
    {
        let mut c = pin!(tx.send(Counted(4, drops.clone())));
        assert!(c.as_mut().poll(&mut cx).is_pending());
    }
    assert_eq!(rx.try_recv().unwrap().0, 3);
    tx.try_send(Counted(5, drops.clone())).unwrap();
    assert_eq!(rx.try_recv().unwrap().0, 5);
    assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
}

#[test]
fn q2_a_send_timed_out_by_wait_for_inserts_nothing() {
    run_bounded(LIMIT, async {
        let (tx, mut rx) = cross::channel(1).unwrap();
        tx.send(1).await.unwrap();
        let t0 = Instant::now();
        assert!(ringloop::wait_for(tx.send(2), Some(ms(20))).await.is_err());
        assert!(t0.elapsed() >= ms(20));
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        tx.send(3).await.unwrap();
        assert_eq!(rx.recv().await, Some(3));
    });
}

#[test]
fn q2_dropped_recv_futures_lose_nothing() {
    // By hand: a recv polled (and parked), then dropped after a send from
    // another thread woke it.
    let (tx, mut rx) = cross::channel(2).unwrap();
    {
        let mut cx = noop_cx();
        let mut recv = pin!(rx.recv());
        assert!(recv.as_mut().poll(&mut cx).is_pending());
        thread::spawn(move || tx.send_blocking(7).unwrap())
            .join()
            .unwrap();
    }
    assert_eq!(rx.try_recv(), Ok(7));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));

    // In a loop: a recv timed out by `wait_for` while a producer thread is
    // still to send; every value still arrives, in order.
    let (tx, mut rx) = cross::channel(4).unwrap();
    run_bounded(LIMIT, async move {
        assert!(ringloop::wait_for(rx.recv(), Some(ms(10))).await.is_err());
        let producer = thread::spawn(move || {
            for i in 0..100 {
                tx.send_blocking(i).unwrap();
            }
        });
        let mut got = Vec::new();
        loop {
            match ringloop::wait_for(rx.recv(), Some(Duration::from_micros(50))).await {
                Ok(Some(v)) => got.push(v),
                Ok(None) => break,
                Err(_) => {} // dropped mid-wait: must lose nothing
            }
        }
        producer.join().unwrap();
        assert_eq!(got, (0..100).collect::<Vec<_>>());
    });
}

#[test]
fn blocking_forms_between_plain_threads() {
    const N: u32 = 10_000;
    let (tx, mut rx) = cross::channel(2).unwrap();
    let producer = thread::spawn(move || {
        for i in 0..N {
            tx.send_blocking(i).unwrap();
        }
    });
    let consumer = thread::spawn(move || {
        let mut expected = 0;
        while let Some(v) = rx.recv_blocking() {
            assert_eq!(v, expected);
            expected += 1;
        }
        expected
    });
    producer.join().unwrap();
    assert_eq!(consumer.join().unwrap(), N);
}

#[test]
fn receiver_is_a_stream_ending_when_the_senders_are_gone() {
    let (tx, rx) = cross::channel(3).unwrap();
    let producer = thread::spawn(move || {
        for i in 0..1000 {
            tx.send_blocking(i).unwrap();
        }
    });
    let got: Vec<u32> = run_bounded(LIMIT, rx.collect());
    producer.join().unwrap();
    assert_eq!(got, (0..1000).collect::<Vec<_>>());
}

#[test]
fn capacity_zero_is_a_typed_error() {
    let err = cross::channel::<u8>(0).unwrap_err();
    assert_eq!(err, CapacityError);
    assert_eq!(
        err.to_string(),
        "cross::channel capacity must be at least 1, got 0"
    );
    let (tx, rx) = cross::channel::<u8>(1).unwrap();
    assert_eq!((tx.capacity(), rx.capacity()), (1, 1));
}

#[test]
fn halves_are_send_sync_and_errors_need_no_debug_payload() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: &T) {}
    struct Opaque; // neither Debug nor Clone
    let (tx, mut rx) = cross::channel::<Opaque>(1).unwrap();
    send_sync(&tx);
    send(&rx);
    send(&tx.send(Opaque));
    send(&rx.recv());
    let err = SendError(Opaque);
    assert_eq!(format!("{err:?} {err}"), "SendError(..) channel closed");
    let err = TrySendError::Full(Opaque);
    let _: &dyn std::error::Error = &err;
    assert_eq!(format!("{err:?}"), "Full(..)");
    assert!(format!("{tx:?} {rx:?}").contains("cross::Sender"));
}
