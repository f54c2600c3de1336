//! The timing wheel against a `BTreeMap` model: random arming (past, before
//! the wheel existed, µs to days ahead), sleep removal and polling, callback
//! cancellation, time steps and `next_deadline` queries.
//!
//! Checked at every step: each expire wakes exactly the sleeps whose
//! deadline has passed (each once, none early, none late); it returns the
//! uncancelled callbacks due, in (deadline, arming) order, deadlines from
//! before the wheel's origin included; a fired sleep
//! polls ready once, an unfired one pending; `next_deadline` is never later
//! than the nearest armed deadline; the slot count equals the model's.
#![no_main]

use std::collections::BTreeMap;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use ringloop::__fuzz::{CallbackKey, SleepKey, TimerWheel};

/// Times are capped well inside `Instant`'s range.
const HORIZON: u64 = 1 << 44;

#[derive(Arbitrary, Debug, Clone, Copy)]
enum When {
    /// Already past (or now): fires at the next expire.
    Past(u16),
    /// Before the wheel existed (up to ~200 days): fires at the next expire,
    /// still in deadline order.
    BeforeOrigin(u64),
    Micros(u8),
    Millis(u16),
    /// Up to ~71 minutes.
    Far(u32),
    /// Up to ~200 days: through the overflow heap.
    VeryFar(u64),
}

#[derive(Arbitrary, Debug)]
enum Op {
    Sleep(When),
    Callback(When),
    RemoveSleep(u16),
    PollSleep(u16),
    CancelCallback(u16),
    Advance(When),
    NextDeadline,
}

struct Sleep {
    key: SleepKey,
    /// max(deadline, time when armed): when it must fire.
    due: u64,
    fired: bool,
}

struct Cb {
    key: CallbackKey,
    /// max(deadline, time when armed): when it must fire.
    due: u64,
    /// The deadline asked for (negative: before the wheel's origin):
    /// callbacks fire in this order (asyncio pops its timer heap by `when`,
    /// past or not), then in arming order.
    at: i64,
    cancelled: bool,
}

/// The deadline `w` asks for, seen from `now` (negative: before the origin).
fn ahead(now: u64, w: When) -> i64 {
    let d = match w {
        When::Past(b) => return now.saturating_sub(u64::from(b)) as i64,
        When::BeforeOrigin(n) => return -((n % HORIZON) as i64) - 1,
        When::Micros(n) => u64::from(n),
        When::Millis(n) => u64::from(n) * 1000,
        When::Far(n) => u64::from(n),
        When::VeryFar(n) => n % HORIZON,
    };
    (now + d).min(HORIZON) as i64
}

/// When a timer armed at `now` for `at` must fire.
fn due(now: u64, at: i64) -> u64 {
    u64::try_from(at).unwrap_or(0).max(now)
}

fn nth_key<V>(m: &BTreeMap<u64, V>, i: u16) -> Option<u64> {
    if m.is_empty() {
        return None;
    }
    m.keys().nth(usize::from(i) % m.len()).copied()
}

fuzz_target!(|ops: Vec<Op>| {
    let mut wheel = TimerWheel::new();
    let mut now: u64 = 0;
    let mut next_id: u64 = 0;
    let mut sleeps: BTreeMap<u64, Sleep> = BTreeMap::new();
    let mut cbs: BTreeMap<u64, Cb> = BTreeMap::new();
    for op in ops.into_iter().take(4096) {
        match op {
            Op::Sleep(w) => {
                let at = ahead(now, w);
                let id = next_id;
                next_id += 1;
                let key = wheel.insert_sleep(at, id);
                let due = due(now, at);
                sleeps.insert(
                    id,
                    Sleep {
                        key,
                        due,
                        fired: false,
                    },
                );
            }
            Op::Callback(w) => {
                let at = ahead(now, w);
                let id = next_id;
                next_id += 1;
                let key = wheel.insert_callback(at, id);
                let due = due(now, at);
                cbs.insert(
                    id,
                    Cb {
                        key,
                        due,
                        at,
                        cancelled: false,
                    },
                );
            }
            Op::RemoveSleep(i) => {
                if let Some(id) = nth_key(&sleeps, i) {
                    let s = sleeps.remove(&id).unwrap();
                    wheel.remove_sleep(s.key);
                }
            }
            Op::PollSleep(i) => {
                if let Some(id) = nth_key(&sleeps, i) {
                    let s = &sleeps[&id];
                    let ready = wheel.poll_sleep(s.key);
                    assert_eq!(ready, s.fired, "sleep {id} (due {}) at {now}", s.due);
                    if ready {
                        sleeps.remove(&id);
                    }
                }
            }
            Op::CancelCallback(i) => {
                if let Some(id) = nth_key(&cbs, i) {
                    let c = cbs.get_mut(&id).unwrap();
                    wheel.cancel_callback(&c.key);
                    c.cancelled = true;
                }
            }
            Op::Advance(w) => {
                let to = due(now, ahead(now, w));
                let (mut woken, ran) = wheel.expire(to);
                let mut want_woken: Vec<u64> = sleeps
                    .iter_mut()
                    .filter(|(_, s)| !s.fired && s.due <= to)
                    .map(|(id, s)| {
                        s.fired = true;
                        *id
                    })
                    .collect();
                woken.sort_unstable();
                want_woken.sort_unstable();
                assert_eq!(woken, want_woken, "sleeps woken by expire({to}) from {now}");
                let mut want_ran: Vec<(i64, u64)> = cbs
                    .iter()
                    .filter(|(_, c)| !c.cancelled && c.due <= to)
                    .map(|(id, c)| (c.at, *id))
                    .collect();
                want_ran.sort_unstable();
                let want_ran: Vec<u64> = want_ran.into_iter().map(|(_, id)| id).collect();
                assert_eq!(ran, want_ran, "callbacks run by expire({to}) from {now}");
                cbs.retain(|_, c| c.due > to);
                now = to;
            }
            Op::NextDeadline => {
                let nearest = sleeps
                    .values()
                    .filter(|s| !s.fired)
                    .map(|s| s.due)
                    .chain(cbs.values().map(|c| c.due))
                    .min();
                let next = wheel.next_deadline_us();
                if let Some(nearest) = nearest {
                    let next = next.expect("a timer is armed but next_deadline is None");
                    assert!(
                        next <= nearest,
                        "next_deadline {next} after deadline {nearest}"
                    );
                }
            }
        }
        assert_eq!(wheel.len(), sleeps.len() + cbs.len(), "slot count at {now}");
    }
});
