//! `Barrier` (SEMANTICS Q2, Q3): release, indices, cycles, abort, reset.

mod sync_support;

use ringloop::sync::{Barrier, BarrierWaitResult, BrokenBarrierError};
use ringloop::{Task, spawn, yield_now};
use sync_support::yields;

fn party(barrier: &Barrier) -> Task<Result<BarrierWaitResult, BrokenBarrierError>> {
    let barrier = barrier.clone();
    spawn(async move { barrier.wait().await })
}

#[test]
fn q3_barrier_releases_every_party_with_distinct_indices_and_one_leader() {
    ringloop::run(async {
        let barrier = Barrier::new(4);
        let tasks: Vec<_> = (0..3).map(|_| party(&barrier)).collect();
        yields(3).await;
        assert_eq!(barrier.n_waiting(), 3);
        assert!(tasks.iter().all(|t| !t.is_done()));
        let last = barrier.wait().await.unwrap();
        assert_eq!((last.index(), last.is_leader()), (3, true));
        assert_eq!(barrier.n_waiting(), 0);
        let mut results = vec![last];
        for t in tasks {
            results.push(t.await.unwrap().unwrap());
        }
        let mut indices: Vec<_> = results.iter().map(|r| r.index()).collect();
        indices.sort_unstable();
        assert_eq!(indices, [0, 1, 2, 3]);
        assert_eq!(results.iter().filter(|r| r.is_leader()).count(), 1);
    })
    .unwrap();
}

#[test]
fn q3_barrier_can_be_passed_again_and_again() {
    ringloop::run(async {
        let barrier = Barrier::new(3);
        let tasks: Vec<_> = (0..3)
            .map(|_| {
                let barrier = barrier.clone();
                spawn(async move {
                    let mut indices = Vec::new();
                    for _ in 0..5 {
                        indices.push(barrier.wait().await.unwrap().index());
                    }
                    indices
                })
            })
            .collect();
        let mut per_cycle = [0usize; 5];
        for t in tasks {
            for (cycle, index) in t.await.unwrap().into_iter().enumerate() {
                per_cycle[cycle] += 1 << index;
            }
        }
        // Each cycle handed out the indices 0, 1 and 2 once.
        assert_eq!(per_cycle, [0b111; 5]);
    })
    .unwrap();
}

#[test]
fn q3_barrier_abort_breaks_the_waiters_and_every_later_wait_until_reset() {
    ringloop::run(async {
        let barrier = Barrier::new(3);
        let (a, b) = (party(&barrier), party(&barrier));
        yield_now().await;
        barrier.abort();
        assert!(barrier.broken());
        assert!(a.await.unwrap().is_err());
        assert!(b.await.unwrap().is_err());
        assert!(barrier.wait().await.is_err());
        barrier.reset();
        assert!(!barrier.broken());
        let (a, b) = (party(&barrier), party(&barrier));
        yield_now().await; // they arrive first
        assert!(barrier.wait().await.unwrap().is_leader());
        assert!(a.await.unwrap().is_ok() && b.await.unwrap().is_ok());
    })
    .unwrap();
}

#[test]
fn q3_barrier_reset_breaks_the_current_waiters_only() {
    ringloop::run(async {
        let barrier = Barrier::new(2);
        let a = party(&barrier);
        yield_now().await;
        barrier.reset();
        assert_eq!(
            a.await.unwrap().unwrap_err().to_string(),
            "barrier is broken"
        );
        assert!(!barrier.broken());
        assert_eq!(barrier.n_waiting(), 0);
        let b = party(&barrier);
        yield_now().await;
        assert_eq!(barrier.wait().await.unwrap().index(), 1);
        assert_eq!(b.await.unwrap().unwrap().index(), 0);
    })
    .unwrap();
}

#[test]
fn q2_a_dropped_barrier_waiter_leaves_without_breaking_the_barrier() {
    ringloop::run(async {
        let barrier = Barrier::new(3);
        let a = party(&barrier);
        let b = party(&barrier);
        yield_now().await;
        assert_eq!(barrier.n_waiting(), 2);
        drop(a);
        assert_eq!(barrier.n_waiting(), 1);
        assert!(!barrier.broken());
        let c = party(&barrier);
        yield_now().await;
        assert!(!c.is_done()); // two of three: still waiting
        let last = barrier.wait().await.unwrap();
        assert_eq!(last.index(), 2);
        // Indices are unique even though `a` left: `b` 0, `c` 1.
        assert_eq!(b.await.unwrap().unwrap().index(), 0);
        assert_eq!(c.await.unwrap().unwrap().index(), 1);
    })
    .unwrap();
}

#[test]
fn q3_a_one_party_barrier_never_waits() {
    ringloop::run(async {
        let barrier = Barrier::new(1);
        for _ in 0..3 {
            let r = barrier.wait().await.unwrap();
            assert_eq!((r.index(), r.is_leader()), (0, true));
        }
        assert_eq!(barrier.parties(), 1);
    })
    .unwrap();
}

#[test]
#[should_panic(expected = "a Barrier needs at least one party")]
fn q3_a_barrier_of_no_party_is_refused() {
    let _ = Barrier::new(0);
}
