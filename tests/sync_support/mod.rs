//! Helpers shared by the `sync_*` tests: a seeded xorshift RNG, a shared
//! log, and `settle`, which yields until no task makes progress.
#![allow(dead_code)] // each test binary uses some of these

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use ringloop::yield_now;

/// xorshift64* (Vigna): tiny, seeded, deterministic.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // Never zero; spread small seeds over the state.
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: usize, den: usize) -> bool {
        self.below(den) < num
    }
}

/// The number of seeds every randomized schedule runs with.
pub const SEEDS: u64 = 200;

pub type Log<T> = Rc<RefCell<Vec<T>>>;

pub fn new_log<T>() -> Log<T> {
    Rc::default()
}

/// Counts completed steps; `settle` watches it.
pub type Progress = Rc<Cell<u64>>;

pub fn bump(p: &Progress) {
    p.set(p.get() + 1);
}

/// Yields until `progress` has not moved for two consecutive yields: every
/// task that could run has run, and every wake-up has been acted on.
pub async fn settle(progress: &Progress) {
    let mut still = 0;
    for _ in 0..10_000 {
        let before = progress.get();
        yield_now().await;
        if progress.get() == before {
            still += 1;
            if still == 2 {
                return;
            }
        } else {
            still = 0;
        }
    }
    panic!("the tasks never settled");
}

/// Yields `n` times.
pub async fn yields(n: usize) {
    for _ in 0..n {
        yield_now().await;
    }
}
