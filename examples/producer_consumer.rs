//! Producers and consumers over a bounded queue: a port of the example in
//! asyncio's `Queue` docs, with producers added in front of the bounded
//! queue.
//!
//! ```python
//! async def worker(name, queue):
//!     while True:
//!         sleep_for = await queue.get()
//!         await asyncio.sleep(sleep_for)
//!         queue.task_done()
//!         print(f'{name} has slept for {sleep_for:.2f} seconds')
//!
//! async def main():
//!     queue = asyncio.Queue(maxsize=5)
//!     ...  # producers put 20 random sleeps
//!     tasks = [asyncio.create_task(worker(f'worker-{i}', queue)) for i in range(3)]
//!     await queue.join()
//!     for task in tasks:
//!         task.cancel()
//!     await asyncio.gather(*tasks, return_exceptions=True)
//! ```
//!
//! Two producers put 20 random sleeps (50–1000 ms, divided by `--scale`)
//! into a queue of 5 slots, so they wait whenever the consumers fall behind;
//! three workers take them, sleep, and mark them done. `join` returns once
//! every sleep was marked done; then the workers are cancelled.
//!
//! Run it with `cargo run --release --example producer_consumer`; add
//! `-- --scale 10` to divide every delay by 10.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use ringloop::sync::Queue;

#[path = "common/scale.rs"]
mod scale;
use scale::scale;

const JOBS: usize = 20;
const PRODUCERS: usize = 2;
const WORKERS: usize = 3;

/// xorshift64: `random.uniform` without a crate.
struct Rng(u64);

impl Rng {
    fn uniform_ms(&mut self, low: u64, high: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        low + self.0 % (high - low + 1)
    }
}

async fn producer(name: String, queue: Queue<Duration>, sleeps: Vec<Duration>) {
    for sleep_for in sleeps {
        // Waits while the queue holds 5 sleeps.
        queue
            .put(sleep_for)
            .await
            .expect("the queue is never shut down");
    }
    println!("{name} has put all its sleeps");
}

async fn worker(name: String, queue: Queue<Duration>, slept: Rc<Cell<Duration>>) {
    loop {
        let sleep_for = queue.get().await.expect("the queue is never shut down");
        ringloop::sleep(sleep_for).await;
        queue.task_done().expect("one task_done per item");
        slept.set(slept.get() + sleep_for);
        println!(
            "{name} has slept for {:.2} seconds",
            sleep_for.as_secs_f64()
        );
    }
}

fn main() -> std::io::Result<()> {
    let scale = scale();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let sleeps: Vec<Duration> = (0..JOBS)
        .map(|_| Duration::from_millis(rng.uniform_ms(50, 1000)) / scale)
        .collect();
    let total_sleep_time: Duration = sleeps.iter().sum();

    ringloop::run(async move {
        let queue = Queue::new(5);
        let slept = Rc::new(Cell::new(Duration::ZERO));
        let producers: Vec<_> = sleeps
            .chunks(JOBS / PRODUCERS)
            .enumerate()
            .map(|(i, chunk)| {
                let name = format!("producer-{i}");
                ringloop::spawn(producer(name, queue.clone(), chunk.to_vec()))
            })
            .collect();
        let workers: Vec<_> = (0..WORKERS)
            .map(|i| {
                let name = format!("worker-{i}");
                ringloop::spawn(worker(name, queue.clone(), slept.clone()))
            })
            .collect();

        let started_at = Instant::now();
        for p in producers {
            p.await.expect("producers do not fail");
        }
        queue.join().await;
        let total_slept_for = started_at.elapsed();

        // Cancel the workers, then wait until they are cancelled.
        for w in &workers {
            w.cancel();
        }
        for w in workers {
            assert!(w.await.unwrap_err().is_cancelled());
        }

        println!("====");
        println!(
            "{WORKERS} workers slept in parallel for {:.2} seconds",
            total_slept_for.as_secs_f64()
        );
        println!(
            "total expected sleep time: {:.2} seconds",
            total_sleep_time.as_secs_f64()
        );
        assert_eq!(slept.get(), total_sleep_time);
    })
}
