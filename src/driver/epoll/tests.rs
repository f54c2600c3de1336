//! The epoll backend on its own: SQEs in, completions out, as the driver
//! sees it (the whole suite also runs on this backend).

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use io_uring::{opcode, squeue, types};

use super::*;

/// Waits until `ud`'s completion without `F_MORE` arrives; returns every
/// completion seen for it.
fn until_done(e: &mut Epoll, ud: u64) -> Vec<(i32, u32)> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = Vec::new();
    loop {
        let mut cq = Vec::new();
        e.take_cq(&mut cq);
        for (u, r, f) in cq {
            if u == ud {
                seen.push((r, f));
                if f & F_MORE == 0 {
                    return seen;
                }
            }
        }
        assert!(Instant::now() < deadline, "no final completion for {ud}");
        e.wait(Some(Duration::from_millis(50))).unwrap();
    }
}

fn cqes(e: &mut Epoll) -> Vec<(u64, i32, u32)> {
    let mut cq = Vec::new();
    e.take_cq(&mut cq);
    cq
}

fn timespec(d: Duration) -> Box<types::Timespec> {
    Box::new(types::Timespec::from(d))
}

#[test]
fn timeouts_never_fire_early_with_or_without_epoll_pwait2() {
    for pwait2 in [true, false] {
        let mut e = Epoll::new().unwrap();
        // As where a seccomp profile refuses epoll_pwait2: whole
        // milliseconds, rounded up.
        e.pwait2 = pwait2;
        let ts = timespec(Duration::from_micros(2500));
        let t0 = Instant::now();
        e.submit(opcode::Timeout::new(&*ts).build().user_data(1));
        assert_eq!(until_done(&mut e, 1), vec![(-libc::ETIME, 0)]);
        let took = t0.elapsed();
        assert!(
            took >= Duration::from_micros(2500) && took < Duration::from_secs(2),
            "pwait2 {pwait2}: {took:?}"
        );
    }
}

#[test]
fn a_linked_timeout_cancels_a_read_that_waits() {
    let mut e = Epoll::new().unwrap();
    let (r, _w) = crate::sys::pipe().unwrap();
    let mut buf = vec![0u8; 8];
    let ts = timespec(Duration::from_millis(5));
    e.submit(
        opcode::Read::new(types::Fd(r.as_raw_fd()), buf.as_mut_ptr(), 8)
            .build()
            .user_data(1)
            .flags(squeue::Flags::IO_LINK),
    );
    e.submit(opcode::LinkTimeout::new(&*ts).build().user_data(2));
    let t0 = Instant::now();
    let mut got = Vec::new();
    while got.len() < 2 {
        assert!(t0.elapsed() < Duration::from_secs(5), "{got:?}");
        e.wait(Some(Duration::from_millis(50))).unwrap();
        got.extend(cqes(&mut e));
    }
    got.sort();
    assert_eq!(got, vec![(1, -libc::ECANCELED, 0), (2, -libc::ETIME, 0)]);
    assert!(
        t0.elapsed() >= Duration::from_millis(4),
        "{:?}",
        t0.elapsed()
    );
}

#[test]
fn a_linked_timeout_of_an_op_done_at_once_is_cancelled() {
    let mut e = Epoll::new().unwrap();
    let (r, w) = crate::sys::pipe().unwrap();
    crate::sys::eventfd_signal(&w); // 8 bytes in the pipe
    let mut buf = vec![0u8; 8];
    let ts = timespec(Duration::from_secs(60));
    e.submit(
        opcode::Read::new(types::Fd(r.as_raw_fd()), buf.as_mut_ptr(), 8)
            .build()
            .user_data(1)
            .flags(squeue::Flags::IO_LINK),
    );
    e.submit(opcode::LinkTimeout::new(&*ts).build().user_data(2));
    let got = cqes(&mut e);
    assert_eq!(got, vec![(1, 8, 0), (2, -libc::ECANCELED, 0)]);
    assert!(e.timers.is_empty() && e.pending.is_empty());
}

#[test]
fn cancel_by_fd_ends_every_waiting_op_and_counts_them() {
    let mut e = Epoll::new().unwrap();
    let (r, _w) = crate::sys::pipe().unwrap();
    let mut bufs = [[0u8; 4]; 2];
    for (i, b) in bufs.iter_mut().enumerate() {
        e.submit(
            opcode::Read::new(types::Fd(r.as_raw_fd()), b.as_mut_ptr(), 4)
                .build()
                .user_data(10 + i as u64),
        );
    }
    assert!(cqes(&mut e).is_empty(), "nothing to read yet");
    e.submit(
        opcode::AsyncCancel2::new(types::CancelBuilder::fd(types::Fd(r.as_raw_fd())).all())
            .build()
            .user_data(3),
    );
    let mut got = cqes(&mut e);
    got.sort();
    assert_eq!(
        got,
        vec![
            (3, 2, 0),
            (10, -libc::ECANCELED, 0),
            (11, -libc::ECANCELED, 0)
        ]
    );
    // Nothing is left waiting: a later cancel by user_data finds nothing.
    e.submit(opcode::AsyncCancel::new(10).build().user_data(4));
    assert_eq!(cqes(&mut e), vec![(4, -libc::ENOENT, 0)]);
}

#[test]
fn reads_on_one_fd_complete_in_submission_order() {
    let mut e = Epoll::new().unwrap();
    let (r, w) = crate::sys::pipe().unwrap();
    let mut bufs = [[0u8; 1]; 3];
    for (i, b) in bufs.iter_mut().enumerate() {
        e.submit(
            opcode::Read::new(types::Fd(r.as_raw_fd()), b.as_mut_ptr(), 1)
                .build()
                .user_data(i as u64),
        );
    }
    // SAFETY: `w` is a live pipe end; the buffer is 3 valid bytes.
    let n = unsafe { libc::write(w.as_raw_fd(), b"abc".as_ptr().cast(), 3) };
    assert_eq!(n, 3);
    let mut order = Vec::new();
    while order.len() < 3 {
        e.wait(Some(Duration::from_secs(1))).unwrap();
        order.extend(cqes(&mut e).into_iter().map(|(u, r, _)| (u, r)));
    }
    assert_eq!(order, vec![(0, 1), (1, 1), (2, 1)]);
    assert_eq!(bufs, [*b"a", *b"b", *b"c"]);
}

#[test]
fn a_multishot_poll_posts_one_completion_per_write_and_stays() {
    let mut e = Epoll::new().unwrap();
    let fd = crate::sys::eventfd().unwrap();
    e.submit(
        opcode::PollAdd::new(types::Fd(fd.as_raw_fd()), libc::POLLIN as u32)
            .multi(true)
            .build()
            .user_data(7),
    );
    assert!(cqes(&mut e).is_empty(), "the counter starts at 0");
    for round in 0..3 {
        crate::sys::eventfd_signal(&fd);
        e.wait(Some(Duration::from_secs(1))).unwrap();
        let got = cqes(&mut e);
        assert_eq!(got.len(), 1, "round {round}: {got:?}");
        let (ud, res, flags) = got[0];
        assert_eq!((ud, flags & F_MORE), (7, F_MORE));
        assert_ne!(res as u32 & libc::POLLIN as u32, 0);
        // No write since: no completion.
        e.wait(Some(Duration::from_millis(5))).unwrap();
        assert!(cqes(&mut e).is_empty(), "round {round}: spurious");
    }
}
