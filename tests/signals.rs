//! Signals (SEMANTICS X1): `signal()` streams, loop signal handlers, and
//! `run()` turning Ctrl-C into cancelling its main future.
//!
//! Signals are process-wide. In-process tests each use their own real-time
//! signal (nothing else in this binary touches them) and `raise(3)`, which
//! runs the handler on the calling thread before it returns. Everything
//! about `SIGINT` runs in a child process: the test re-executes this binary
//! with `--exact <name>` and `RINGLOOP_TEST_CHILD=<name>`, and checks the
//! child's output and exit status.

mod common;

use std::cell::Cell;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::kid::{Kid, is_child};
use futures_util::StreamExt;
use ringloop::signal::{self, KeyboardInterrupt};
use ringloop::{EventLoop, sleep, wait_for};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// `SIGRTMIN + n`: one per in-process test.
fn rt(n: i32) -> i32 {
    libc::SIGRTMIN() + n
}

fn raise(signum: i32) {
    // SAFETY: raise(3) has no memory-safety preconditions.
    assert_eq!(unsafe { libc::raise(signum) }, 0, "raise({signum})");
}

/// The current `sa_handler` of `signum`.
fn disposition(signum: i32) -> libc::sighandler_t {
    // SAFETY: sigaction is plain data; all-zero is a valid value to be
    // overwritten, and a null `act` only reads.
    let mut cur: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: `cur` is a valid, writable sigaction.
    assert_eq!(
        unsafe { libc::sigaction(signum, std::ptr::null(), &mut cur) },
        0
    );
    cur.sa_sigaction
}

#[test]
fn x1_signal_stream_receives_a_delivery() {
    let sig = rt(1);
    ringloop::run(async move {
        let mut s = signal::signal(sig).unwrap();
        assert_eq!(s.signum(), sig);
        // Nothing delivered yet: recv waits.
        assert!(wait_for(s.recv(), Some(ms(20))).await.is_err());
        raise(sig);
        assert_eq!(wait_for(s.recv(), Some(ms(5000))).await, Ok(Some(())));
        // The Stream impl sees the next one.
        raise(sig);
        assert_eq!(wait_for(s.next(), Some(ms(5000))).await, Ok(Some(())));
    })
    .unwrap();
}

#[test]
fn x1_two_listeners_both_get_every_delivery_coalesced() {
    let sig = rt(2);
    ringloop::run(async move {
        let mut a = signal::signal(sig).unwrap();
        let mut b = signal::signal(sig).unwrap();
        raise(sig);
        assert_eq!(wait_for(a.recv(), Some(ms(5000))).await, Ok(Some(())));
        assert_eq!(wait_for(b.recv(), Some(ms(5000))).await, Ok(Some(())));
        // Three deliveries nobody polled for: one recv each (coalesced).
        for _ in 0..3 {
            raise(sig);
        }
        assert_eq!(wait_for(a.recv(), Some(ms(5000))).await, Ok(Some(())));
        assert_eq!(wait_for(b.recv(), Some(ms(5000))).await, Ok(Some(())));
        assert!(wait_for(a.recv(), Some(ms(20))).await.is_err());
        // A listener created after a delivery does not see it.
        let mut late = signal::signal(sig).unwrap();
        assert!(wait_for(late.recv(), Some(ms(20))).await.is_err());
        // Tasks waiting at the same time are all woken by one delivery.
        let t1 = ringloop::spawn(async move { a.recv().await });
        let t2 = ringloop::spawn(async move { late.recv().await });
        ringloop::yield_now().await;
        raise(sig);
        assert_eq!(t1.await.unwrap(), Some(()));
        assert_eq!(t2.await.unwrap(), Some(()));
    })
    .unwrap();
}

#[test]
fn x1_loops_on_other_threads_get_the_signal() {
    let sig = rt(3);
    let (ready_tx, ready_rx) = mpsc::channel();
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let ready = ready_tx.clone();
            std::thread::spawn(move || {
                ringloop::run(async move {
                    let mut s = signal::signal(sig).unwrap();
                    ready.send(()).unwrap();
                    wait_for(s.recv(), Some(ms(10_000))).await
                })
                .unwrap()
            })
        })
        .collect();
    for _ in 0..2 {
        ready_rx.recv_timeout(ms(10_000)).unwrap();
    }
    // This thread runs no loop: the handler runs here and must still wake
    // both loops.
    raise(sig);
    for t in threads {
        assert_eq!(t.join().unwrap(), Ok(Some(())));
    }
}

