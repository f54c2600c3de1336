//! A watchdog thread: an input that runs longer than [`LIMIT`] is a hang,
//! reported as such (the process aborts, libFuzzer saves the input), long
//! before libFuzzer's own `-timeout` (20 minutes by default).

use std::sync::Mutex;
use std::sync::Once;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(30);

static STARTED: Mutex<Option<Instant>> = Mutex::new(None);

fn set(v: Option<Instant>) {
    *STARTED.lock().unwrap_or_else(|e| e.into_inner()) = v;
}

/// Marks the start of an input (starting the thread the first time); the
/// returned guard marks its end when dropped.
pub fn arm() -> Armed {
    static THREAD: Once = Once::new();
    THREAD.call_once(|| {
        std::thread::spawn(|| {
            loop {
                std::thread::sleep(Duration::from_secs(1));
                let started = *STARTED.lock().unwrap_or_else(|e| e.into_inner());
                if started.is_some_and(|t| t.elapsed() > LIMIT) {
                    eprintln!("hang: one input has run for more than {LIMIT:?}");
                    std::process::abort();
                }
            }
        });
    });
    set(Some(Instant::now()));
    Armed(())
}

/// The input is running.
pub struct Armed(());

impl Drop for Armed {
    fn drop(&mut self) {
        set(None);
    }
}
