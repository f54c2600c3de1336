//! Both ways of waiting for an exit (the kernel picks one; tests force
//! each), and cancelled waits.

use std::time::{Duration, Instant};

use super::Command;
use super::pidfd::ExitWatch;

fn supports_waitid() -> bool {
    crate::run(async {
        let driver = crate::runtime::current_driver().expect("driver");
        ExitWatch::best(&driver) == ExitWatch::WaitId
    })
    .expect("loop")
}

fn exit_code_after_delay(watch: ExitWatch) {
    crate::run(async {
        let t0 = Instant::now();
        let mut child = Command::new("sh")
            .args(["-c", "sleep 0.05; exit 7"])
            .spawn()
            .expect("spawn sh");
        child.force_watch(watch);
        let status = child.wait().await.expect("wait");
        assert_eq!(status.code(), Some(7));
        let took = t0.elapsed();
        assert!(took >= Duration::from_millis(50), "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
        // Reaped: a second wait answers at once with the same status.
        assert_eq!(child.wait().await.expect("wait again").code(), Some(7));
    })
    .expect("loop");
}

#[test]
fn x2_poll_fallback_waits_for_exit() {
    exit_code_after_delay(ExitWatch::Poll);
}

#[test]
fn x2_waitid_op_waits_for_exit() {
    if !supports_waitid() {
        eprintln!("skipped: the kernel lacks IORING_OP_WAITID (Linux 6.7+)");
        return;
    }
    exit_code_after_delay(ExitWatch::WaitId);
}

/// A wait dropped while the child runs, with the child exiting before the
/// next wait, loses nothing (the ring op never reaps: `WNOWAIT`).
fn dropped_wait_keeps_status(watch: ExitWatch) {
    crate::run(async {
        let mut child = Command::new("sh")
            .args(["-c", "sleep 0.05; exit 5"])
            .kill_on_drop(true)
            .spawn()
            .expect("spawn sh");
        child.force_watch(watch);
        let early = crate::wait_for(child.wait(), Some(Duration::from_millis(5))).await;
        assert!(early.is_err(), "exited too soon: {early:?}");
        crate::sleep(Duration::from_millis(200)).await;
        let status = child.wait().await.expect("wait");
        assert_eq!(status.code(), Some(5));
    })
    .expect("loop");
}

#[test]
fn x2_dropped_poll_wait_keeps_status() {
    dropped_wait_keeps_status(ExitWatch::Poll);
}

#[test]
fn x2_dropped_waitid_wait_keeps_status() {
    if !supports_waitid() {
        eprintln!("skipped: the kernel lacks IORING_OP_WAITID (Linux 6.7+)");
        return;
    }
    dropped_wait_keeps_status(ExitWatch::WaitId);
}
