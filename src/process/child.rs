//! [`Child`]: a running (or finished) child process.

use std::cell::RefCell;
use std::ffi::OsString;
use std::fmt;
use std::io;
use std::process::{ExitStatus, Output};
use std::rc::Rc;

use super::pidfd::{ExitWatch, Pidfd};
use super::pipe::Pipe;
use super::stdio::{ChildStderr, ChildStdin, ChildStdout};
use crate::driver::Driver;

/// A child process spawned by [`super::Command::spawn`] (asyncio's
/// `Process`).
///
/// Waiting happens on the loop's ring (see the [module docs](super)); the
/// loop thread never blocks in `waitpid`.
///
/// Dropping a `Child` does not wait for the process and does not kill it
/// (unless [`super::Command::kill_on_drop`] was set), but it does not leave
/// a zombie either: the loop reaps the process in the background when it
/// exits.
///
/// # Examples
///
/// ```
/// use ringloop::process::Command;
/// ringloop::run(async {
///     let mut child = Command::new("sh").args(["-c", "exit 3"]).spawn()?;
///     let status = child.wait().await?;
///     assert_eq!(status.code(), Some(3));
///     Ok::<(), std::io::Error>(())
/// })
/// .unwrap()
/// .unwrap();
/// ```
pub struct Child {
    /// The child's stdin, when it was [`super::Stdio::piped`].
    pub stdin: Option<ChildStdin>,
    /// The child's stdout, when it was [`super::Stdio::piped`].
    pub stdout: Option<ChildStdout>,
    /// The child's stderr, when it was [`super::Stdio::piped`].
    pub stderr: Option<ChildStderr>,
    pidfd: Pidfd,
    driver: Rc<RefCell<Driver>>,
    watch: ExitWatch,
    program: OsString,
    kill_on_drop: bool,
}

impl Child {
    pub(crate) fn new(
        pidfd: Pidfd,
        driver: Rc<RefCell<Driver>>,
        program: OsString,
        kill_on_drop: bool,
    ) -> Child {
        Child {
            stdin: None,
            stdout: None,
            stderr: None,
            pidfd,
            watch: ExitWatch::best(&driver),
            driver,
            program,
            kill_on_drop,
        }
    }

    #[cfg(test)]
    pub(crate) fn force_watch(&mut self, watch: ExitWatch) {
        self.watch = watch;
    }

    /// The process id. Once the child has been reaped the id may be reused
    /// by another process.
    pub fn id(&self) -> u32 {
        self.pidfd.pid()
    }

