//! `Cores::run` and Ctrl-C: a `SIGINT` cancels every core's entry future
//! (their cleanup and their tasks' cleanup run), and `Cores::run` returns
//! `CoresError::Interrupted`, which converts into `run()`'s
//! `KeyboardInterrupt` error; `SIGINT`'s default disposition comes back.
//!
//! Each scenario runs in a child process: the test re-executes this binary
//! with `--exact <name>` and `RINGLOOP_CORES_CTRL_C_CHILD=<name>`, waits for
//! the child's "ready" lines, sends `SIGINT`, and checks the child's output
//! and exit status.

use std::io::{self, BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ringloop::signal::KeyboardInterrupt;
use ringloop::{Cores, CoresError};

const CHILD_ENV: &str = "RINGLOOP_CORES_CTRL_C_CHILD";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Whether this process is the child running scenario `name`.
fn is_child(name: &str) -> bool {
    std::env::var(CHILD_ENV).is_ok_and(|v| v == name)
}

fn sigint_disposition() -> libc::sighandler_t {
    // SAFETY: sigaction(2) with a null new action only reads the current
    // one into `old`, a valid, writable struct.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        assert_eq!(libc::sigaction(libc::SIGINT, std::ptr::null(), &mut old), 0);
        old.sa_sigaction
    }
}

/// A child process running this binary's test `name` as its scenario;
/// killed when dropped if still running (a failed test leaves no process).
struct Kid {
    child: Option<Child>,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Kid {
    fn spawn(name: &str) -> Kid {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([name, "--exact", "--nocapture", "--test-threads", "1"])
            .env(CHILD_ENV, name)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                // The harness prints `test NAME ... ` before the first line.
                let line = line.rsplit(" ... ").next().unwrap_or("").to_owned();
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Kid {
            child: Some(child),
            lines,
            seen: Vec::new(),
        }
    }

    fn pos(&self, line: &str) -> Option<usize> {
        self.seen.iter().position(|s| s == line)
    }

    /// Collects lines until one equals `want`; panics after 10 s.
    fn wait_line(&mut self, want: &str) {
        let deadline = Instant::now() + ms(10_000);
        while self.pos(want).is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(e) => panic!("no line {want:?} from the child ({e}); got {:?}", self.seen),
            }
        }
    }

    fn sigint(&self) {
        let pid = self.child.as_ref().unwrap().id() as libc::pid_t;
        // SAFETY: kill(2) has no memory-safety preconditions; `pid` is our
        // child, not yet reaped.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    }

    /// Waits (10 s at most) for the child to exit; returns its status and
    /// how long it took, and collects the rest of its output.
    fn finish(&mut self) -> (ExitStatus, Duration) {
        let t0 = Instant::now();
        let status = loop {
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                break st;
            }
            assert!(
                t0.elapsed() < ms(10_000),
                "child did not exit within 10 s; output so far: {:?}",
                self.seen
            );
            std::thread::sleep(ms(5));
        };
        let elapsed = t0.elapsed();
        self.child = None;
        while let Ok(line) = self.lines.recv_timeout(ms(5000)) {
            self.seen.push(line);
        }
        (status, elapsed)
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
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
    kid.sigint();
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
    kid.sigint();
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
    kid.sigint();
    let (status, _) = kid.finish();
    let seen = &kid.seen;
    assert!(status.success(), "child failed: {status:?}; {seen:?}");
    assert!(kid.pos("core 0 got Ctrl-C").is_some(), "{seen:?}");
    assert!(kid.pos("outcome: Ok([0, 1])").is_some(), "{seen:?}");
}
