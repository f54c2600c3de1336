//! The loop-local `oneshot` and `mpsc` channels: delivery, closing from
//! either side, back-pressure, and dropped `send`/`recv` futures.

mod sync_support;

use std::cell::Cell;
use std::rc::Rc;

use ringloop::sync::{mpsc, oneshot};
use ringloop::{spawn, yield_now};
use sync_support::yields;

// ---------------------------------------------------------------- oneshot

#[test]
fn oneshot_delivers_the_value_to_a_waiting_receiver() {
    let out = ringloop::run(async {
        let (tx, rx) = oneshot::channel();
        let rx_task = spawn(rx);
        yields(2).await;
        assert!(!rx_task.is_done());
        tx.send(String::from("hello")).unwrap();
        rx_task.await.unwrap()
    })
    .unwrap();
    assert_eq!(out.as_deref(), Ok("hello"));
}

#[test]
fn oneshot_receiver_errors_when_the_sender_is_dropped_unsent() {
    ringloop::run(async {
        let (tx, rx) = oneshot::channel::<u8>();
        let rx_task = spawn(rx);
        yield_now().await;
        drop(tx);
        let err = rx_task.await.unwrap().unwrap_err();
        assert_eq!(err.to_string(), "oneshot sender dropped without sending");
    })
    .unwrap();
}

#[test]
fn oneshot_send_fails_once_the_receiver_is_gone_and_closed_wakes() {
    ringloop::run(async {
        let (mut tx, rx) = oneshot::channel::<u8>();
        let watcher = spawn(async move {
            tx.closed().await;
            tx.send(1)
        });
        yields(2).await;
        assert!(!watcher.is_done());
        drop(rx);
        assert_eq!(watcher.await.unwrap(), Err(1));

        let (tx, mut rx) = oneshot::channel();
        rx.close();
        assert!(tx.is_closed());
        assert_eq!(tx.send(2), Err(2));
        assert_eq!(rx.try_recv(), Err(oneshot::TryRecvError::Closed));
    })
    .unwrap();
}

#[test]
fn oneshot_a_dropped_receiver_drops_the_value() {
    let dropped = Rc::new(Cell::new(false));
    struct Flag(Rc<Cell<bool>>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let (tx, rx) = oneshot::channel();
    assert!(tx.send(Flag(dropped.clone())).is_ok());
    assert!(!dropped.get());
    drop(rx);
    assert!(dropped.get());
}

// ---------------------------------------------------------------- mpsc

#[test]
fn mpsc_delivers_in_order_and_ends_when_every_sender_is_gone() {
    let got = ringloop::run(async {
        let (tx, mut rx) = mpsc::channel(4);
        let producers: Vec<_> = (0..3)
            .map(|p| {
                let tx = tx.clone();
                spawn(async move {
                    for i in 0..10 {
                        tx.send((p, i)).await.unwrap();
                    }
                })
            })
            .collect();
        drop(tx);
        let mut got = Vec::new();
        while let Some(v) = rx.recv().await {
            got.push(v);
        }
        for p in producers {
            p.await.unwrap();
        }
        got
    })
    .unwrap();
    assert_eq!(got.len(), 30);
    for p in 0..3 {
        let mine: Vec<_> = got.iter().filter(|v| v.0 == p).map(|v| v.1).collect();
        assert_eq!(mine, (0..10).collect::<Vec<_>>());
    }
}

#[test]
fn mpsc_bounded_send_waits_for_room() {
    ringloop::run(async {
        let (tx, mut rx) = mpsc::channel(1);
        tx.send(1).await.unwrap();
        assert_eq!(tx.try_send(2), Err(mpsc::TrySendError::Full(2)));
        let blocked = spawn({
            let tx = tx.clone();
            async move { tx.send(2).await.is_ok() }
        });
        yields(2).await;
        assert!(!blocked.is_done());
        assert_eq!(rx.recv().await, Some(1));
        assert!(blocked.await.unwrap());
        assert_eq!(rx.try_recv(), Ok(2));
        assert_eq!(rx.try_recv(), Err(mpsc::TryRecvError::Empty));
    })
    .unwrap();
}

#[test]
fn mpsc_unbounded_send_never_waits() {
    ringloop::run(async {
        let (tx, mut rx) = mpsc::unbounded_channel();
        for i in 0..10_000 {
            tx.send(i).await.unwrap();
        }
        assert_eq!(rx.len(), 10_000);
        drop(tx);
        let mut n = 0;
        while let Some(i) = rx.recv().await {
            assert_eq!(i, n);
            n += 1;
        }
        assert_eq!(n, 10_000);
        assert!(rx.is_empty());
    })
    .unwrap();
}

#[test]
fn mpsc_sends_fail_with_the_value_once_the_receiver_is_gone() {
    ringloop::run(async {
        let (tx, rx) = mpsc::channel(1);
        tx.send(1).await.unwrap();
        let blocked = spawn({
            let tx = tx.clone();
            async move { tx.send(2).await.map_err(|e| e.0) }
        });
        yield_now().await;
        drop(rx);
        assert_eq!(blocked.await.unwrap(), Err(2));
        assert!(tx.is_closed());
        assert_eq!(tx.send(3).await.unwrap_err().0, 3);
        assert_eq!(tx.try_send(4), Err(mpsc::TrySendError::Closed(4)));
    })
    .unwrap();
}

#[test]
fn mpsc_close_stops_sends_but_keeps_what_is_queued() {
    ringloop::run(async {
        let (tx, mut rx) = mpsc::channel(4);
        tx.send(1).await.unwrap();
        rx.close();
        assert!(tx.send(2).await.is_err());
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(rx.recv().await, None);
        assert_eq!(rx.try_recv(), Err(mpsc::TryRecvError::Disconnected));
    })
    .unwrap();
}

#[test]
fn q2_mpsc_a_dropped_recv_loses_nothing_and_a_dropped_send_sends_nothing() {
    ringloop::run(async {
        let (tx, mut rx) = mpsc::channel(1);
        // A recv dropped while it waited (a zero timeout) leaves the
        // channel; the value sent later waits for the next recv.
        let r = ringloop::wait_for(rx.recv(), Some(std::time::Duration::ZERO)).await;
        assert!(r.is_err());
        tx.send(1).await.unwrap();
        let r = ringloop::wait_for(tx.send(2), Some(std::time::Duration::ZERO)).await;
        assert!(r.is_err()); // full: the send was dropped...
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(rx.try_recv(), Err(mpsc::TryRecvError::Empty)); // ... unsent
    })
    .unwrap();
}
