//! Port of the asyncio program that creates a fast and a slow task, then
//! awaits them in turn:
//!
//! ```python
//! async def add(x, y, delay):
//!     await asyncio.sleep(delay)
//!     return x + y
//!
//! async def main():
//!     start = time.perf_counter()
//!     fast = asyncio.create_task(add(1, 2, 3))
//!     slow = asyncio.create_task(add(3, 4, 5))
//!     print(f"fast: {await fast}")
//!     print(f"slow: {await slow}")
//!     print(f"Took {time.perf_counter() - start:.0f} s")
//!
//! asyncio.run(main())
//! ```
//!
//! Both tasks run from the moment they are created, so awaiting the slow
//! one after the fast one still takes about 5 s in all, not 8.
//!
//! Run it with `cargo run --release --example fast_slow`; add
//! `-- --scale 100` to divide every delay by 100.

use std::time::{Duration, Instant};

#[path = "common/scale.rs"]
mod scale;
use scale::scale;

async fn add(x: i32, y: i32, delay: Duration) -> i32 {
    ringloop::sleep(delay).await;
    x + y
}

fn main() -> std::io::Result<()> {
    let scale = scale();
    ringloop::run(async move {
        let start = Instant::now();
        let fast = ringloop::spawn(add(1, 2, Duration::from_secs(3) / scale));
        let slow = ringloop::spawn(add(3, 4, Duration::from_secs(5) / scale));
        println!("fast: {}", fast.await.expect("fast task"));
        println!("slow: {}", slow.await.expect("slow task"));
        println!("Took {} ms", start.elapsed().as_millis());
    })
}
