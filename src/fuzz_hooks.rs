//! Hooks for the cargo-fuzz targets in `fuzz/`: compiled only under
//! `--cfg fuzzing` (which cargo-fuzz sets), never part of the public API.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use crate::io::{DEFAULT_LIMIT, StreamReader};
use crate::net::socket::Socket;
use crate::process::pipe::Pipe;
use crate::process::{ChildStdin, ChildStdout};
use crate::runtime::timers::{TimerKey, Timers};
use crate::task::sched::Callback;

/// Wakes by recording its timer's id.
struct Recorder {
    id: u64,
    log: Arc<Mutex<Vec<u64>>>,
}

impl Wake for Recorder {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(self.id);
    }
}

/// A sleep armed on a [`TimerWheel`].
#[derive(Debug, Clone, Copy)]
pub struct SleepKey(TimerKey, u64);

/// A callback armed on a [`TimerWheel`].
pub struct CallbackKey(Rc<Callback>);

impl fmt::Debug for CallbackKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackKey").finish_non_exhaustive()
    }
}

/// The loop's timing wheel, driven by hand with times in µs since its origin.
pub struct TimerWheel {
    origin: Instant,
    timers: Timers,
    woken: Arc<Mutex<Vec<u64>>>,
    /// Armed callbacks by address, to their ids.
    callbacks: RefCell<HashMap<*const Callback, u64>>,
}

impl fmt::Debug for TimerWheel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerWheel")
            .field("len", &self.timers.len())
            .finish_non_exhaustive()
    }
}

impl Default for TimerWheel {
    fn default() -> Self {
        TimerWheel::new()
    }
}

impl TimerWheel {
    /// An empty wheel whose origin is now.
    pub fn new() -> TimerWheel {
        let origin = Instant::now();
        TimerWheel {
            origin,
            timers: Timers::new(origin),
            woken: Arc::default(),
            callbacks: RefCell::default(),
        }
    }

    /// `us` µs after the origin (before it, if negative).
    fn at(&self, us: i64) -> Instant {
        let d = Duration::from_micros(us.unsigned_abs());
        if us >= 0 {
            self.origin + d
        } else {
            self.origin - d
        }
    }

    /// Arms a sleep for `at_us` (negative: before the wheel existed) whose
    /// waker records `id` when woken.
    pub fn insert_sleep(&mut self, at_us: i64, id: u64) -> SleepKey {
        let waker = self.recorder(id);
        SleepKey(self.timers.insert_waker(self.at(at_us), waker), id)
    }

    /// Disarms a sleep (its future was dropped).
    pub fn remove_sleep(&mut self, key: SleepKey) {
        self.timers.remove(key.0);
    }

    /// A waker that records `id` when woken.
    fn recorder(&self, id: u64) -> Waker {
        Waker::from(Arc::new(Recorder {
            id,
            log: self.woken.clone(),
        }))
    }

    /// Polls a sleep (with a new waker recording its id): true once it
    /// fired (its slot is then freed).
    pub fn poll_sleep(&mut self, key: SleepKey) -> bool {
        let waker = self.recorder(key.1);
        let mut cx = Context::from_waker(&waker);
        self.timers.poll(key.0, &mut cx) == Poll::Ready(())
    }

    /// Arms a callback for `at_us` (negative: before the wheel existed),
    /// reported as `id` when it fires.
    pub fn insert_callback(&mut self, at_us: i64, id: u64) -> CallbackKey {
        let cb = Callback::new(Box::new(|| {}));
        self.callbacks.borrow_mut().insert(Rc::as_ptr(&cb), id);
        self.timers.insert_callback(self.at(at_us), cb.clone());
        CallbackKey(cb)
    }

    /// Cancels a callback (`CallbackHandle::cancel`).
    pub fn cancel_callback(&mut self, key: &CallbackKey) {
        key.0.cancel();
    }

    /// Fires what is due at `now_us`: (ids of the sleeps woken, in waking
    /// order; ids of the callbacks to run, in the order the loop runs them).
    pub fn expire(&mut self, now_us: u64) -> (Vec<u64>, Vec<u64>) {
        let (mut wakers, mut cbs) = (Vec::new(), Vec::new());
        let now = self.at(i64::try_from(now_us).unwrap_or(i64::MAX));
        self.timers.expire(now, &mut wakers, &mut cbs);
        for w in wakers {
            w.wake();
        }
        let woken = std::mem::take(&mut *self.woken.lock().unwrap_or_else(|e| e.into_inner()));
        let mut map = self.callbacks.borrow_mut();
        let ran = cbs
            .iter()
            .map(|cb| map.remove(&Rc::as_ptr(cb)).unwrap_or(u64::MAX))
            .collect();
        (woken, ran)
    }

    /// When the loop would next look at its timers, in µs (rounded down).
    pub fn next_deadline_us(&mut self) -> Option<u64> {
        let at = self.timers.next_deadline()?;
        u64::try_from(at.saturating_duration_since(self.origin).as_micros()).ok()
    }

    /// Timer slots in use.
    pub fn len(&self) -> usize {
        self.timers.len()
    }

    /// Whether no timer slot is in use.
    pub fn is_empty(&self) -> bool {
        self.timers.is_empty()
    }
}

/// A [`StreamReader`] over `fd` (any stream or seqpacket socket), for the
/// loop running on this thread.
///
/// # Errors
///
/// When no loop runs on this thread.
pub fn stream_reader(fd: OwnedFd, limit: Option<usize>) -> io::Result<StreamReader> {
    Ok(StreamReader::new(
        Socket::new(fd)?,
        limit.unwrap_or(DEFAULT_LIMIT),
    ))
}

/// A pipe as ringloop streams for the loop running on this thread: its read
/// end (as a [`ChildStdout`]) and its write end (as a [`ChildStdin`]), both
/// closed through the ring when dropped.
///
/// # Errors
///
/// `pipe2` failures, or no loop runs on this thread.
pub fn pipe() -> io::Result<(ChildStdout, ChildStdin)> {
    let driver = crate::runtime::current_driver()?;
    let mut fds = [0 as std::os::fd::RawFd; 2];
    // SAFETY: `fds` is a writable array of two c_ints, as pipe2 requires.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both fds are new and owned by nobody else.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((
        ChildStdout::new(Pipe::new(r, driver.clone())),
        ChildStdin::new(Pipe::new(w, driver)),
    ))
}
