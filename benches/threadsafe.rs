//! Waking a loop from another thread, ringloop beside tokio. The loop (or
//! tokio `current_thread` runtime, IO and time drivers enabled as in a
//! server) runs on its own thread with nothing else to do, so every wake
//! finds it parked in the kernel; the benchmark thread measures round
//! trips: wake the loop, have it reply through a `std::sync::mpsc`
//! channel, wait for the reply.
//!
//! - `threadsafe_call`: ringloop `Handle::call_soon_threadsafe(f)` vs tokio
//!   `Handle::spawn(async { f })` (the closest tokio equivalent: tokio has
//!   no bare cross-thread callback).
//! - `threadsafe_wake`: a task parked on a waker, woken by the other thread
//!   (ringloop: a task's `Waker` stored in a mutex; `tokio`: `Notify`,
//!   tokio's idiom; `tokio_mutex_waker`: the same waker-in-a-mutex as the
//!   ringloop row, on the tokio runtime, the like-for-like twin).
//!
//! Run: `cargo bench --bench threadsafe`.

use std::future::poll_fn;
use std::sync::{Arc, Mutex, mpsc};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};

/// A ringloop loop on its own thread until dropped.
struct RingloopThread {
    handle: ringloop::Handle,
    stop: Arc<Flag>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RingloopThread {
    /// Starts the loop with `main` spawned as a task on it.
    fn start<F, Fut>(main: F) -> RingloopThread
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + 'static,
    {
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(Flag::default());
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let lp = ringloop::EventLoop::new().expect("io_uring");
            tx.send(lp.handle()).unwrap();
            lp.run_until_complete(async move {
                ringloop::spawn(main()).detach();
                s.wait().await;
            })
            .unwrap();
        });
        RingloopThread {
            handle: rx.recv().unwrap(),
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for RingloopThread {
    fn drop(&mut self) {
        self.stop.notify();
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

fn tokio_thread() -> (
    tokio::runtime::Handle,
    std::thread::JoinHandle<()>,
    tokio::sync::oneshot::Sender<()>,
) {
    let (tx, rx) = mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let t = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        tx.send(rt.handle().clone()).unwrap();
        rt.block_on(async move {
            let _ = stop_rx.await;
        });
    });
    (rx.recv().unwrap(), t, stop_tx)
}

fn threadsafe_call(c: &mut Criterion) {
    let mut g = c.benchmark_group("threadsafe_call");
    {
        let lt = RingloopThread::start(|| async {});
        let (reply_tx, reply_rx) = mpsc::channel::<()>();
        g.bench_function("ringloop", |b| {
            b.iter_custom(|iters| {
                let t0 = Instant::now();
                for _ in 0..iters {
                    let tx = reply_tx.clone();
                    lt.handle
                        .call_soon_threadsafe(move || tx.send(()).unwrap())
                        .unwrap();
                    reply_rx.recv().unwrap();
                }
                t0.elapsed()
            })
        });
    }
    {
        let (h, t, stop) = tokio_thread();
        let (reply_tx, reply_rx) = mpsc::channel::<()>();
        g.bench_function("tokio", |b| {
            b.iter_custom(|iters| {
                let t0 = Instant::now();
                for _ in 0..iters {
                    let tx = reply_tx.clone();
                    drop(h.spawn(async move { tx.send(()).unwrap() }));
                    reply_rx.recv().unwrap();
                }
                t0.elapsed()
            })
        });
        let _ = stop.send(());
        t.join().unwrap();
    }
    g.finish();
}

/// A one-waiter notification: the waiting task's waker in a mutex.
#[derive(Default)]
struct Flag {
    state: Mutex<(bool, Option<Waker>)>,
}

impl Flag {
    fn notify(&self) {
        let w = {
            let mut st = self.state.lock().unwrap();
            st.0 = true;
            st.1.take()
        };
        if let Some(w) = w {
            w.wake();
        }
    }

    async fn wait(&self) {
        poll_fn(|cx| {
            let mut st = self.state.lock().unwrap();
            if std::mem::take(&mut st.0) {
                Poll::Ready(())
            } else {
                st.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
    }
}

/// `threadsafe_wake/tokio_mutex_waker`: the ringloop row's mechanism (a
/// waker in a mutex) on the tokio runtime.
fn wake_tokio_mutex_waker(g: &mut BenchmarkGroup<'_, WallTime>) {
    let (h, t, stop) = tokio_thread();
    let flag = Arc::new(Flag::default());
    let (reply_tx, reply_rx) = mpsc::channel::<()>();
    let f = flag.clone();
    h.spawn(async move {
        loop {
            f.wait().await;
            if reply_tx.send(()).is_err() {
                return;
            }
        }
    });
    g.bench_function("tokio_mutex_waker", |b| {
        b.iter_custom(|iters| {
            let t0 = Instant::now();
            for _ in 0..iters {
                flag.notify();
                reply_rx.recv().unwrap();
            }
            t0.elapsed()
        })
    });
    drop(reply_rx);
    flag.notify();
    let _ = stop.send(());
    t.join().unwrap();
}

fn threadsafe_wake(c: &mut Criterion) {
    let mut g = c.benchmark_group("threadsafe_wake");
    {
        let flag = Arc::new(Flag::default());
        let (reply_tx, reply_rx) = mpsc::channel::<()>();
        let f = flag.clone();
        let lt = RingloopThread::start(move || async move {
            loop {
                f.wait().await;
                if reply_tx.send(()).is_err() {
                    return;
                }
            }
        });
        g.bench_function("ringloop", |b| {
            b.iter_custom(|iters| {
                let t0 = Instant::now();
                for _ in 0..iters {
                    flag.notify();
                    reply_rx.recv().unwrap();
                }
                t0.elapsed()
            })
        });
        drop(reply_rx);
        flag.notify();
        drop(lt);
    }
    wake_tokio_mutex_waker(&mut g);
    {
        let (h, t, stop) = tokio_thread();
        let notify = Arc::new(tokio::sync::Notify::new());
        let (reply_tx, reply_rx) = mpsc::channel::<()>();
        let n = notify.clone();
        h.spawn(async move {
            loop {
                n.notified().await;
                if reply_tx.send(()).is_err() {
                    return;
                }
            }
        });
        g.bench_function("tokio", |b| {
            b.iter_custom(|iters| {
                let t0 = Instant::now();
                for _ in 0..iters {
                    notify.notify_one();
                    reply_rx.recv().unwrap();
                }
                t0.elapsed()
            })
        });
        drop(reply_rx);
        notify.notify_one();
        let _ = stop.send(());
        t.join().unwrap();
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = threadsafe_call, threadsafe_wake
}
criterion_main!(benches);
