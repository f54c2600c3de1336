//! Port of the asyncio program that consumes `add` coroutines with
//! `as_completed`, printing each result as soon as it is ready:
//!
//! ```python
//! async def add(x, y):
//!     await asyncio.sleep((x + y) / 10)
//!     return x + y
//!
//! async def main():
//!     pairs = [(2, 3), (4, 5), (5, 5), (7, 2)]
//!     for next_done in asyncio.as_completed([add(x, y) for x, y in pairs]):
//!         print(await next_done)
//!
//! asyncio.run(main())
//! ```
//!
//! Each addition sleeps (x + y) / 10 seconds, so the results arrive in
//! completion order, 5, 9, 9, 10, not in argument order, 5, 9, 10, 9.
//!
//! Run it with `cargo run --release --example as_completed_add`; add
//! `-- --scale 100` to divide every delay by 100.

use std::time::{Duration, Instant};

use futures_util::StreamExt;

#[path = "common/scale.rs"]
mod scale;
use scale::scale;

async fn add(x: u32, y: u32, scale: u32) -> (u32, u32, u32) {
    ringloop::sleep(Duration::from_millis(100 * u64::from(x + y)) / scale).await;
    (x, y, x + y)
}

fn main() -> std::io::Result<()> {
    let scale = scale();
    let pairs = [(2, 3), (4, 5), (5, 5), (7, 2)];
    ringloop::run(async move {
        let start = Instant::now();
        let mut results = ringloop::as_completed(pairs.map(|(x, y)| add(x, y, scale)), None);
        while let Some(next_done) = results.next().await {
            let (x, y, sum) = next_done.expect("no addition fails");
            println!(
                "add({x}, {y}) = {sum}    (after {} ms)",
                start.elapsed().as_millis()
            );
        }
    })
}
