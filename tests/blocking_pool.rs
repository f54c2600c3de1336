//! The blocking pool (SEMANTICS E1–E4): `to_thread`, `spawn_blocking`,
//! `run_in_executor`, `BlockingPool`, and `run()`'s bounded wait for jobs.

use std::future::Future;
use std::panic;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, Once, mpsc};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use ringloop::{BlockingPool, Builder, EventLoop, Handle};

mod common;

/// Panics whose message starts with this are expected: the panic hook
/// keeps them off stderr (10,000-job stress test).
const QUIET: &str = "expected test panic";

fn quiet_expected_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let msg = info
                .payload()
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str));
            if !msg.is_some_and(|m| m.starts_with(QUIET)) {
                default(info);
            }
        }));
    });
}

/// Polls `cond` every millisecond until it holds; false after `limit`.
fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if cond() {
            return true;
        }
        thread::sleep(Duration::from_millis(1));
    }
    cond()
}

/// A gate jobs block on until it is opened.
#[derive(Clone, Default)]
struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    fn wait(&self) {
        let mut open = self.0.0.lock().unwrap();
        while !*open {
            open = self.0.1.wait(open).unwrap();
        }
    }
    fn open(&self) {
        *self.0.0.lock().unwrap() = true;
        self.0.1.notify_all();
    }
}

fn thread_name() -> Option<String> {
    thread::current().name().map(str::to_owned)
}

// ---------------------------------------------------------------- E1

#[test]
fn e1_job_runs_on_another_thread_while_the_loop_runs_other_tasks() {
    let loop_thread = thread::current().id();
    let (tx, rx) = mpsc::channel::<u32>();
    let (job_thread, got, ticks_before_release) = ringloop::run(async move {
        let job = ringloop::to_thread(move || {
            // Blocks its pool thread until the loop sends.
            let v = rx.recv().unwrap();
            (thread::current().id(), v)
        });
        let ticker = ringloop::spawn(async move {
            let mut ticks = 0;
            for _ in 0..5 {
                ringloop::sleep(Duration::from_millis(2)).await;
                ticks += 1;
            }
            // The loop ticked while the job blocked: now unblock it.
            tx.send(7).unwrap();
            ticks
        });
        let ticks = ticker.await.unwrap();
        let (id, v) = job.await.unwrap();
        (id, v, ticks)
    })
    .unwrap();
    assert_ne!(job_thread, loop_thread);
    assert_eq!(got, 7);
    assert_eq!(ticks_before_release, 5);
}

#[test]
fn e1_run_in_executor_on_event_loop_and_handle() {
    let lp = EventLoop::new().unwrap();
    // Before the loop runs: queued at once, awaited later.
    let early = lp.run_in_executor(|| 1).unwrap();
    let sum = lp
        .run_until_complete(async move {
            let late = Handle::current().run_in_executor(|| 2).unwrap();
            early.await.unwrap() + late.await.unwrap()
        })
        .unwrap();
    assert_eq!(sum, 3);
    // Off the loop's thread, a Handle refuses (it cannot reach the loop).
    let h = lp.handle();
    let err = thread::spawn(move || h.run_in_executor(|| ()).unwrap_err())
        .join()
        .unwrap();
    assert!(matches!(err, ringloop::RuntimeError::NotInLoop), "{err:?}");
    lp.close().unwrap();
    assert!(matches!(
        lp.run_in_executor(|| ()),
        Err(ringloop::RuntimeError::Closed)
    ));
}

#[test]
fn e1_spawn_blocking_is_to_thread() {
    let name = ringloop::run(ringloop::spawn_blocking(thread_name)).unwrap();
    assert_eq!(name.unwrap().as_deref(), Some("ringloop-blocking"));
}

