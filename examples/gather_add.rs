//! Port of the asyncio program that gathers `add` coroutines, first as
//! plain coroutines, then as tasks created beforehand:
//!
//! ```python
//! async def add(x, y):
//!     await asyncio.sleep(1)
//!     return x + y
//!
//! async def main():
//!     pairs = [(2, 3), (4, 5), (5, 5), (7, 2)]
//!     print(await asyncio.gather(*(add(x, y) for x, y in pairs)))
//!     tasks = [asyncio.create_task(add(x, y)) for x, y in pairs]
//!     print(await asyncio.gather(*tasks))
//!
//! asyncio.run(main())
//! ```
//!
//! Each line prints `[5, 9, 10, 9]` after about one second (the additions
//! run concurrently).
//!
//! Run it with `cargo run --release --example gather_add`; add
//! `-- --scale 100` to divide every delay by 100.

use std::time::Duration;

#[path = "common/scale.rs"]
mod scale;
use scale::scale;

async fn add(x: i32, y: i32, delay: Duration) -> i32 {
    ringloop::sleep(delay).await;
    x + y
}

fn main() -> std::io::Result<()> {
    let delay = Duration::from_secs(1) / scale();
    let pairs = [(2, 3), (4, 5), (5, 5), (7, 2)];
    ringloop::run(async move {
        // asyncio.gather(*coroutines): gather spawns each future as a task.
        let sums = ringloop::gather(pairs.map(|(x, y)| add(x, y, delay)))
            .await
            .expect("no addition fails");
        println!("{sums:?}");

        // asyncio.gather(*tasks): the tasks exist (and are scheduled) first.
        let tasks = pairs.map(|(x, y)| ringloop::spawn(add(x, y, delay)));
        let sums = ringloop::gather_tasks(tasks)
            .await
            .expect("no addition fails");
        println!("{sums:?}");
    })
}
