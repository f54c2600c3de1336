//! Which kernel interface a loop runs on, and how it is chosen.

use std::fmt;
use std::io;

/// The kernel interface an event loop's I/O goes through
/// ([`EventLoop::backend`](crate::EventLoop::backend),
/// [`Builder::backend`](crate::Builder::backend)).
///
/// Both run every ringloop API with the same semantics; `IoUring` makes
/// fewer syscalls. By default a loop tries io_uring and falls back to
/// epoll when `io_uring_setup` is refused: `ENOSYS` (an old kernel,
/// gVisor), `EPERM`/`EACCES` (Docker's, containerd's and Kubernetes'
/// default seccomp profiles, `kernel.io_uring_disabled`), `ENOMEM`
/// (`RLIMIT_MEMLOCK` on kernels before 5.12), or a kernel older than the
/// 5.11 ringloop's io_uring backend needs.
///
/// The `RINGLOOP_BACKEND` environment variable (`io_uring`, `epoll` or
/// `auto`) forces the choice for loops whose `Builder` does not.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Backend {
    /// A completion ring (`io_uring(7)`): ops are submitted and reaped in
    /// batches, one `io_uring_enter` per loop turn. The default: the one a
    /// loop tries first.
    #[default]
    IoUring,
    /// Readiness (`epoll(7)`): each op is tried without blocking and, if it
    /// would block, retried when epoll reports its fd ready; file and path
    /// operations run on the blocking pool.
    Epoll,
}

impl Backend {
    /// The name `RINGLOOP_BACKEND` accepts: `"io_uring"` or `"epoll"`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::IoUring => "io_uring",
            Backend::Epoll => "epoll",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a loop asks for: a given backend, or io_uring with epoll fallback.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Choice {
    #[default]
    Auto,
    Force(Backend),
}

/// The environment variable that picks the backend.
pub(crate) const ENV: &str = "RINGLOOP_BACKEND";

impl Choice {
    /// `explicit` (the builder's), else `RINGLOOP_BACKEND`, else `Auto`.
    pub(crate) fn resolve(explicit: Option<Backend>) -> io::Result<Choice> {
        if let Some(b) = explicit {
            return Ok(Choice::Force(b));
        }
        match std::env::var(ENV) {
            Ok(v) => Choice::parse(&v),
            Err(std::env::VarError::NotPresent) => Ok(Choice::Auto),
            Err(std::env::VarError::NotUnicode(v)) => Err(bad_value(&v.to_string_lossy())),
        }
    }

    fn parse(v: &str) -> io::Result<Choice> {
        match v.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(Choice::Auto),
            "io_uring" | "io-uring" | "iouring" | "uring" => Ok(Choice::Force(Backend::IoUring)),
            "epoll" => Ok(Choice::Force(Backend::Epoll)),
            _ => Err(bad_value(v)),
        }
    }
}

fn bad_value(v: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("ringloop: {ENV}={v:?} is not a backend; use io_uring, epoll or auto"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_names_and_rejects_the_rest() {
        assert_eq!(
            Choice::parse("epoll").unwrap(),
            Choice::Force(Backend::Epoll)
        );
        assert_eq!(
            Choice::parse(" IO_URING\n").unwrap(),
            Choice::Force(Backend::IoUring)
        );
        assert_eq!(Choice::parse("auto").unwrap(), Choice::Auto);
        assert_eq!(Choice::parse("").unwrap(), Choice::Auto);
        let e = Choice::parse("kqueue").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("RINGLOOP_BACKEND"), "{e}");
        assert_eq!(
            Choice::resolve(Some(Backend::Epoll)).unwrap(),
            Choice::Force(Backend::Epoll)
        );
    }
}