/// Wakes a parked std thread.
struct ThreadWaker(thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

#[test]
fn e1_to_thread_outside_a_loop_is_awaitable_by_any_executor() {
    // No ringloop loop runs here: the job goes to the default pool, and a
    // minimal executor (park until woken) awaits it.
    let mut task = ringloop::to_thread(|| (thread_name(), 21 * 2));
    let waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let t0 = Instant::now();
    let out = loop {
        match std::pin::Pin::new(&mut task).poll(&mut cx) {
            Poll::Ready(out) => break out.unwrap(),
            Poll::Pending => thread::park_timeout(Duration::from_millis(100)),
        }
        assert!(t0.elapsed() < Duration::from_secs(5), "job never finished");
    };
    assert_eq!(out, (Some("ringloop-blocking".to_owned()), 42));
    assert!(task.is_finished());
}

#[test]
fn e1_busy_loop_gets_the_result_without_entering_the_kernel() {
    let lp = EventLoop::new().unwrap();
    if common::skip_on_epoll(
        &lp,
        "epoll is asked for readiness (epoll_wait(0)) every busy turn",
    ) {
        return;
    }
    // Let the loop settle (its first turn arms its wake-up read).
    lp.run_until_complete(ringloop::yield_now()).unwrap();
    let enters = lp.enter_count();
    let out = lp
        .run_until_complete(async {
            let done = Arc::new(AtomicBool::new(false));
            // Keeps the loop busy (never parked) while the job runs.
            let spinner = ringloop::spawn({
                let done = done.clone();
                async move {
                    while !done.load(Ordering::Acquire) {
                        ringloop::yield_now().await;
                    }
                }
            });
            let v = ringloop::to_thread(|| {
                thread::sleep(Duration::from_millis(5));
                9
            })
            .await
            .unwrap();
            done.store(true, Ordering::Release);
            spinner.await.unwrap();
            v
        })
        .unwrap();
    assert_eq!(out, 9);
    assert_eq!(lp.enter_count(), enters, "a busy loop entered the kernel");
}

// ---------------------------------------------------------------- E2

#[test]
fn e2_panic_in_job_is_an_error_and_the_thread_survives() {
    quiet_expected_panics();
    let pool = BlockingPool::builder().max_threads(1).build().unwrap();
    let lp = Builder::new().blocking_pool(pool.clone()).build().unwrap();
    lp.run_until_complete(async {
        let before = ringloop::to_thread(|| thread::current().id())
            .await
            .unwrap();
        let err = ringloop::to_thread(|| -> u32 { panic!("{QUIET}: boom") })
            .await
            .unwrap_err();
        assert!(err.is_panic());
        assert_eq!(err.panic_message(), Some(&*format!("{QUIET}: boom")));
        // The one pool thread survived and runs later jobs.
        let after = ringloop::to_thread(|| thread::current().id())
            .await
            .unwrap();
        assert_eq!(before, after);
        assert_eq!(ringloop::to_thread(|| 5).await.unwrap(), 5);
    })
    .unwrap();
    assert_eq!(pool.threads(), 1);
}

// ---------------------------------------------------------------- E3

/// Reports the name of the thread that drops it.
struct DropReporter(mpsc::Sender<Option<String>>);

impl Drop for DropReporter {
    fn drop(&mut self) {
        let _ = self.0.send(thread_name());
    }
}

#[test]
fn e3_dropping_the_await_does_not_stop_the_job_and_drops_the_result() {
    let gate = Gate::default();
    let finished = Arc::new(AtomicBool::new(false));
    let (tx, dropped_on) = mpsc::channel();
    ringloop::run({
        let (gate, finished) = (gate.clone(), finished.clone());
        async move {
            let job = ringloop::to_thread({
                let gate = gate.clone();
                move || {
                    gate.wait();
                    finished.store(true, Ordering::Release);
                    DropReporter(tx)
                }
            });
            ringloop::sleep(Duration::from_millis(5)).await;
            drop(job);
            gate.open();
        }
    })
    .unwrap();
    // run() waited for the job: it finished, and nobody wanted its result,
    // which was dropped on the pool thread.
    assert!(finished.load(Ordering::Acquire));
    let name = dropped_on.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(name.as_deref(), Some("ringloop-blocking"));
}

#[test]
fn e3_dropping_a_finished_task_drops_its_result_there() {
    let (tx, dropped_on) = mpsc::channel();
    let main = thread_name();
    ringloop::run(async move {
        let job = ringloop::to_thread(move || DropReporter(tx));
        while !job.is_finished() {
            ringloop::sleep(Duration::from_millis(1)).await;
        }
        drop(job);
    })
    .unwrap();
    assert_eq!(
        dropped_on.recv_timeout(Duration::from_secs(5)).unwrap(),
        main
    );
}

// ---------------------------------------------------------------- E4

#[test]
fn e4_pool_of_two_never_runs_more_than_two_jobs_and_queues_the_rest() {
    let pool = BlockingPool::builder().max_threads(2).build().unwrap();
    let running = Arc::new(AtomicUsize::new(0));
    let max_seen = Arc::new(AtomicUsize::new(0));
    let gate = Gate::default();
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let (running, max_seen, gate) = (running.clone(), max_seen.clone(), gate.clone());
            pool.spawn(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                max_seen.fetch_max(now, Ordering::SeqCst);
                gate.wait();
                thread::sleep(Duration::from_millis(2));
                running.fetch_sub(1, Ordering::SeqCst);
                i
            })
        })
        .collect();
    // Two jobs run and block; four wait in the queue.
    assert!(eventually(Duration::from_secs(5), || running
        .load(Ordering::SeqCst)
        == 2));
    thread::sleep(Duration::from_millis(20));
    assert_eq!(running.load(Ordering::SeqCst), 2);
    assert_eq!(pool.threads(), 2);
    assert_eq!(pool.queued(), 4);
    gate.open();
    let outs = ringloop::run(async move {
        let mut outs = Vec::new();
        for t in tasks {
            outs.push(t.await.unwrap());
        }
        outs
    })
    .unwrap();
    assert_eq!(outs, [0, 1, 2, 3, 4, 5]);
    assert_eq!(max_seen.load(Ordering::SeqCst), 2);
    assert!(pool.threads() <= 2);
}