    /// Closes [`Child::stdin`] (so a child reading it sees end-of-file and
    /// cannot deadlock the wait), then waits for the child to exit and
    /// returns its status (asyncio's `Process.wait`). Once it has exited,
    /// every call returns the same status at once.
    ///
    /// Cancel-safe: dropping the future cancels the wait on the ring and
    /// loses nothing; a later `wait` still gets the status.
    ///
    /// # Errors
    ///
    /// If the child was reaped by someone else (`SIGCHLD` ignored, a stray
    /// `waitpid(-1)`), or the ring fails.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::unix::process::ExitStatusExt;
    /// use std::time::Duration;
    /// use ringloop::process::Command;
    /// ringloop::run(async {
    ///     let mut child = Command::new("sleep").arg("10").spawn()?;
    ///     let waited = ringloop::wait_for(child.wait(), Some(Duration::from_millis(20))).await;
    ///     assert!(waited.is_err(), "still sleeping");
    ///     child.kill()?;
    ///     assert_eq!(child.wait().await?.signal(), Some(libc::SIGKILL));
    ///     Ok::<(), std::io::Error>(())
    /// })
    /// .unwrap()
    /// .unwrap();
    /// ```
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        drop(self.stdin.take());
        self.pidfd.wait(&self.driver, self.watch).await
    }

    /// The exit status if the child has exited (reaping it), `None` while
    /// it runs. Never blocks.
    ///
    /// # Errors
    ///
    /// As for [`Child::wait`].
    ///
    /// # Examples
    ///
    /// ```
    /// use ringloop::process::Command;
    /// ringloop::run(async {
    ///     let mut child = Command::new("sleep").arg("10").kill_on_drop(true).spawn()?;
    ///     assert!(child.try_wait()?.is_none());
    ///     Ok::<(), std::io::Error>(())
    /// })
    /// .unwrap()
    /// .unwrap();
    /// ```
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.pidfd.try_wait()
    }

    /// Sends `SIGKILL` (asyncio's `Process.kill`; `std`'s `Child::kill`).
    /// Does not wait: call [`Child::wait`] to reap. `Ok` if the child has
    /// already exited.
    ///
    /// # Errors
    ///
    /// `pidfd_send_signal(2)` failures (`EPERM`).
    pub fn kill(&self) -> io::Result<()> {
        self.send_signal(libc::SIGKILL)
    }

    /// Sends `SIGTERM` (asyncio's `Process.terminate`).
    ///
    /// # Errors
    ///
    /// As for [`Child::kill`].
    pub fn terminate(&self) -> io::Result<()> {
        self.send_signal(libc::SIGTERM)
    }

    /// Sends signal `sig` (e.g. `libc::SIGINT`) through the pidfd, so it can
    /// never hit another process that reused the pid. `Ok` without sending
    /// anything once the child has exited (as `Popen.send_signal`).
    ///
    /// # Errors
    ///
    /// `EINVAL` for a bad signal number, `EPERM`.
    pub fn send_signal(&self, sig: i32) -> io::Result<()> {
        self.pidfd
            .signal(sig)
            .map_err(|e| io::Error::new(e.kind(), format!("{:?}: {e}", self.program)))
    }

    /// Feeds `input` to the child's stdin and closes it, reads its stdout
    /// and stderr to the end, all at once (so no pipe can fill up and
    /// deadlock, whatever the sizes), then waits for it to exit (asyncio's
    /// `Process.communicate`).
    ///
    /// Streams that were not piped read as empty. A child that exits or
    /// closes its stdin before taking all of `input` is not an error (as
    /// in asyncio): the rest is dropped. The pipes are taken from `self`:
    /// if this future is dropped, they are closed and unread output lost.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `input` is not empty but stdin was not piped; I/O
    /// errors on the pipes; as for [`Child::wait`].
    ///
    /// # Examples
    ///
    /// ```
    /// use ringloop::process::{Command, Stdio};
    /// ringloop::run(async {
    ///     let mut child = Command::new("tr")
    ///         .arg("a-z")
    ///         .arg("A-Z")
    ///         .stdin(Stdio::piped())
    ///         .stdout(Stdio::piped())
    ///         .spawn()?;
    ///     let out = child.communicate("shout").await?;
    ///     assert!(out.status.success());
    ///     assert_eq!(out.stdout, b"SHOUT");
    ///     Ok::<(), std::io::Error>(())
    /// })
    /// .unwrap()
    /// .unwrap();
    /// ```
    pub async fn communicate(&mut self, input: impl Into<Vec<u8>>) -> io::Result<Output> {
        let input = input.into();
        if !input.is_empty() && self.stdin.is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "communicate: {:?} has no piped stdin to feed the input to",
                    self.program
                ),
            ));
        }
        let feed = feed(self.stdin.take(), input);
        let out = read_all(self.stdout.take().map(ChildStdout::into_pipe));
        let err = read_all(self.stderr.take().map(ChildStderr::into_pipe));
        let (fed, stdout, stderr) = futures_util::future::join3(feed, out, err).await;
        fed?;
        let (stdout, stderr) = (stdout?, stderr?);
        let status = self.wait().await?;
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }

    /// Closes stdin, collects stdout and stderr and waits (`std`'s
    /// `Child::wait_with_output`): [`Child::communicate`] with no input.
    ///
    /// # Errors
    ///
    /// As for [`Child::communicate`].
    pub async fn wait_with_output(mut self) -> io::Result<Output> {
        self.communicate(Vec::new()).await
    }
}

/// Writes `input` to `stdin`, then closes it. The child going away early
/// (`BrokenPipe`) is not an error.
async fn feed(stdin: Option<ChildStdin>, input: Vec<u8>) -> io::Result<()> {
    let Some(stdin) = stdin else { return Ok(()) };
    let gone = |e: &io::Error| {
        matches!(
            e.kind(),
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
        )
    };
    if !input.is_empty() {
        let (res, _) = stdin.write_all(input).await;
        match res {
            Err(e) if !gone(&e) => return Err(e),
            _ => {}
        }
    }
    match stdin.close().await {
        Err(e) if !gone(&e) => Err(e),
        _ => Ok(()),
    }
}

/// Reads `pipe` to end-of-file (nothing if it is `None`).
async fn read_all(pipe: Option<Pipe>) -> io::Result<Vec<u8>> {
    let Some(pipe) = pipe else {
        return Ok(Vec::new());
    };
    let (res, buf) = pipe.read_to_end(Vec::new()).await;
    res.map(|_| buf)
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.kill_on_drop && self.pidfd.status().is_none() {
            let _ = self.pidfd.signal(libc::SIGKILL);
        }
        // `pidfd`'s own Drop reaps the child, in the background if need be.
    }
}

impl fmt::Debug for Child {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Child")
            .field("program", &self.program)
            .field("pid", &self.pidfd.pid())
            .field("status", &self.pidfd.status())
            .field("stdin", &self.stdin)
            .field("stdout", &self.stdout)
            .field("stderr", &self.stderr)
            .finish()
    }
}
