//! Fault tests (issue 7, "Stress and faults"), quick enough for every
//! `cargo test`:
//!
//! - [`peer`]: a peer that resets, half-closes or stalls mid-message;
//!   [`streams`]: the same faults under asyncio's `StreamReader`;
//! - [`seccomp`]: the io_uring syscalls refused by a seccomp filter (EPERM
//!   as in a container, and ENOSYS as on an old kernel or gVisor): the loop
//!   comes up on epoll, says why, and echoes byte-exact; a forced io_uring
//!   is a clear error, no panic;
//! - [`fork`]: `fork()` with a live loop: the child builds its own loop,
//!   the parent's loop and its ops in flight are unaffected.
//!
//! The seccomp and fork tests run in a child process: this test binary run
//! again with one test selected and a role in the environment ([`child`]).
//! Every test here takes [`common::serial`]: they count the process's fds,
//! and a sibling test spawning a child would briefly add pipe fds.

mod common;

#[path = "faults/child.rs"]
mod child;
#[path = "faults/fork.rs"]
mod fork;
#[path = "faults/peer.rs"]
mod peer;
#[path = "faults/seccomp.rs"]
mod seccomp;
#[path = "faults/streams.rs"]
mod streams;

/// Asserts the process's fd count comes back to `base`. Within a second: a
/// blocking-pool thread that has just handed a job's result to a loop may
/// still hold, for a moment, the waker that keeps the loop's eventfd open.
fn assert_fds_back(base: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    while common::fd_count() != base && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert_eq!(
        common::fd_count(),
        base,
        "fds after the test: {:?}",
        common::fd_list()
    );
}