#[test]
fn e4_default_pool_size_is_min_32_cpus_plus_4() {
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());
    let pool = BlockingPool::default_pool();
    assert_eq!(pool.max_threads(), (cpus + 4).min(32));
    assert_eq!(pool.idle_timeout(), Duration::from_secs(10));
    assert_eq!(
        BlockingPool::builder().build().unwrap().max_threads(),
        pool.max_threads()
    );
}

#[test]
fn e4_invalid_pool_settings_are_errors() {
    let err = BlockingPool::builder().max_threads(0).build().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("at least one thread"), "{err}");
    let err = BlockingPool::builder()
        .thread_name("a\0b")
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn e4_idle_threads_exit_after_the_idle_timeout() {
    let pool = BlockingPool::builder()
        .max_threads(3)
        .idle_timeout(Duration::from_millis(50))
        .build()
        .unwrap();
    assert_eq!(pool.threads(), 0, "threads start lazily");
    let gate = Gate::default();
    let tasks: Vec<_> = (0..3)
        .map(|_| {
            let gate = gate.clone();
            pool.spawn(move || gate.wait())
        })
        .collect();
    assert_eq!(pool.threads(), 3);
    gate.open();
    ringloop::run(async move {
        for t in tasks {
            t.await.unwrap();
        }
    })
    .unwrap();
    assert!(
        eventually(Duration::from_secs(5), || pool.threads() == 0),
        "threads did not idle out: {pool:?}"
    );
    // The pool starts a thread again for the next job.
    let v = ringloop::run(pool.spawn(|| 3)).unwrap().unwrap();
    assert_eq!(v, 3);
    assert!(pool.threads() <= 1);
}

#[test]
fn e4_user_pool_given_to_the_builder_is_the_one_used() {
    let pool = BlockingPool::builder()
        .max_threads(1)
        .thread_name("user-pool")
        .build()
        .unwrap();
    let lp = Builder::new().blocking_pool(pool.clone()).build().unwrap();
    let names = lp
        .run_until_complete(async {
            let a = ringloop::to_thread(thread_name).await.unwrap();
            let b = ringloop::spawn_blocking(thread_name).await.unwrap();
            let c = Handle::current()
                .run_in_executor(thread_name)
                .unwrap()
                .await
                .unwrap();
            [a, b, c]
        })
        .unwrap();
    let d = lp
        .run_until_complete(lp.run_in_executor(thread_name).unwrap())
        .unwrap()
        .unwrap();
    for n in names.iter().chain([&d]) {
        assert_eq!(n.as_deref(), Some("user-pool"));
    }
    // Another loop still uses the default pool.
    let other = ringloop::run(ringloop::to_thread(thread_name))
        .unwrap()
        .unwrap();
    assert_eq!(other.as_deref(), Some("ringloop-blocking"));
}