#[test]
fn x1_add_and_remove_signal_handler() {
    let sig = rt(4);
    assert_eq!(disposition(sig), libc::SIG_DFL);
    let lp = EventLoop::new().unwrap();
    let first = Rc::new(Cell::new(0));
    let second = Rc::new(Cell::new(0));
    let in_loop = Rc::new(Cell::new(true));
    let f = first.clone();
    lp.add_signal_handler(sig, move || f.set(f.get() + 1))
        .unwrap();
    assert_ne!(disposition(sig), libc::SIG_DFL);
    // A second handler for the same signal replaces the first.
    let (s, il) = (second.clone(), in_loop.clone());
    lp.add_signal_handler(sig, move || {
        s.set(s.get() + 1);
        // A callback on the loop, not signal context.
        il.set(il.get() && ringloop::Handle::try_current().is_some());
    })
    .unwrap();
    let wait_calls = |n: u32| {
        let second = second.clone();
        lp.run_until_complete(async move {
            let t0 = Instant::now();
            while second.get() < n && t0.elapsed() < ms(5000) {
                sleep(ms(1)).await;
            }
        })
        .unwrap();
    };
    raise(sig);
    wait_calls(1);
    assert_eq!((first.get(), second.get()), (0, 1));
    raise(sig);
    wait_calls(2);
    assert_eq!((first.get(), second.get()), (0, 2));
    assert!(in_loop.get());

    assert!(lp.remove_signal_handler(sig));
    assert!(!lp.remove_signal_handler(sig));
    // The last handler gone, the default disposition is back.
    assert_eq!(disposition(sig), libc::SIG_DFL);

    lp.close().unwrap();
    let e = lp.add_signal_handler(sig, || {}).unwrap_err();
    assert!(e.to_string().contains("closed"), "{e}");
}

#[test]
fn x1_closing_a_loop_removes_its_handlers() {
    let sig = rt(5);
    let lp = EventLoop::new().unwrap();
    lp.add_signal_handler(sig, || {}).unwrap();
    assert_ne!(disposition(sig), libc::SIG_DFL);
    lp.close().unwrap();
    assert_eq!(disposition(sig), libc::SIG_DFL);
    assert!(!lp.remove_signal_handler(sig));
}

#[test]
fn x1_invalid_signal_numbers_are_errors() {
    ringloop::run(async {
        for bad in [
            0,
            -1,
            65,
            i32::MAX,
            32,
            libc::SIGKILL,
            libc::SIGSTOP,
            libc::SIGSEGV,
            libc::SIGILL,
            libc::SIGFPE,
            libc::SIGBUS,
        ] {
            let e = signal::signal(bad).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad}: {e}");
            assert!(e.to_string().contains("ringloop::signal"), "{e}");
            let e = signal::recv(bad).await.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad}: {e}");
        }
        let e = signal::signal(libc::SIGKILL).unwrap_err();
        assert!(e.to_string().contains("SIGKILL"), "{e}");
    })
    .unwrap();
    let lp = EventLoop::new().unwrap();
    let e = lp.add_signal_handler(libc::SIGSTOP, || {}).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
    assert!(!lp.remove_signal_handler(0));
    // Outside a running loop: an error, not a panic.
    let e = signal::signal(rt(6)).unwrap_err();
    assert!(e.to_string().contains("running ringloop event loop"), "{e}");
}

#[test]
fn x1_keyboard_interrupt_error() {
    let e: io::Error = KeyboardInterrupt.into();
    assert_eq!(e.kind(), io::ErrorKind::Interrupted);
    assert!(KeyboardInterrupt::is(&e));
    assert!(e.to_string().contains("Ctrl-C"), "{e}");
    let other = io::Error::from(io::ErrorKind::Interrupted);
    assert!(!KeyboardInterrupt::is(&other));
}

// ---- child-process scenarios (SIGINT) ----

