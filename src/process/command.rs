//! [`Command`]: a builder of child processes, as `std::process::Command`.

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{ExitStatus, Output, Stdio};

use super::child::Child;
use super::pidfd::Pidfd;
use super::pipe::Pipe;
use super::stdio::{ChildStderr, ChildStdin, ChildStdout};

/// A process builder mirroring [`std::process::Command`], whose children
/// are waited for on the loop (asyncio's `create_subprocess_exec`).
///
/// By default the child inherits the parent's environment, working
/// directory and stdin/stdout/stderr ([`Command::output`] pipes stdout and
/// stderr and gives stdin `/dev/null` instead). Options not mirrored here
/// (`uid`, `process_group`, `pre_exec`, ...) are reachable through
/// [`Command::as_std_mut`] and `std::os::unix::process::CommandExt`.
///
/// # Examples
///
/// ```
/// use ringloop::process::Command;
/// ringloop::run(async {
///     let out = Command::new("echo").arg("hello").output().await?;
///     assert!(out.status.success());
///     assert_eq!(out.stdout, b"hello\n");
///     Ok::<(), std::io::Error>(())
/// })
/// .unwrap()
/// .unwrap();
/// ```
pub struct Command {
    std: std::process::Command,
    kill_on_drop: bool,
    /// Which stdio the caller configured (`output` defaults the others).
    stdin_set: bool,
    stdout_set: bool,
    stderr_set: bool,
}

impl Command {
    /// A command that runs `program` (looked up in `PATH` if it has no
    /// `/`), with no arguments.
    pub fn new(program: impl AsRef<OsStr>) -> Command {
        Command::from(std::process::Command::new(program))
    }

