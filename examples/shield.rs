//! Port of the asyncio program that protects a task from a `wait_for`
//! timeout with `shield`:
//!
//! ```python
//! async def slow_operation():
//!     print("slow operation started")
//!     await asyncio.sleep(2)
//!     print("slow operation finished")
//!     return 42
//!
//! async def main():
//!     task = asyncio.create_task(slow_operation())
//!     try:
//!         result = await asyncio.wait_for(asyncio.shield(task), timeout=1)
//!     except TimeoutError:
//!         print("timed out waiting; the shielded task keeps running")
//!         result = await task
//!     print(f"result: {result}")
//!
//! asyncio.run(main())
//! ```
//!
//! `wait_for` gives up after one second and cancels what it awaits, the
//! shield; the task inside the shield is not cancelled, finishes after two
//! seconds and prints, and its result is still available.
//!
//! In ringloop, as in asyncio, `main` keeps the task: it shields a borrow
//! of it (`shield(&mut task)`), and awaits the task itself after the
//! timeout.
//!
//! Run it with `cargo run --release --example shield`; add `-- --scale 100`
//! to divide every delay by 100.

use std::time::{Duration, Instant};

#[path = "common/scale.rs"]
mod scale;
use scale::scale;

async fn slow_operation(delay: Duration) -> i32 {
    println!("slow operation started");
    ringloop::sleep(delay).await;
    println!("slow operation finished");
    42
}

fn main() -> std::io::Result<()> {
    let scale = scale();
    ringloop::run(async move {
        let start = Instant::now();
        let mut task = ringloop::spawn(slow_operation(Duration::from_secs(2) / scale));
        let timeout = Some(Duration::from_secs(1) / scale);
        let value = match ringloop::wait_for(ringloop::shield(&mut task), timeout).await {
            Ok(out) => out.expect("the task was not cancelled"),
            Err(_timeout) => {
                println!(
                    "timed out waiting after {} ms; the shielded task keeps running",
                    start.elapsed().as_millis()
                );
                task.await.expect("the shielded task finishes")
            }
        };
        println!("result: {value} (after {} ms)", start.elapsed().as_millis());
    })
}
