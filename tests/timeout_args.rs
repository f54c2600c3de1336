//! Every timeout and deadline argument takes the bare value or an `Option`
//! alike (`impl Into<Option<Duration>>`, `impl Into<Option<Instant>>`):
//! `wait_for`, `wait_for_task`, `timeout`, `timeout_at`,
//! `TimeoutScope::reschedule`, `wait`, `try_wait`, `as_completed`,
//! `as_completed_tasks` and `EventLoop::shutdown_default_executor` (SEMANTICS
//! W1, W3, W7, WA1, WA2). Each form is checked for what it does, not only
//! that it compiles.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use ringloop::{
    ReturnWhen, as_completed, as_completed_tasks, sleep, spawn, timeout, timeout_at, try_wait,
    wait, wait_for, wait_for_task, yield_now,
};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

const HOUR: Duration = Duration::from_secs(3600);

#[test]
fn w1_wait_for_takes_a_duration_or_an_option() {
    ringloop::run(async {
        // In time: the output, either form.
        assert_eq!(wait_for(async { 1 }, ms(500)).await, Ok(1));
        assert_eq!(wait_for(async { 2 }, Some(ms(500))).await, Ok(2));
        // Too slow: TimeoutError after the timeout, either form.
        let t0 = Instant::now();
        assert!(wait_for(sleep(HOUR), ms(20)).await.is_err());
        let took = t0.elapsed();
        assert!(took >= ms(20) && took < Duration::from_secs(2), "{took:?}");
        let t0 = Instant::now();
        assert!(wait_for(sleep(HOUR), Some(ms(20))).await.is_err());
        let took = t0.elapsed();
        assert!(took >= ms(20) && took < Duration::from_secs(2), "{took:?}");
        // No limit: None, spelled either way.
        assert_eq!(
            wait_for(
                async {
                    sleep(ms(5)).await;
                    3
                },
                None
            )
            .await,
            Ok(3)
        );
        let none: Option<Duration> = None;
        assert_eq!(wait_for(async { 4 }, none).await, Ok(4));
    })
    .unwrap();
}

#[test]
fn w3_zero_timeout_bare_or_wrapped_is_the_same() {
    ringloop::run(async {
        // A future passed by value is never started, either form.
        let started = std::cell::Cell::new(false);
        assert!(
            wait_for(async { started.set(true) }, Duration::ZERO)
                .await
                .is_err()
        );
        assert!(
            wait_for(async { started.set(true) }, Some(Duration::ZERO))
                .await
                .is_err()
        );
        assert!(!started.get());
        // A task already done gives its output, either form.
        let mut task = spawn(async { 5 });
        yield_now().await;
        assert_eq!(
            wait_for_task(&mut task, Duration::ZERO)
                .await
                .unwrap()
                .unwrap(),
            5
        );
        let mut task = spawn(async { 6 });
        yield_now().await;
        assert_eq!(
            wait_for_task(&mut task, Some(Duration::ZERO))
                .await
                .unwrap()
                .unwrap(),
            6
        );
        // One not done times out, either form.
        let mut slow = spawn(sleep(HOUR));
        assert!(wait_for_task(&mut slow, Duration::ZERO).await.is_err());
        assert!(
            wait_for_task(&mut slow, Some(Duration::ZERO))
                .await
                .is_err()
        );
        assert!(!slow.is_done());
    })
    .unwrap();
}

#[test]
fn w7_timeout_scopes_take_a_value_or_an_option() {
    ringloop::run(async {
        // timeout(Duration) and timeout(Some(Duration)) expire alike.
        let bare = || timeout(ms(20));
        let wrapped = || timeout(Some(ms(20)));
        for make in [&bare as &dyn Fn() -> _, &wrapped] {
            let t0 = Instant::now();
            let scope = make();
            assert!(scope.run(sleep(HOUR)).await.is_err());
            assert!(scope.expired());
            assert!(t0.elapsed() >= ms(20));
        }
        // timeout(None): no deadline (asyncio's `timeout(None)`).
        let open = timeout(None);
        assert_eq!(open.when(), None);
        assert_eq!(
            open.run(async {
                sleep(ms(5)).await;
                7
            })
            .await,
            Ok(7)
        );
        assert!(!open.expired());

        // timeout_at(Instant) and timeout_at(Some(Instant)) likewise.
        let at = Instant::now() + ms(20);
        for scope in [timeout_at(at), timeout_at(Some(at))] {
            assert_eq!(scope.when(), Some(at));
            assert!(scope.run(sleep(HOUR)).await.is_err());
            assert!(Instant::now() >= at);
        }
        assert_eq!(timeout_at(None).when(), None);

        // reschedule(Instant), reschedule(Some(Instant)), reschedule(None).
        let scope = timeout(HOUR);
        let inner = scope.clone();
        let t0 = Instant::now();
        let r = scope
            .run(async move {
                inner.reschedule(None).unwrap();
                assert_eq!(inner.when(), None);
                inner.reschedule(Some(Instant::now() + HOUR)).unwrap();
                inner.reschedule(Instant::now() + ms(20)).unwrap();
                sleep(HOUR).await;
            })
            .await;
        assert!(r.is_err());
        let took = t0.elapsed();
        assert!(took >= ms(20) && took < Duration::from_secs(2), "{took:?}");
    })
    .unwrap();
}

