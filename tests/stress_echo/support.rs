//! Process-level helpers of the echo stress tests: parameters from the
//! environment, RLIMIT_NOFILE, RSS, CPU time and pinning.

use std::time::Duration;

/// `name` parsed as a number, or `default` when unset.
///
/// # Panics
///
/// When `name` is set but not a number (a mistyped parameter must not
/// silently run the default).
pub fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a whole number")),
        Err(_) => default,
    }
}

/// RLIMIT_NOFILE: (soft, hard).
pub use crate::common::nofile_limit as getrlimit_nofile;

/// Sets RLIMIT_NOFILE (soft and hard) for the whole process.
pub fn setrlimit_nofile(soft: u64, hard: u64) -> std::io::Result<()> {
    let rl = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: `rl` is a valid `rlimit` for the call's duration.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rl) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Raises RLIMIT_NOFILE's soft limit to at least `want`, raising the hard
/// limit too when needed (up to `/proc/sys/fs/nr_open`; needs root or
/// CAP_SYS_RESOURCE).
///
/// # Panics
///
/// With the reason when the limit cannot be raised that far.
pub fn raise_nofile(want: u64) {
    let (soft, hard) = getrlimit_nofile();
    if soft >= want {
        return;
    }
    let nr_open: u64 = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1 << 20);
    assert!(
        want <= nr_open,
        "the test needs {want} fds but /proc/sys/fs/nr_open is {nr_open}"
    );
    let new_hard = hard.max(want);
    if let Err(e) = setrlimit_nofile(want, new_hard) {
        panic!(
            "the test needs RLIMIT_NOFILE >= {want} (it is {soft}, hard limit {hard}); raising \
             it failed: {e} (raising the hard limit needs root or CAP_SYS_RESOURCE; or run \
             `ulimit -n {want}` first)"
        );
    }
}

/// This process's resident set size in KiB (`VmRSS` of /proc/self/status).
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

/// User plus system CPU time of the whole process so far.
pub fn process_cpu_time() -> Duration {
    // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable `rusage` for the call's duration.
    let r = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    assert_eq!(r, 0, "getrusage: {}", std::io::Error::last_os_error());
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// The CPUs this thread may run on.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: an all-zero `cpu_set_t` is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable `cpu_set_t` of the size passed.
    let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
    if r != 0 {
        return Vec::new();
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `i < CPU_SETSIZE`, within the set.
        .filter(|&i| unsafe { libc::CPU_ISSET(i, &set) })
        .collect()
}

/// Pins the calling thread to `cpu`.
///
/// # Panics
///
/// When `sched_setaffinity` fails.
pub fn pin_to_cpu(cpu: usize) {
    // SAFETY: an all-zero `cpu_set_t` is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` comes from `allowed_cpus`, below CPU_SETSIZE.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid `cpu_set_t` of the size passed; 0 is this thread.
    let r = unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) };
    assert_eq!(
        r,
        0,
        "pinning to CPU {cpu}: {}",
        std::io::Error::last_os_error()
    );
}
