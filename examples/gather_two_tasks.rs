//! Port of the asyncio "gather two tasks" program:
//!
//! ```python
//! async def task(name, delay):
//!     print(f"Started {name}")
//!     await asyncio.sleep(delay)
//!     return name
//!
//! async def main():
//!     start = time.perf_counter()
//!     results = await asyncio.gather(task("A", 12), task("B", 1))
//!     print(results)
//!     print(f"Took {time.perf_counter() - start:.0f} s")
//!
//! asyncio.run(main())
//! ```
//!
//! The two children run concurrently, so it takes about 12 s, not 13.
//!
//! Run it with `cargo run --release --example gather_two_tasks`; add
//! `-- --scale 100` to divide every delay by 100 (about 120 ms).

use std::time::{Duration, Instant};

#[path = "common/scale.rs"]
mod scale;
use scale::scale;

async fn task(name: &'static str, delay: Duration) -> &'static str {
    println!("Started {name}");
    ringloop::sleep(delay).await;
    name
}

fn main() -> std::io::Result<()> {
    let scale = scale();
    ringloop::run(async move {
        let start = Instant::now();
        let results = ringloop::gather([
            task("A", Duration::from_secs(12) / scale),
            task("B", Duration::from_secs(1) / scale),
        ])
        .await
        .expect("neither task fails");
        println!("{results:?}");
        println!("Took {} ms", start.elapsed().as_millis());
    })
}
