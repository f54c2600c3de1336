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

/// The value of `--scale N` (or `--scale=N`): every delay is divided by it.
fn scale() -> u32 {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = args
        .iter()
        .enumerate()
        .find_map(|(i, a)| match a.strip_prefix("--scale") {
            Some("") => args.get(i + 1).cloned(),
            Some(v) => v.strip_prefix('=').map(str::to_owned),
            None => None,
        });
    match value {
        None => 1,
        Some(v) => match v.parse() {
            Ok(n) if n > 0 => n,
            _ => {
                eprintln!("--scale takes a positive integer, not {v:?}");
                std::process::exit(2)
            }
        },
    }
}

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
