//! Port of the two "display the current date" examples from the asyncio
//! documentation, which print the date every second for five seconds.
//!
//! By default, the callback version (`loop.call_soon` / `call_later`,
//! `run_forever`, `stop`):
//!
//! ```python
//! def display_date(end_time, loop):
//!     print(datetime.datetime.now())
//!     if (loop.time() + 1.0) < end_time:
//!         loop.call_later(1, display_date, end_time, loop)
//!     else:
//!         loop.stop()
//!
//! loop = asyncio.new_event_loop()
//!
//! # Schedule the first call to display_date()
//! end_time = loop.time() + 5.0
//! loop.call_soon(display_date, end_time, loop)
//!
//! # Blocking call interrupted by loop.stop()
//! try:
//!     loop.run_forever()
//! finally:
//!     loop.close()
//! ```
//!
//! With `--coroutine`, the coroutine version (a sleep loop):
//!
//! ```python
//! async def display_date():
//!     loop = asyncio.get_running_loop()
//!     end_time = loop.time() + 5.0
//!     while True:
//!         print(datetime.datetime.now())
//!         if (loop.time() + 1.0) >= end_time:
//!             break
//!         await asyncio.sleep(1)
//!
//! asyncio.run(display_date())
//! ```
//!
//! Both print five timestamps, one second apart. The timestamps are UTC
//! (`datetime.datetime.now()` prints local time; this example has no time
//! zone database).
//!
//! Run it with `cargo run --release --example display_date`; add
//! `-- --scale 100` to divide every delay by 100, and `--coroutine` for the
//! coroutine version.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ringloop::{EventLoop, Handle};

#[path = "common/scale.rs"]
mod scale;
use scale::scale;

/// The wall clock as `YYYY-MM-DD HH:MM:SS.ffffff` (UTC), like Python's
/// `str(datetime.datetime.now())`.
fn now_string() -> String {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since_epoch.as_secs();
    let days = i64::try_from(secs / 86_400).expect("a date before year 25 million");
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:06}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        since_epoch.subsec_micros()
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The callback: prints the date, then re-schedules itself one second
/// later, or stops the loop once `end_time` is near.
fn display_date(end_time: ringloop::time::Instant, step: Duration, lp: Handle) {
    println!("{}", now_string());
    if lp.time() + step < end_time {
        let next = lp.clone();
        lp.call_later(step, move || display_date(end_time, step, next))
            .expect("called on the running loop");
    } else {
        lp.stop().expect("called on the running loop");
    }
}

fn callback_version(step: Duration) -> std::io::Result<()> {
    let lp = EventLoop::new()?;

    // Schedule the first call to display_date().
    let end_time = lp.time() + step * 5;
    let handle = lp.handle();
    lp.call_soon(move || display_date(end_time, step, handle))?;

    // Blocking call interrupted by stop().
    let ran = lp.run_forever();
    lp.close()?;
    Ok(ran?)
}

async fn display_date_coroutine(step: Duration) {
    let lp = Handle::current();
    let end_time = lp.time() + step * 5;
    loop {
        println!("{}", now_string());
        if lp.time() + step >= end_time {
            break;
        }
        ringloop::sleep(step).await;
    }
}

fn main() -> std::io::Result<()> {
    let step = Duration::from_secs(1) / scale();
    if std::env::args().any(|a| a == "--coroutine") {
        ringloop::run(display_date_coroutine(step))
    } else {
        callback_version(step)
    }
}