    /// Adds one argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Command {
        self.std.arg(arg);
        self
    }

    /// Adds several arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.std.args(args);
        self
    }

    /// Sets an environment variable for the child.
    pub fn env(&mut self, key: impl AsRef<OsStr>, val: impl AsRef<OsStr>) -> &mut Command {
        self.std.env(key, val);
        self
    }

    /// Sets several environment variables for the child.
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Command
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.std.envs(vars);
        self
    }

    /// Removes an environment variable from the child's environment.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Command {
        self.std.env_remove(key);
        self
    }

    /// Clears the child's environment (only variables set afterwards with
    /// [`Command::env`] are passed).
    pub fn env_clear(&mut self) -> &mut Command {
        self.std.env_clear();
        self
    }

    /// Sets the child's working directory.
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Command {
        self.std.current_dir(dir);
        self
    }

    /// The child's stdin: [`Stdio::inherit`] (default), [`Stdio::null`],
    /// [`Stdio::piped`] (then [`Child::stdin`] is set), or a file.
    pub fn stdin(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.std.stdin(cfg);
        self.stdin_set = true;
        self
    }

    /// The child's stdout (as [`Command::stdin`]; piped: [`Child::stdout`]).
    pub fn stdout(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.std.stdout(cfg);
        self.stdout_set = true;
        self
    }

    /// The child's stderr (as [`Command::stdin`]; piped: [`Child::stderr`]).
    pub fn stderr(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.std.stderr(cfg);
        self.stderr_set = true;
        self
    }

    /// Whether dropping the [`Child`] before it was reaped kills it with
    /// `SIGKILL` (default false: it keeps running, and is reaped in the
    /// background once it exits).
    pub fn kill_on_drop(&mut self, kill: bool) -> &mut Command {
        self.kill_on_drop = kill;
        self
    }

    /// The program to run.
    pub fn get_program(&self) -> &OsStr {
        self.std.get_program()
    }

    /// The underlying `std` command.
    pub fn as_std(&self) -> &std::process::Command {
        &self.std
    }

    /// The underlying `std` command, for options not mirrored here
    /// (`std::os::unix::process::CommandExt`).
    pub fn as_std_mut(&mut self) -> &mut std::process::Command {
        &mut self.std
    }

    /// Starts the child. Its piped stdio become ringloop streams on the
    /// running loop, and the loop will wait for its exit through the ring.
    ///
    /// The `fork`/`exec` itself is synchronous, as in asyncio and tokio:
    /// `std` spawns the child and learns whether `exec` succeeded before
    /// returning, which holds the loop for about a millisecond (measured
    /// for `true`: mean 1.0 ms, worst 7.5 ms over 200 spawns).
    ///
    /// # Errors
    ///
    /// With the program in the message: `NotFound` (no such program, or
    /// no such working directory: the message says which),
    /// `PermissionDenied` (not executable), any other `fork`/`exec` error;
    /// or no running loop.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringloop::process::Command;
    /// ringloop::run(async {
    ///     let err = Command::new("no-such-program-ringloop").spawn().unwrap_err();
    ///     assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    ///     assert!(err.to_string().contains("no-such-program-ringloop"));
    /// })
    /// .unwrap();
    /// ```
    pub fn spawn(&mut self) -> io::Result<Child> {
        let program = self.std.get_program().to_os_string();
        let driver = crate::runtime::current_driver().map_err(|_| {
            io::Error::other(format!(
                "cannot spawn {program:?}: no ringloop event loop is running on this thread"
            ))
        })?;
        let mut std_child = self.std.spawn().map_err(|e| self.spawn_error(e))?;
        let pid = std_child.id();
        // No one else reaps our children, so `pid` still names this child
        // (see `pidfd`'s module docs for the caveat).
        let pidfd = match Pidfd::open(pid) {
            Ok(p) => p,
            Err(e) => {
                // Without a pidfd the loop cannot wait for it: stop it now
                // (a blocking wait, but on a process just killed).
                let _ = std_child.kill();
                let _ = std_child.wait();
                return Err(io::Error::new(
                    e.kind(),
                    format!("pidfd_open for {program:?} (pid {pid}; Linux 5.3+ needed): {e}"),
                ));
            }
        };
        let pipe = |fd: OwnedFd| Pipe::new(fd, driver.clone());
        let stdin = std_child
            .stdin
            .take()
            .map(|s| ChildStdin::new(pipe(s.into())));
        let stdout = std_child
            .stdout
            .take()
            .map(|s| ChildStdout::new(pipe(s.into())));
        let stderr = std_child
            .stderr
            .take()
            .map(|s| ChildStderr::new(pipe(s.into())));
        // `std_child` holds nothing more; dropping it neither waits nor kills.
        drop(std_child);
        let mut child = Child::new(pidfd, driver, program, self.kill_on_drop);
        child.stdin = stdin;
        child.stdout = stdout;
        child.stderr = stderr;
        Ok(child)
    }

    /// The error of a failed spawn, naming the program, and the working
    /// directory when that is what is missing.
    fn spawn_error(&self, e: io::Error) -> io::Error {
        let program = self.std.get_program();
        if let Some(dir) = self.std.get_current_dir() {
            let problem = match std::fs::metadata(dir) {
                Err(me) => Some(me.to_string()),
                Ok(m) if !m.is_dir() => Some("not a directory".to_owned()),
                Ok(_) => None,
            };
            if let Some(problem) = problem {
                return io::Error::new(
                    e.kind(),
                    format!(
                        "failed to spawn {program:?}: working directory {dir:?}: {problem} ({e})"
                    ),
                );
            }
        }
        io::Error::new(e.kind(), format!("failed to spawn {program:?}: {e}"))
    }

    /// Runs the child to completion and collects its output (`std`'s
    /// `Command::output`): unless configured otherwise, stdout and stderr
    /// are piped and stdin is `/dev/null`.
    ///
    /// # Errors
    ///
    /// As for [`Command::spawn`] and [`Child::wait_with_output`].
    pub async fn output(&mut self) -> io::Result<Output> {
        let (stdin_set, stdout_set, stderr_set) =
            (self.stdin_set, self.stdout_set, self.stderr_set);
        if !stdin_set {
            self.std.stdin(Stdio::null());
        }
        if !stdout_set {
            self.std.stdout(Stdio::piped());
        }
        if !stderr_set {
            self.std.stderr(Stdio::piped());
        }
        let child = self.spawn();
        // Back to the defaults of `spawn` (inheriting).
        if !stdin_set {
            self.std.stdin(Stdio::inherit());
        }
        if !stdout_set {
            self.std.stdout(Stdio::inherit());
        }
        if !stderr_set {
            self.std.stderr(Stdio::inherit());
        }
        child?.wait_with_output().await
    }

    /// Runs the child to completion with the configured (by default
    /// inherited) stdio and returns its exit status (`std`'s
    /// `Command::status`).
    ///
    /// # Errors
    ///
    /// As for [`Command::spawn`] and [`Child::wait`].
    ///
    /// # Examples
    ///
    /// ```
    /// use ringloop::process::Command;
    /// ringloop::run(async {
    ///     let status = Command::new("false").status().await?;
    ///     assert_eq!(status.code(), Some(1));
    ///     Ok::<(), std::io::Error>(())
    /// })
    /// .unwrap()
    /// .unwrap();
    /// ```
    pub async fn status(&mut self) -> io::Result<ExitStatus> {
        self.spawn()?.wait().await
    }
}

impl From<std::process::Command> for Command {
    /// Wraps a configured `std` command. Its stdio settings are kept, but
    /// [`Command::output`] cannot see them and pipes stdout and stderr (and
    /// nulls stdin) unless they are set again on the wrapper.
    fn from(std: std::process::Command) -> Command {
        Command {
            std,
            kill_on_drop: false,
            stdin_set: false,
            stdout_set: false,
            stderr_set: false,
        }
    }
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Command")
            .field("command", &self.std)
            .field("kill_on_drop", &self.kill_on_drop)
            .finish()
    }
}
