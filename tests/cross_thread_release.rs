//! A task's last reference released on a thread other than its loop's.
//!
//! Found by ThreadSanitizer (`scripts/tsan.sh`): the task's reference
//! count synchronised the final free with an acquire *fence*, which TSan
//! does not model, so a waker dropped last on another thread while the loop
//! still ran was reported as a data race between the free and the loop's
//! last writes to the task. The ordering was right; the count now ends with
//! an acquire *load* (as `std::sync::Arc` does under TSan), which TSan
//! sees. These tests pass in any build; under TSan they also check that no
//! race is reported.
//!
//! The threads order themselves through `Relaxed` flags on purpose: those
//! create no happens-before edge, so the only synchronisation between the
//! free and the loop's writes is the task's own reference count.

use std::future::poll_fn;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::mpsc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

/// Waits (on a plain thread) until `flag` is set; panics after 10 s.
fn wait_for_flag(flag: &AtomicBool) {
    let t0 = Instant::now();
    while !flag.load(Relaxed) {
        assert!(t0.elapsed() < Duration::from_secs(10), "flag never set");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Waits (in the loop) until `flag` is set; panics after 10 s.
async fn loop_wait_for_flag(flag: &AtomicBool) {
    let t0 = Instant::now();
    while !flag.load(Relaxed) {
        assert!(t0.elapsed() < Duration::from_secs(10), "flag never set");
        ringloop::sleep(Duration::from_millis(1)).await;
    }
}

/// A finished task whose last waker another thread wakes and then drops
/// (freeing the task there) while the loop runs on: the wake is ignored
/// (the task is not polled again) and the loop goes on.
#[test]
fn l7_a_finished_tasks_last_waker_woken_and_dropped_on_another_thread() {
    let (tx, rx) = mpsc::channel::<Waker>();
    let finished = Arc::new(AtomicBool::new(false));
    let dropped = Arc::new(AtomicBool::new(false));
    let foreign = std::thread::spawn({
        let (finished, dropped) = (finished.clone(), dropped.clone());
        move || {
            let waker = rx.recv().unwrap();
            wait_for_flag(&finished);
            waker.wake_by_ref();
            drop(waker); // the task's last reference
            dropped.store(true, Relaxed);
        }
    });
    let polls = Arc::new(AtomicUsize::new(0));
    let out = ringloop::run({
        let polls = polls.clone();
        async move {
            let task = ringloop::spawn_named("released-elsewhere", async move {
                poll_fn(|cx| {
                    polls.fetch_add(1, Relaxed);
                    tx.send(cx.waker().clone()).unwrap();
                    Poll::Ready(())
                })
                .await;
                "done"
            });
            let out = task.await.unwrap();
            finished.store(true, Relaxed);
            // The loop keeps running while the other thread releases it.
            loop_wait_for_flag(&dropped).await;
            ringloop::sleep(Duration::from_millis(5)).await;
            out
        }
    })
    .unwrap();
    foreign.join().unwrap();
    assert_eq!(out, "done");
    assert_eq!(
        polls.load(Relaxed),
        1,
        "a finished task is never polled again"
    );
}

/// Many short tasks, each released last by a waker dropped on one other
/// thread, interleaved with the loop finishing more of them.
#[test]
fn l7_many_tasks_released_on_another_thread_while_the_loop_runs() {
    const TASKS: usize = 200;
    let (tx, rx) = mpsc::channel::<Waker>();
    let all_finished = Arc::new(AtomicBool::new(false));
    let released = Arc::new(AtomicUsize::new(0));
    let foreign = std::thread::spawn({
        let (all_finished, released) = (all_finished.clone(), released.clone());
        move || {
            let mut wakers = Vec::new();
            while wakers.len() < TASKS {
                wakers.push(rx.recv().unwrap());
            }
            wait_for_flag(&all_finished);
            for w in wakers {
                drop(w);
                released.fetch_add(1, Relaxed);
            }
        }
    });
    let sum = ringloop::run(async move {
        let tasks: Vec<_> = (0..TASKS)
            .map(|i| {
                let tx = tx.clone();
                ringloop::spawn(async move {
                    poll_fn(|cx| {
                        tx.send(cx.waker().clone()).unwrap();
                        Poll::Ready(())
                    })
                    .await;
                    i
                })
            })
            .collect();
        let mut sum = 0;
        for t in tasks {
            sum += t.await.unwrap();
        }
        all_finished.store(true, Relaxed);
        let t0 = Instant::now();
        while released.load(Relaxed) < TASKS {
            assert!(t0.elapsed() < Duration::from_secs(10), "not all released");
            ringloop::sleep(Duration::from_millis(1)).await;
        }
        sum
    })
    .unwrap();
    foreign.join().unwrap();
    assert_eq!(sum, TASKS * (TASKS - 1) / 2);
}