// ---------------------------------------------------------------- shutdown

#[test]
fn run_waits_for_a_running_job() {
    let finished = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    ringloop::run({
        let finished = finished.clone();
        async move {
            // Neither awaited nor kept: run() still waits for it.
            drop(ringloop::to_thread(move || {
                thread::sleep(Duration::from_millis(100));
                finished.store(true, Ordering::Release);
            }));
        }
    })
    .unwrap();
    let took = t0.elapsed();
    assert!(finished.load(Ordering::Acquire));
    assert!(took >= Duration::from_millis(100), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[test]
fn shutdown_default_executor_gives_up_after_its_timeout() {
    let lp = Builder::new()
        .blocking_shutdown_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    assert_eq!(lp.blocking_shutdown_timeout(), Duration::from_millis(100));
    let gate = Gate::default();
    let job = {
        let gate = gate.clone();
        lp.run_in_executor(move || gate.wait()).unwrap()
    };
    drop(job);
    let t0 = Instant::now();
    let left = lp
        .shutdown_default_executor(Some(lp.blocking_shutdown_timeout()))
        .unwrap();
    let took = t0.elapsed();
    assert_eq!(left, 1);
    assert!(took >= Duration::from_millis(100), "{took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    // Released, the job finishes and the next shutdown finds nothing left.
    gate.open();
    assert_eq!(
        lp.shutdown_default_executor(Some(Duration::from_secs(5)))
            .unwrap(),
        0
    );
    lp.close().unwrap();
}

#[test]
fn run_gives_up_on_a_stuck_job_after_5_s_without_hanging() {
    let gate = Gate::default();
    let t0 = Instant::now();
    ringloop::run({
        let gate = gate.clone();
        async move {
            drop(ringloop::to_thread(move || gate.wait()));
        }
    })
    .unwrap();
    let took = t0.elapsed();
    // Release the pool thread the job held.
    gate.open();
    assert!(took >= Duration::from_secs(5), "{took:?}");
    assert!(took < Duration::from_secs(15), "{took:?}");
}

#[test]
fn builder_run_waits_only_as_long_as_its_shutdown_timeout() {
    let gate = Gate::default();
    let t0 = Instant::now();
    let out = Builder::new()
        .blocking_shutdown_timeout(Duration::from_millis(100))
        .run({
            let gate = gate.clone();
            async move {
                drop(ringloop::to_thread(move || gate.wait()));
                "done"
            }
        })
        .unwrap();
    let took = t0.elapsed();
    gate.open();
    assert_eq!(out, "done");
    assert!(took >= Duration::from_millis(100), "{took:?}");
    assert!(took < Duration::from_secs(4), "{took:?}");
}

// ---------------------------------------------------------------- stress

#[test]
fn e2_stress_10000_jobs_every_7th_panics() {
    quiet_expected_panics();
    const JOBS: usize = 10_000;
    let (ok, panicked) = ringloop::run(async {
        let tasks: Vec<_> = (0..JOBS)
            .map(|i| {
                ringloop::to_thread(move || {
                    if i % 7 == 0 {
                        panic!("{QUIET}: job {i}");
                    }
                    i * 2
                })
            })
            .collect();
        let (mut ok, mut panicked) = (0, 0);
        for (i, t) in tasks.into_iter().enumerate() {
            match t.await {
                Ok(v) => {
                    assert_eq!(v, i * 2);
                    assert_ne!(i % 7, 0);
                    ok += 1;
                }
                Err(e) => {
                    assert_eq!(i % 7, 0, "job {i} failed: {e}");
                    assert_eq!(e.panic_message(), Some(&*format!("{QUIET}: job {i}")));
                    panicked += 1;
                }
            }
        }
        (ok, panicked)
    })
    .unwrap();
    let expected_panics = JOBS.div_ceil(7);
    assert_eq!(panicked, expected_panics);
    assert_eq!(ok, JOBS - expected_panics);
}
