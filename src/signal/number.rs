//! Signal numbers: which ones may be listened for, and their names.

use std::io;

/// Size of the per-signal tables: index 0 is the Ctrl-C channel of
/// [`crate::run`] ([`RUN_CHANNEL`]), 1..=64 the signals (Linux has 64).
pub(super) const NSIG: usize = 65;

/// The generation slot that counts the `SIGINT`s [`crate::run`] acts on:
/// those delivered while no user code listens for `SIGINT` (signal number 0
/// does not exist, so the slot is free).
pub(super) const RUN_CHANNEL: usize = 0;

/// Checks that `signum` can be listened for and returns its table index.
///
/// Refused: numbers outside `1..=SIGRTMAX`, `SIGKILL` and `SIGSTOP` (the
/// kernel never lets them be caught), the synchronous faults `SIGILL`,
/// `SIGFPE`, `SIGSEGV` and `SIGBUS` (a handler that returns re-runs the
/// faulting instruction; tokio forbids the first three too, and Rust's
/// standard library uses `SIGSEGV`/`SIGBUS` to report stack overflows), and
/// the real-time signals the C library keeps for itself (32 and 33 with
/// glibc).
pub(super) fn check(signum: i32) -> io::Result<usize> {
    let max = libc::SIGRTMAX();
    let invalid = |why: String| Err(io::Error::new(io::ErrorKind::InvalidInput, why));
    if signum < 1 || signum > max || signum as usize >= NSIG {
        return invalid(format!(
            "ringloop::signal: {signum} is not a signal number (valid: 1..={max})"
        ));
    }
    match signum {
        libc::SIGKILL | libc::SIGSTOP => invalid(format!(
            "ringloop::signal: {} ({signum}) cannot be caught: the kernel always applies its \
             default action",
            name(signum)
        )),
        libc::SIGILL | libc::SIGFPE | libc::SIGSEGV | libc::SIGBUS => invalid(format!(
            "ringloop::signal: listening for {} ({signum}) is forbidden: it reports a fault \
             that would recur as soon as a handler returned",
            name(signum)
        )),
        _ if signum >= 32 && signum < libc::SIGRTMIN() => invalid(format!(
            "ringloop::signal: signal {signum} is reserved by the C library (usable real-time \
             signals are SIGRTMIN ({})..=SIGRTMAX ({max}))",
            libc::SIGRTMIN()
        )),
        _ => Ok(signum as usize),
    }
}

/// The conventional name of `signum` (`"SIGINT"`, `"SIGRTMIN+2"`), or
/// `"signal N"`.
pub(super) fn name(signum: i32) -> String {
    const NAMES: [(i32, &str); 30] = [
        (libc::SIGHUP, "SIGHUP"),
        (libc::SIGINT, "SIGINT"),
        (libc::SIGQUIT, "SIGQUIT"),
        (libc::SIGILL, "SIGILL"),
        (libc::SIGTRAP, "SIGTRAP"),
        (libc::SIGABRT, "SIGABRT"),
        (libc::SIGBUS, "SIGBUS"),
        (libc::SIGFPE, "SIGFPE"),
        (libc::SIGKILL, "SIGKILL"),
        (libc::SIGUSR1, "SIGUSR1"),
        (libc::SIGSEGV, "SIGSEGV"),
        (libc::SIGUSR2, "SIGUSR2"),
        (libc::SIGPIPE, "SIGPIPE"),
        (libc::SIGALRM, "SIGALRM"),
        (libc::SIGTERM, "SIGTERM"),
        (libc::SIGSTKFLT, "SIGSTKFLT"),
        (libc::SIGCHLD, "SIGCHLD"),
        (libc::SIGCONT, "SIGCONT"),
        (libc::SIGSTOP, "SIGSTOP"),
        (libc::SIGTSTP, "SIGTSTP"),
        (libc::SIGTTIN, "SIGTTIN"),
        (libc::SIGTTOU, "SIGTTOU"),
        (libc::SIGURG, "SIGURG"),
        (libc::SIGXCPU, "SIGXCPU"),
        (libc::SIGXFSZ, "SIGXFSZ"),
        (libc::SIGVTALRM, "SIGVTALRM"),
        (libc::SIGPROF, "SIGPROF"),
        (libc::SIGWINCH, "SIGWINCH"),
        (libc::SIGIO, "SIGIO"),
        (libc::SIGPWR, "SIGPWR"),
    ];
    if let Some((_, n)) = NAMES.iter().find(|(s, _)| *s == signum) {
        return (*n).to_owned();
    }
    let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
    if (min..=max).contains(&signum) {
        return format!("SIGRTMIN+{}", signum - min);
    }
    format!("signal {signum}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x1_signal_numbers_are_checked() {
        assert_eq!(check(libc::SIGINT).unwrap(), libc::SIGINT as usize);
        assert_eq!(check(libc::SIGRTMAX()).unwrap(), libc::SIGRTMAX() as usize);
        for bad in [
            0,
            -1,
            65,
            1000,
            libc::SIGKILL,
            libc::SIGSTOP,
            libc::SIGSEGV,
            32,
        ] {
            let e = check(bad).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad}: {e}");
        }
        assert_eq!(name(libc::SIGTERM), "SIGTERM");
        assert_eq!(name(libc::SIGRTMIN() + 2), "SIGRTMIN+2");
    }
}
