//! Installing ringloop's handler with `sigaction(2)`, and putting the
//! previous disposition back.
//!
//! Per signal, ringloop's handler is installed by the first user and stays
//! while anyone holds it:
//!
//! - a [`super::Signal`] holds it *permanently* (as tokio does: once a
//!   process has listened for a signal, that signal's default action, such
//!   as terminating on `SIGINT`, is gone for the rest of its life; see the
//!   module docs of [`crate::signal`] for why);
//! - an [`crate::EventLoop::add_signal_handler`] handler and the Ctrl-C
//!   watch of [`crate::run`] hold it *counted*: when the last counted
//!   holder lets go and nobody holds it permanently, the disposition found
//!   at installation (usually `SIG_DFL`) comes back, unless other code has
//!   replaced ringloop's handler meanwhile (then that code's stays).
//!
//! Called from threads, never from the handler: a `Mutex` is fine here.

use std::io;
use std::sync::Mutex;

use super::handler::on_signal;
use super::number::NSIG;

/// How a holder keeps the handler installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Hold {
    /// Until the process exits.
    Permanent,
    /// Until the matching [`release`].
    Counted,
}

struct Installed {
    permanent: bool,
    counted: usize,
    /// The disposition found when ringloop's handler went in.
    previous: libc::sigaction,
}

static STATE: Mutex<[Option<Installed>; NSIG]> = Mutex::new([const { None }; NSIG]);

fn state() -> std::sync::MutexGuard<'static, [Option<Installed>; NSIG]> {
    STATE.lock().unwrap_or_else(|p| p.into_inner())
}

fn our_handler() -> libc::sighandler_t {
    on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t
}

/// The current disposition of `signum`.
fn query(signum: i32) -> io::Result<libc::sigaction> {
    // SAFETY: sigaction is plain data; all-zero is a valid value to be
    // overwritten. A null `act` only reads the disposition.
    let mut cur: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: `cur` is a valid, writable sigaction.
    if unsafe { libc::sigaction(signum, std::ptr::null(), &mut cur) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(cur)
}

/// Installs ringloop's handler for `signum`, returning the previous one.
fn install(signum: i32) -> io::Result<libc::sigaction> {
    // SAFETY: as in `query`.
    let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
    act.sa_sigaction = our_handler();
    // SA_RESTART: a signal arriving during a blocking syscall on some
    // thread restarts it rather than failing it with EINTR.
    act.sa_flags = libc::SA_RESTART;
    // SAFETY: `act.sa_mask` is a valid sigset_t to initialise.
    unsafe { libc::sigemptyset(&mut act.sa_mask) };
    // SAFETY: as in `query`.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are to valid sigaction values; `on_signal` is
    // async-signal-safe (see `handler`).
    if unsafe { libc::sigaction(signum, &act, &mut old) } < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("ringloop::signal: sigaction({signum}) failed: {e}"),
        ));
    }
    Ok(old)
}

/// Makes sure ringloop's handler is installed for `signum` and records the
/// hold.
///
/// # Errors
///
/// When `sigaction` fails.
pub(super) fn acquire(signum: i32, hold: Hold) -> io::Result<()> {
    let mut st = state();
    let slot = &mut st[signum as usize];
    if slot.is_none() {
        let previous = install(signum)?;
        *slot = Some(Installed {
            permanent: false,
            counted: 0,
            previous,
        });
    }
    let inst = slot.as_mut().expect("installed above");
    match hold {
        Hold::Permanent => inst.permanent = true,
        Hold::Counted => inst.counted += 1,
    }
    Ok(())
}

/// Like [`acquire`] with [`Hold::Counted`], but only if `signum` has its
/// default disposition or ringloop's handler already; returns whether it
/// did. (`run()` leaves a signal alone when other code handles or ignores
/// it, as asyncio does.)
///
/// # Errors
///
/// When `sigaction` fails.
pub(super) fn acquire_if_default(signum: i32) -> io::Result<bool> {
    let mut st = state();
    let slot = &mut st[signum as usize];
    if let Some(inst) = slot.as_mut() {
        inst.counted += 1;
        return Ok(true);
    }
    if query(signum)?.sa_sigaction != libc::SIG_DFL {
        return Ok(false);
    }
    *slot = Some(Installed {
        permanent: false,
        counted: 1,
        previous: install(signum)?,
    });
    Ok(true)
}

/// Drops one counted hold; the last one puts the previous disposition back
/// (if ringloop's handler is still the installed one).
pub(super) fn release(signum: i32) {
    let mut st = state();
    let slot = &mut st[signum as usize];
    let Some(inst) = slot.as_mut() else { return };
    inst.counted = inst.counted.saturating_sub(1);
    if inst.counted > 0 || inst.permanent {
        return;
    }
    let previous = inst.previous;
    *slot = None;
    // Check, then set: code that installs a handler between the two (with
    // no ringloop lock) loses it. `sigaction` has no compare-and-swap.
    if query(signum).is_ok_and(|cur| cur.sa_sigaction == our_handler()) {
        // SAFETY: `previous` is the sigaction value the kernel returned when
        // ringloop's handler was installed.
        unsafe { libc::sigaction(signum, &previous, std::ptr::null_mut()) };
    }
}

/// A counted hold, released on drop.
#[derive(Debug)]
pub(super) struct CountedHold(i32);

impl CountedHold {
    /// Takes over a hold already acquired with [`Hold::Counted`].
    pub(super) fn adopt(signum: i32) -> CountedHold {
        CountedHold(signum)
    }
}

impl Drop for CountedHold {
    fn drop(&mut self) {
        release(self.0);
    }
}
