//! A child process running one scenario of the test binary that spawned
//! it (for tests that send it signals, or watch it exit).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::ms;

/// The variable that tells a re-executed test binary which scenario it
/// runs as a child ([`Kid`]).
pub const CHILD_ENV: &str = "RINGLOOP_TEST_CHILD";

/// Whether this process is the child running scenario `name`.
pub fn is_child(name: &str) -> bool {
    std::env::var(CHILD_ENV).is_ok_and(|v| v == name)
}

/// A child process running this binary's test `name` as its scenario.
/// Dropping it kills the child if it is still running (a failed test
/// leaves no process behind).
pub struct Kid {
    child: Option<Child>,
    lines: mpsc::Receiver<String>,
    /// The child's stdout lines so far (the test harness's `test NAME ... `
    /// prefix stripped).
    pub seen: Vec<String>,
}

impl Kid {
    pub fn spawn(name: &str) -> Kid {
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
                // The harness prints `test NAME ... ` with no newline
                // before the test's own first line.
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

    pub fn pos(&self, line: &str) -> Option<usize> {
        self.seen.iter().position(|s| s == line)
    }

    /// Collects lines until one equals `want`; panics after 10 s.
    pub fn wait_line(&mut self, want: &str) {
        let deadline = Instant::now() + ms(10_000);
        while self.pos(want).is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(e) => panic!("no line {want:?} from the child ({e}); got {:?}", self.seen),
            }
        }
    }

    pub fn send(&self, signum: i32) {
        let pid = self.child.as_ref().unwrap().id() as libc::pid_t;
        // SAFETY: kill(2) has no memory-safety preconditions; `pid` is our
        // child, not yet reaped.
        assert_eq!(unsafe { libc::kill(pid, signum) }, 0);
    }

    /// Waits for the child to exit (10 s at most, else panics); returns its
    /// status and how long it took, and collects the rest of its output.
    pub fn finish(&mut self) -> (ExitStatus, Duration) {
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
        // The reader thread ends at EOF.
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
