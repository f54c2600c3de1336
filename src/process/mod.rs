//! Child processes driven by the loop (asyncio's `create_subprocess_exec`).
//!
//! [`Command`] mirrors [`std::process::Command`]; [`Command::spawn`] gives
//! a [`Child`] whose piped stdin, stdout and stderr are ringloop streams
//! ([`ChildStdin`], [`ChildStdout`], [`ChildStderr`]: owned-buffer reads
//! and writes through the ring, plus `futures_io` adapters).
//!
//! - **Waiting never blocks the loop.** The child's exit is awaited through
//!   the loop on its pidfd (`IORING_OP_WAITID` on Linux 6.7+, else a poll
//!   of the pidfd; on the epoll backend, always the poll), then reaped with
//!   a `waitid` that cannot block. No `SIGCHLD` handler is installed, so
//!   other code's signal handling is left alone.
//! - **No deadlock on big outputs.** [`Child::communicate`] and
//!   [`Command::output`] feed stdin and drain stdout and stderr at the same
//!   time.
//! - **No zombies.** A [`Child`] dropped before it exited is reaped in the
//!   background once it does; [`Command::kill_on_drop`] kills it instead.
//! - **Clear errors.** A missing program, a file that is not executable or a
//!   missing working directory gives an `io::Error` naming the program.
//!
//! The details of waiting, and the one caveat (nothing else in the process
//! may reap our children: no `SIGCHLD` set to `SIG_IGN`, no `waitpid(-1)`),
//! are in the docs of the pidfd module (`src/process/pidfd.rs`).
//!
//! # Examples
//!
//! Pipe data through `sort`, and give up on a process that takes too long:
//!
//! ```
//! use std::os::unix::process::ExitStatusExt;
//! use std::time::Duration;
//! use ringloop::process::{Command, Stdio};
//!
//! ringloop::run(async {
//!     let mut sort = Command::new("sort")
//!         .stdin(Stdio::piped())
//!         .stdout(Stdio::piped())
//!         .spawn()?;
//!     let out = sort.communicate("pear\napple\nfig\n").await?;
//!     assert_eq!(out.stdout, b"apple\nfig\npear\n");
//!
//!     let mut sleeper = Command::new("sleep").arg("10").spawn()?;
//!     let waited = ringloop::wait_for(sleeper.wait(), Some(Duration::from_millis(50))).await;
//!     assert!(waited.is_err(), "timed out");
//!     sleeper.kill()?;
//!     let status = sleeper.wait().await?;
//!     assert_eq!(status.signal(), Some(libc::SIGKILL));
//!     Ok::<(), std::io::Error>(())
//! })
//! .unwrap()
//! .unwrap();
//! ```

mod child;
mod command;
pub(crate) mod pidfd;
pub(crate) mod pipe;
mod stdio;
#[cfg(test)]
mod tests;

pub use child::Child;
pub use command::Command;
pub use std::process::{ExitStatus, Output, Stdio};
pub use stdio::{ChildStderr, ChildStdin, ChildStdout};