/// Prints `what` when dropped (the clean-up the tests look for).
struct Guard(&'static str);

impl Drop for Guard {
    fn drop(&mut self) {
        println!("{}", self.0);
    }
}

#[test]
fn x1_ctrl_c_cancels_the_main_future_and_run_returns_keyboard_interrupt() {
    const NAME: &str = "x1_ctrl_c_cancels_the_main_future_and_run_returns_keyboard_interrupt";
    if is_child(NAME) {
        let out = ringloop::run(async {
            let _g = Guard("cleanup");
            ringloop::spawn(async {
                let _g = Guard("task cleanup");
                std::future::pending::<()>().await;
            })
            .detach();
            ringloop::yield_now().await; // the task is running
            println!("ready");
            std::future::pending::<()>().await;
        });
        let e = out.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::Interrupted);
        assert!(KeyboardInterrupt::is(&e), "{e:?}");
        println!("outcome: {e}");
        // run() put SIGINT's default disposition back.
        assert_eq!(disposition(libc::SIGINT), libc::SIG_DFL);
        println!("restored");
        return;
    }
    let mut kid = Kid::spawn(NAME);
    kid.wait_line("ready");
    kid.send(libc::SIGINT);
    let (status, elapsed) = kid.finish();
    let seen = &kid.seen;
    assert!(
        status.success(),
        "child failed: {status:?}; output {seen:?}"
    );
    assert!(elapsed < ms(5000), "child took {elapsed:?} to shut down");
    let main = kid.pos("cleanup").unwrap_or_else(|| panic!("{seen:?}"));
    let task = kid
        .pos("task cleanup")
        .unwrap_or_else(|| panic!("{seen:?}"));
    let outcome = seen
        .iter()
        .position(|s| s.starts_with("outcome: interrupted by Ctrl-C"))
        .unwrap_or_else(|| panic!("no outcome line in {seen:?}"));
    // The main future is cancelled first, then the remaining tasks, then
    // run() returns.
    assert!(main < task && task < outcome, "{seen:?}");
    assert!(kid.pos("restored").is_some(), "{seen:?}");
}

#[test]
fn x1_second_ctrl_c_during_cleanup_ends_the_process() {
    const NAME: &str = "x1_second_ctrl_c_during_cleanup_ends_the_process";
    if is_child(NAME) {
        struct SlowCleanup;
        impl Drop for SlowCleanup {
            fn drop(&mut self) {
                println!("cleanup started");
                std::thread::sleep(Duration::from_secs(10));
                println!("cleanup finished");
            }
        }
        let _ = ringloop::run(async {
            let _g = SlowCleanup;
            println!("ready");
            std::future::pending::<()>().await;
        });
        println!("run returned");
        return;
    }
    let mut kid = Kid::spawn(NAME);
    kid.wait_line("ready");
    kid.send(libc::SIGINT);
    kid.wait_line("cleanup started");
    kid.send(libc::SIGINT);
    let (status, elapsed) = kid.finish();
    let seen = &kid.seen;
    assert_eq!(status.signal(), Some(libc::SIGINT), "{status:?}; {seen:?}");
    assert!(elapsed < ms(5000), "second Ctrl-C took {elapsed:?}");
    assert!(kid.pos("cleanup finished").is_none(), "{seen:?}");
}

#[test]
fn x1_user_sigint_listener_takes_precedence_over_run() {
    const NAME: &str = "x1_user_sigint_listener_takes_precedence_over_run";
    if is_child(NAME) {
        let out = ringloop::run(async {
            let _g = Guard("cleanup");
            // Listening from here on (`ctrl_c()` would listen from its
            // first poll).
            let mut ctrl_c = signal::signal(libc::SIGINT).unwrap();
            println!("ready");
            ctrl_c.recv().await.unwrap();
            println!("got ctrl-c");
            // The main future carries on after the signal.
            sleep(ms(20)).await;
            "main finished"
        });
        println!("outcome: {}", out.unwrap());
        return;
    }
    let mut kid = Kid::spawn(NAME);
    kid.wait_line("ready");
    kid.send(libc::SIGINT);
    let (status, _) = kid.finish();
    let seen = &kid.seen;
    assert!(
        status.success(),
        "child failed: {status:?}; output {seen:?}"
    );
    let got = kid.pos("got ctrl-c").unwrap_or_else(|| panic!("{seen:?}"));
    let done = kid
        .pos("outcome: main finished")
        .unwrap_or_else(|| panic!("{seen:?}"));
    assert!(got < done, "{seen:?}");
}

static USER_HANDLER_CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

