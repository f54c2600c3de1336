//! Port of the `asyncio.wait_for` example from the asyncio documentation:
//!
//! ```python
//! async def eternity():
//!     # Sleep for one hour
//!     await asyncio.sleep(3600)
//!     print('yay!')
//!
//! async def main():
//!     # Wait for at most 1 second
//!     try:
//!         await asyncio.wait_for(eternity(), timeout=1.0)
//!     except TimeoutError:
//!         print('timeout!')
//!
//! asyncio.run(main())
//! ```
//!
//! Prints `timeout!` after one second; `yay!` is never printed (the
//! sleeping future is cancelled, i.e. dropped, when the timeout fires).
//!
//! Run it with `cargo run --release --example wait_for_eternity`; add
//! `-- --scale 100` to divide every delay by 100.

use std::time::Duration;

#[path = "common/scale.rs"]
mod scale;
use scale::scale;

async fn eternity(scale: u32) {
    // Sleep for one hour.
    ringloop::sleep(Duration::from_secs(3600) / scale).await;
    println!("yay!");
}

fn main() -> std::io::Result<()> {
    let scale = scale();
    ringloop::run(async move {
        // Wait for at most 1 second.
        match ringloop::wait_for(eternity(scale), Some(Duration::from_secs(1) / scale)).await {
            Ok(()) => {}
            Err(ringloop::TimeoutError { .. }) => println!("timeout!"),
        }
    })
}
