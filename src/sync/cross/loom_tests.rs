//! loom models of the channel's cross-thread hand-offs (`scripts/loom.sh`).
//!
//! A blocked side sleeps on a loom condition variable (the blocking forms),
//! so a lost wake-up shows up as a deadlock loom reports; the others check
//! that every value is delivered exactly once, whatever the interleaving.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use loom::thread;

use super::{SendError, TryRecvError, TrySendError, channel};

/// Polls `fut` once with a waker that does nothing, then drops it.
fn poll_once<F: Future>(fut: F) -> Option<F::Output> {
    let mut fut = pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => Some(out),
        Poll::Pending => None,
    }
}

/// A send racing a receiver that parks: the receiver is woken by the send,
/// then by the last sender's drop.
#[test]
fn loom_send_wakes_a_parked_recv() {
    loom::model(|| {
        let (tx, mut rx) = channel::<u32>(1).unwrap();
        let producer = thread::spawn(move || tx.send_blocking(1).unwrap());
        assert_eq!(rx.recv_blocking(), Some(1));
        assert_eq!(rx.recv_blocking(), None);
        producer.join().unwrap();
    });
}

/// Back-pressure: a sender blocked on a full channel is woken by the recv
/// that makes room, and values keep their order.
#[test]
fn loom_recv_wakes_a_sender_waiting_for_room() {
    loom::model(|| {
        let (tx, mut rx) = channel::<u32>(1).unwrap();
        let producer = thread::spawn(move || {
            tx.send_blocking(1).unwrap();
            tx.send_blocking(2).unwrap();
        });
        assert_eq!(rx.recv_blocking(), Some(1));
        assert_eq!(rx.recv_blocking(), Some(2));
        assert_eq!(rx.recv_blocking(), None);
        producer.join().unwrap();
    });
}

/// Two senders blocked on a full channel: each freed slot goes to one of
/// them, and both values arrive.
#[test]
fn loom_two_waiting_senders_are_both_served() {
    loom::model(|| {
        let (tx, mut rx) = channel::<u32>(1).unwrap();
        tx.try_send(0).unwrap();
        let senders: Vec<_> = (1..=2)
            .map(|v| {
                let tx = tx.clone();
                thread::spawn(move || tx.send_blocking(v).unwrap())
            })
            .collect();
        drop(tx);
        let mut got = Vec::new();
        while let Some(v) = rx.recv_blocking() {
            got.push(v);
        }
        senders.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(got[0], 0);
        got.sort_unstable();
        assert_eq!(got, [0, 1, 2]);
    });
}

/// A recv future dropped while a send races it: the value is received
/// exactly once, by the dropped future's poll or afterwards.
#[test]
fn loom_dropped_recv_racing_a_send_loses_nothing() {
    loom::model(|| {
        let (tx, mut rx) = channel::<u32>(1).unwrap();
        let producer = thread::spawn(move || tx.try_send(5).unwrap());
        let early = poll_once(rx.recv()).flatten();
        producer.join().unwrap();
        let mut got: Vec<u32> = early.into_iter().collect();
        while let Ok(v) = rx.try_recv() {
            got.push(v);
        }
        assert_eq!(got, [5]);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    });
}

/// A send future dropped after being granted a slot by a racing recv: its
/// value is not sent, and the slot passes to the sender waiting behind it
/// (a leaked slot would leave that sender blocked: a deadlock).
#[test]
fn loom_dropped_send_passes_its_slot_on() {
    loom::model(|| {
        let (tx, mut rx) = channel::<u32>(1).unwrap();
        tx.try_send(0).unwrap();
        let tx2 = tx.clone();
        let dropped = thread::spawn(move || poll_once(tx.send(1)).is_some());
        let blocked = thread::spawn(move || tx2.send_blocking(2).unwrap());
        assert_eq!(rx.recv_blocking(), Some(0));
        let sent = dropped.join().unwrap();
        let mut rest = Vec::new();
        while let Some(v) = rx.recv_blocking() {
            rest.push(v);
        }
        blocked.join().unwrap();
        rest.sort_unstable();
        assert_eq!(rest, if sent { vec![1, 2] } else { vec![2] });
    });
}

/// `close` racing `try_send`: the value is either queued (and received) or
/// given back, never both or neither.
#[test]
fn loom_close_racing_a_send() {
    loom::model(|| {
        let (tx, mut rx) = channel::<u32>(1).unwrap();
        let producer = thread::spawn(move || tx.try_send(1));
        rx.close();
        match producer.join().unwrap() {
            Ok(()) => assert_eq!(rx.try_recv(), Ok(1)),
            Err(TrySendError::Closed(1)) => {}
            Err(_) => panic!("unexpected try_send error"),
        }
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    });
}

/// `close` racing a sender waiting for room, which a racing recv may grant:
/// the sender is always woken, and its value is received iff it was sent.
#[test]
fn loom_close_wakes_a_waiting_sender() {
    loom::model(|| {
        let (tx, mut rx) = channel::<u32>(1).unwrap();
        tx.try_send(0).unwrap();
        let producer = thread::spawn(move || tx.send_blocking(2));
        assert_eq!(rx.try_recv(), Ok(0));
        rx.close();
        let res = producer.join().unwrap();
        match res {
            Ok(()) => assert_eq!(rx.try_recv(), Ok(2)),
            Err(SendError(v)) => assert_eq!(v, 2),
        }
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    });
}
