//! Port of the asyncio program that bounds a slow call with `wait_for` and
//! answers with a fallback payload when it times out:
//!
//! ```python
//! async def add(x, y):
//!     delay = random.randint(1, 5)
//!     print(f"add({x}, {y}) will take {delay} s")
//!     await asyncio.sleep(delay)
//!     return x + y
//!
//! async def main():
//!     try:
//!         result = await asyncio.wait_for(add(3, 4), timeout=3)
//!         print({"result": result, "fallback": False})
//!     except TimeoutError:
//!         print({"result": None, "fallback": True, "reason": "timed out after 3 s"})
//!
//! asyncio.run(main())
//! ```
//!
//! The delay is drawn from a tiny xorshift generator seeded from the clock,
//! or from `--seed N` to make a run reproducible (the delay is printed, so
//! you can see which branch to expect: more than 3 s means the fallback).
//!
//! Run it with `cargo run --release --example wait_for_fallback`; add
//! `-- --scale 100` to divide every delay by 100, and `--seed N` to pick
//! the random delay.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[path = "common/scale.rs"]
mod scale;
use scale::scale;

/// The value of `--seed N` (or `--seed=N`), if given.
fn seed_arg() -> Option<u64> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = args
        .iter()
        .enumerate()
        .find_map(|(i, a)| match a.strip_prefix("--seed") {
            Some("") => args.get(i + 1).cloned(),
            Some(v) => v.strip_prefix('=').map(str::to_owned),
            None => None,
        })?;
    match value.parse() {
        Ok(n) => Some(n),
        Err(_) => {
            eprintln!("--seed takes an unsigned integer, not {value:?}");
            std::process::exit(2)
        }
    }
}

/// xorshift64 (Marsaglia): plenty for picking a delay.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> XorShift {
        // The state must not be zero; mix the seed so small seeds differ.
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform-enough integer in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

async fn add(x: i32, y: i32, delay_s: u64, scale: u32) -> i32 {
    println!("add({x}, {y}) will take {delay_s} s");
    ringloop::sleep(Duration::from_secs(delay_s) / scale).await;
    x + y
}

fn main() -> std::io::Result<()> {
    let scale = scale();
    let seed = seed_arg().unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let delay_s = XorShift::new(seed).range(1, 5);
    ringloop::run(async move {
        let timeout = Duration::from_secs(3) / scale;
        match ringloop::wait_for(add(3, 4, delay_s, scale), Some(timeout)).await {
            Ok(result) => println!(r#"{{"result": {result}, "fallback": false}}"#),
            Err(_timeout) => {
                println!(r#"{{"result": null, "fallback": true, "reason": "timed out after 3 s"}}"#)
            }
        }
    })
}
