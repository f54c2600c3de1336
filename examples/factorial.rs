//! Port of the `asyncio.gather` example from the asyncio documentation:
//!
//! ```python
//! async def factorial(name, number):
//!     f = 1
//!     for i in range(2, number + 1):
//!         print(f"Task {name}: Compute factorial({number}), currently i={i}...")
//!         await asyncio.sleep(1)
//!         f *= i
//!     print(f"Task {name}: factorial({number}) = {f}")
//!     return f
//!
//! async def main():
//!     # Schedule three calls *concurrently*:
//!     L = await asyncio.gather(
//!         factorial("A", 2),
//!         factorial("B", 3),
//!         factorial("C", 4),
//!     )
//!     print(L)
//!
//! asyncio.run(main())
//! ```
//!
//! The three tasks interleave their steps, one second apart, and the
//! results come back in argument order: `[2, 6, 24]`.
//!
//! Run it with `cargo run --release --example factorial`; add
//! `-- --scale 100` to divide every delay by 100.

use std::time::Duration;

#[path = "common/scale.rs"]
mod scale;
use scale::scale;

async fn factorial(name: &'static str, number: u64, step: Duration) -> u64 {
    let mut f = 1;
    for i in 2..=number {
        println!("Task {name}: Compute factorial({number}), currently i={i}...");
        ringloop::sleep(step).await;
        f *= i;
    }
    println!("Task {name}: factorial({number}) = {f}");
    f
}

fn main() -> std::io::Result<()> {
    let step = Duration::from_secs(1) / scale();
    ringloop::run(async move {
        // Schedule three calls *concurrently*:
        let results = ringloop::gather([
            factorial("A", 2, step),
            factorial("B", 3, step),
            factorial("C", 4, step),
        ])
        .await
        .expect("no factorial fails");
        println!("{results:?}");
    })
}