extern "C" fn user_handler(_: libc::c_int) {
    USER_HANDLER_CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
}

fn set_disposition(signum: i32, handler: libc::sighandler_t) {
    // SAFETY: as in `disposition`.
    let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
    act.sa_sigaction = handler;
    // SAFETY: `act` is a valid sigaction; `user_handler` only does an
    // atomic add (async-signal-safe).
    assert_eq!(
        unsafe { libc::sigaction(signum, &act, std::ptr::null_mut()) },
        0
    );
}

#[test]
fn x1_run_leaves_a_user_sigint_handler_alone() {
    const NAME: &str = "x1_run_leaves_a_user_sigint_handler_alone";
    if !is_child(NAME) {
        let mut kid = Kid::spawn(NAME);
        let (status, _) = kid.finish();
        let seen = &kid.seen;
        assert!(
            status.success(),
            "child failed: {status:?}; output {seen:?}"
        );
        assert!(kid.pos("done").is_some(), "{seen:?}");
        return;
    }
    let user = user_handler as extern "C" fn(libc::c_int) as libc::sighandler_t;
    set_disposition(libc::SIGINT, user);
    let out = ringloop::run(async {
        raise(libc::SIGINT);
        sleep(ms(20)).await;
        "finished"
    });
    assert_eq!(out.unwrap(), "finished");
    assert_eq!(
        USER_HANDLER_CALLS.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    assert_eq!(
        disposition(libc::SIGINT),
        user,
        "run() replaced the user's handler"
    );

    // An ignored SIGINT stays ignored too.
    set_disposition(libc::SIGINT, libc::SIG_IGN);
    let out = ringloop::run(async {
        raise(libc::SIGINT);
        sleep(ms(20)).await;
        "finished"
    });
    assert_eq!(out.unwrap(), "finished");
    assert_eq!(disposition(libc::SIGINT), libc::SIG_IGN);
    println!("done");
}

/// A child made by `fork` inherits the process-wide signal state (and the
/// eventfds behind it): it must not take deliveries meant for its parent.
/// Found in review: the child and a later parent loop leased the same slot
/// and read the same eventfd, so the parent missed ~40% of its signals.
#[test]
fn x1_a_forked_child_does_not_take_the_parents_signals() {
    const NAME: &str = "x1_a_forked_child_does_not_take_the_parents_signals";
    if is_child(NAME) {
        // Create slot 0's eventfd, then release the lease.
        {
            let lp = ringloop::EventLoop::new().unwrap();
            lp.add_signal_handler(libc::SIGUSR1, || {}).unwrap();
        }
        // SAFETY: fork(2); the child only runs a ringloop loop (glibc keeps
        // malloc usable after fork) and leaves with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let lp = ringloop::EventLoop::new().unwrap();
            lp.add_signal_handler(libc::SIGUSR2, || {}).unwrap();
            lp.run_until_complete(ringloop::sleep(ms(1500))).unwrap();
            // SAFETY: _exit ends the forked child without running the
            // parent's atexit handlers or the test harness.
            unsafe { libc::_exit(0) };
        }
        std::thread::sleep(ms(200));
        let lp = ringloop::EventLoop::new().unwrap();
        let got = Rc::new(Cell::new(0));
        let g = got.clone();
        lp.add_signal_handler(libc::SIGUSR1, move || g.set(g.get() + 1))
            .unwrap();
        let mut lost = 0;
        for _ in 0..10 {
            let before = got.get();
            let t0 = Instant::now();
            lp.run_until_complete(async {
                ringloop::sleep(ms(5)).await;
                // SAFETY: raise(3) has no memory-safety preconditions.
                unsafe { libc::raise(libc::SIGUSR1) };
                while got.get() == before && t0.elapsed() < ms(500) {
                    ringloop::sleep(ms(1)).await;
                }
            })
            .unwrap();
            if got.get() == before {
                lost += 1;
            }
        }
        let mut st = 0;
        // SAFETY: waits for our own forked child; `st` is a valid out-pointer.
        unsafe { libc::waitpid(pid, &mut st, 0) };
        println!("lost {lost}");
        return;
    }
    let mut kid = Kid::spawn(NAME);
    let (status, _) = kid.finish();
    assert!(status.success(), "{:?}", kid.seen);
    assert!(kid.pos("lost 0").is_some(), "{:?}", kid.seen);
}