#[test]
fn wa1_wait_and_try_wait_take_a_duration_or_an_option() {
    ringloop::run(async {
        let mut slow = spawn(sleep(HOUR));
        let mut fast = spawn(async {});
        let (done, pending) = wait([&mut fast, &mut slow], ReturnWhen::AllCompleted, ms(20)).await;
        assert_eq!((done.len(), pending.len()), (1, 1));
        let (done, pending) = wait(
            [&mut fast, &mut slow],
            ReturnWhen::AllCompleted,
            Some(ms(20)),
        )
        .await;
        assert_eq!((done.len(), pending.len()), (1, 1));
        // None: waits for all.
        let quick = spawn(sleep(ms(5)));
        let (done, pending) = wait([quick], ReturnWhen::AllCompleted, None).await;
        assert_eq!((done.len(), pending.len()), (1, 0));

        let mut bad = spawn(async { Err::<(), &str>("bad") });
        let mut slow = spawn(async {
            sleep(HOUR).await;
            Ok(())
        });
        let (done, pending) =
            try_wait([&mut bad, &mut slow], ReturnWhen::AllCompleted, ms(20)).await;
        assert_eq!((done.len(), pending.len()), (1, 1));
        let (done, pending) = try_wait(
            [&mut bad, &mut slow],
            ReturnWhen::FirstException,
            Some(ms(20)),
        )
        .await;
        assert_eq!((done.len(), pending.len()), (1, 1));
        assert!(!slow.is_done());
    })
    .unwrap();
}

#[test]
fn wa2_as_completed_takes_a_duration_or_an_option() {
    ringloop::run(async {
        // Bare Duration: the quick one comes back, the slow one times out.
        let mut results = as_completed([sleep(ms(1)), sleep(HOUR)], ms(30));
        assert!(results.next().await.unwrap().is_ok());
        assert!(results.next().await.unwrap().is_err());
        assert!(results.next().await.is_none());
        // Some(Duration): the same.
        let mut results = as_completed([sleep(ms(1)), sleep(HOUR)], Some(ms(30)));
        assert!(results.next().await.unwrap().is_ok());
        assert!(results.next().await.unwrap().is_err());
        // Tasks kept by their owner, bare Duration.
        let mut slow = spawn(async {
            sleep(ms(50)).await;
            "slow"
        });
        let mut results = as_completed_tasks([&mut slow], ms(1));
        assert!(results.next().await.unwrap().is_err());
        drop(results);
        assert_eq!(slow.await.unwrap(), "slow");
        // None: no limit.
        let mut results = as_completed([sleep(ms(5))], None);
        assert!(results.next().await.unwrap().is_ok());
    })
    .unwrap();
}

#[test]
fn shutdown_default_executor_takes_a_duration_or_an_option() {
    let lp = ringloop::EventLoop::new().unwrap();
    // A job that outlives a short wait: 1 still running, either form.
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let job = lp
        .run_in_executor(move || {
            let _ = rx.recv_timeout(Duration::from_secs(10));
        })
        .unwrap();
    drop(job);
    assert_eq!(lp.shutdown_default_executor(ms(20)).unwrap(), 1);
    assert_eq!(lp.shutdown_default_executor(Some(ms(20))).unwrap(), 1);
    // Let it finish: none left, bare or None.
    tx.send(()).unwrap();
    assert_eq!(
        lp.shutdown_default_executor(Duration::from_secs(10))
            .unwrap(),
        0
    );
    assert_eq!(lp.shutdown_default_executor(None).unwrap(), 0);
    lp.close().unwrap();
}
