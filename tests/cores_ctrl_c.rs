//! `Cores::run` and Ctrl-C: a `SIGINT` cancels every core's entry future
//! (their cleanup and their tasks' cleanup run), and `Cores::run` returns
//! `CoresError::Interrupted`, which converts into `run()`'s
//! `KeyboardInterrupt` error; `SIGINT`'s default disposition comes back.
//!
//! Each scenario runs in a child process: the test re-executes this binary
//! with `--exact <name>` and `RINGLOOP_TEST_CHILD=<name>`, waits for
//! the child's "ready" lines, sends `SIGINT`, and checks the child's output
//! and exit status.

mod common;

use std::io;

use common::kid::{Kid, is_child};
use ringloop::signal::KeyboardInterrupt;
use ringloop::{Cores, CoresError};

use common::ms;

fn sigint_disposition() -> libc::sighandler_t {
    // SAFETY: sigaction(2) with a null new action only reads the current
    // one into `old`, a valid, writable struct.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        assert_eq!(libc::sigaction(libc::SIGINT, std::ptr::null(), &mut old), 0);
        old.sa_sigaction
    }
}

/// Prints its line when dropped (the cleanup the tests look for).
struct Guard(String);

impl Drop for Guard {
    fn drop(&mut self) {
        println!("{}", self.0);
    }
}

/// The child's side: `Cores::run` was interrupted; report it and check
/// the error and the restored disposition.
fn report(out: Result<Vec<()>, CoresError>) {
    let e = out.unwrap_err();
    assert!(e.is_interrupted(), "{e}");
    assert!(matches!(e, CoresError::Interrupted));
    let io_err = io::Error::from(e);
    assert_eq!(io_err.kind(), io::ErrorKind::Interrupted);
    assert!(KeyboardInterrupt::is(&io_err), "{io_err:?}");
    println!("outcome: {io_err}");
    // As after run(): SIGINT's default disposition is back.
    assert_eq!(sigint_disposition(), libc::SIG_DFL);
    println!("restored");
}

#[test]
fn ctrl_c_cancels_every_cores_entry_future_and_returns_interrupted() {
    const NAME: &str = "ctrl_c_cancels_every_cores_entry_future_and_returns_interrupted";
    if is_child(NAME) {
        let out = Cores::new(2).run(|core| async move {
            let i = core.index();
            let _g = Guard(format!("cleanup {i}"));
            ringloop::spawn(async move {
                let _g = Guard(format!("task cleanup {i}"));
                std::future::pending::<()>().await;
            })
            .detach();
            ringloop::yield_now().await; // the task is running
            println!("ready {i}");
            std::future::pending::<()>().await
        });
        report(out);
        return;
    }
    let mut kid = Kid::spawn(NAME);
    kid.wait_line("ready 0");
    kid.wait_line("ready 1");
    kid.send(libc::SIGINT);
    let (status, elapsed) = kid.finish();
    let seen = &kid.seen;
    assert!(
        status.success(),
        "child failed: {status:?}; output {seen:?}"
    );
    assert!(elapsed < ms(5000), "child took {elapsed:?} to shut down");
    let outcome = seen
        .iter()
        .position(|s| s.starts_with("outcome: interrupted by Ctrl-C"))
        .unwrap_or_else(|| panic!("no outcome line in {seen:?}"));
    for i in 0..2 {
        let main = kid
            .pos(&format!("cleanup {i}"))
            .unwrap_or_else(|| panic!("{seen:?}"));
        let task = kid
            .pos(&format!("task cleanup {i}"))
            .unwrap_or_else(|| panic!("{seen:?}"));
        // Each core's entry future is cancelled, then its remaining tasks,
        // then Cores::run returns.
        assert!(main < task && task < outcome, "core {i}: {seen:?}");
    }
    assert!(kid.pos("restored").is_some(), "{seen:?}");
}

/// A core whose entry future finished keeps its loop running for the
/// others; a Ctrl-C then still cancels the ones that run, and the result
/// is `Interrupted` (as `run()`'s is, whatever finished before).
#[test]
fn ctrl_c_after_one_core_finished_still_interrupts_the_others() {
    const NAME: &str = "ctrl_c_after_one_core_finished_still_interrupts_the_others";
    if is_child(NAME) {
        let out = Cores::new(2).run(|core| async move {
            if core.index() == 0 {
                println!("ready 0 (done)");
                return;
            }
            let _g = Guard("cleanup 1".into());
            println!("ready 1");
            std::future::pending::<()>().await
        });
        report(out);
        return;
    }
    let mut kid = Kid::spawn(NAME);
    kid.wait_line("ready 0 (done)");
    kid.wait_line("ready 1");
    kid.send(libc::SIGINT);
    let (status, _) = kid.finish();
    let seen = &kid.seen;
    assert!(status.success(), "child failed: {status:?}; {seen:?}");
    let cleanup = kid.pos("cleanup 1").unwrap_or_else(|| panic!("{seen:?}"));
    let outcome = seen
        .iter()
        .position(|s| s.starts_with("outcome: interrupted by Ctrl-C"))
        .unwrap_or_else(|| panic!("no outcome line in {seen:?}"));
    assert!(cleanup < outcome, "{seen:?}");
    assert!(kid.pos("restored").is_some(), "{seen:?}");
}

/// A core that listens for Ctrl-C itself takes it, as under `run()`: the
/// cores are not interrupted, and the entry futures finish normally.
#[test]
fn a_core_listening_for_ctrl_c_itself_takes_it() {
    const NAME: &str = "a_core_listening_for_ctrl_c_itself_takes_it";
    if is_child(NAME) {
        let out = Cores::new(2).run(|core| async move {
            let i = core.index();
            if i == 0 {
                let mut ctrl_c = ringloop::signal::signal(libc::SIGINT).unwrap();
                println!("ready 0");
                ctrl_c.recv().await;
                println!("core 0 got Ctrl-C");
            } else {
                println!("ready 1");
                ringloop::sleep(ms(300)).await;
            }
            i
        });
        println!("outcome: {:?}", out.map_err(|e| e.to_string()));
        return;
    }
    let mut kid = Kid::spawn(NAME);
    kid.wait_line("ready 0");
    kid.wait_line("ready 1");
    kid.send(libc::SIGINT);
    let (status, _) = kid.finish();
    let seen = &kid.seen;
    assert!(status.success(), "child failed: {status:?}; {seen:?}");
    assert!(kid.pos("core 0 got Ctrl-C").is_some(), "{seen:?}");
    assert!(kid.pos("outcome: Ok([0, 1])").is_some(), "{seen:?}");
}
