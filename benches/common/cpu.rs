//! CPU time of the bench process, for the benches that print CPU per
//! operation beside criterion's wall time (`file_read`, `file_write`).

use std::io;
use std::time::Duration;

/// The process's CPU time, user + system, all threads.
pub fn cpu_time() -> Duration {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::uninit();
    // SAFETY: `ru` is valid for writes of one `rusage`, which getrusage
    // fills when it returns 0 (checked before it is read).
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, ru.as_mut_ptr()) };
    assert_eq!(rc, 0, "getrusage: {}", io::Error::last_os_error());
    // SAFETY: getrusage returned 0, so it initialised `ru`.
    let ru = unsafe { ru.assume_init() };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}
