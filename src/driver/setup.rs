//! Ring creation: the flags tried, in order, and the errors explained.

use std::io;

use io_uring::{IoUring, Probe};

/// How to set up a ring (the loop `Builder` fills this in).
#[derive(Clone, Debug)]
pub(crate) struct RingConfig {
    /// Submission queue entries (rounded up to a power of two by the kernel).
    pub(crate) entries: u32,
    /// Completion queue entries; `None` lets the kernel pick (2 × entries).
    /// Ops in flight never exceed it (more wait in user space).
    pub(crate) cq_entries: Option<u32>,
    /// `IORING_SETUP_SQPOLL` with this idle time in milliseconds.
    pub(crate) sqpoll_idle_ms: Option<u32>,
    /// Try `SINGLE_ISSUER | DEFER_TASKRUN | COOP_TASKRUN | TASKRUN_FLAG`.
    pub(crate) fast_flags: bool,
    /// The backend the builder forces, if any (else `RINGLOOP_BACKEND`,
    /// else io_uring with fallback to epoll).
    pub(crate) backend: Option<super::Backend>,
}

impl Default for RingConfig {
    fn default() -> Self {
        RingConfig {
            entries: 256,
            cq_entries: Some(8192),
            sqpoll_idle_ms: None,
            fast_flags: true,
            backend: None,
        }
    }
}

/// What the ring was set up with.
pub(crate) struct Applied {
    pub(crate) probe: Probe,
    pub(crate) defer_taskrun: bool,
    pub(crate) coop_taskrun: bool,
    pub(crate) sqpoll: bool,
}

impl Applied {
    pub(crate) fn describe(&self) -> String {
        let mut v = Vec::new();
        if self.defer_taskrun {
            v.push("SINGLE_ISSUER|DEFER_TASKRUN");
        }
        if self.coop_taskrun {
            v.push("COOP_TASKRUN|TASKRUN_FLAG");
        }
        if self.sqpoll {
            v.push("SQPOLL");
        }
        if v.is_empty() {
            "plain".to_owned()
        } else {
            v.join("|")
        }
    }
}

#[derive(Clone, Copy)]
enum Level {
    /// SINGLE_ISSUER + DEFER_TASKRUN + COOP_TASKRUN + TASKRUN_FLAG (6.1+).
    Defer,
    /// COOP_TASKRUN + TASKRUN_FLAG (5.19+).
    Coop,
    /// No optional flags.
    Plain,
}

/// Why a ring could not be set up.
#[derive(Debug)]
pub(crate) struct Refused {
    /// The cause and the fix, for the user.
    pub(crate) error: io::Error,
    /// io_uring itself is unavailable here (refused, missing or too old),
    /// as opposed to a bad setting: `Auto` falls back to epoll.
    pub(crate) unavailable: bool,
}

impl Refused {
    fn unavailable(error: io::Error) -> Refused {
        Refused {
            error,
            unavailable: true,
        }
    }
}

/// Whether `io_uring_setup`'s errno means "no io_uring here".
fn unavailable_errno(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOSYS | libc::EPERM | libc::EACCES | libc::ENOMEM)
    )
}

/// Settings that are wrong whatever the backend (a loop on epoll ignores
/// the ring's sizes, but a program that asks for 0 entries has a bug that
/// should not depend on where it runs).
pub(crate) fn validate(cfg: &RingConfig) -> io::Result<()> {
    if cfg.entries == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "ringloop: ring entries must be at least 1",
        ));
    }
    Ok(())
}

/// Builds the ring, retrying with fewer flags on `EINVAL`.
pub(crate) fn build(cfg: &RingConfig) -> Result<(IoUring, Applied), Refused> {
    validate(cfg).map_err(|error| Refused {
        error,
        unavailable: false,
    })?;
    let levels: &[Level] = match (cfg.fast_flags, cfg.sqpoll_idle_ms.is_some()) {
        // DEFER_TASKRUN is incompatible with SQPOLL.
        (true, false) => &[Level::Defer, Level::Coop, Level::Plain],
        (true, true) => &[Level::Coop, Level::Plain],
        (false, _) => &[Level::Plain],
    };
    let mut last = None;
    for &level in levels {
        match try_build(cfg, level) {
            Ok(ring) => {
                let mut probe = Probe::new();
                ring.submitter().register_probe(&mut probe).map_err(|e| {
                    Refused::unavailable(io::Error::new(
                        e.kind(),
                        format!(
                            "ringloop: IORING_REGISTER_PROBE failed ({e}); Linux 5.6+ is required"
                        ),
                    ))
                })?;
                if !ring.params().is_feature_ext_arg() || !ring.params().is_feature_nodrop() {
                    return Err(Refused::unavailable(io::Error::new(
                        io::ErrorKind::Unsupported,
                        "ringloop: this kernel's io_uring lacks IORING_FEAT_EXT_ARG (timed waits) or IORING_FEAT_NODROP; \
                         ringloop needs Linux 5.11 or newer",
                    )));
                }
                let applied = Applied {
                    probe,
                    defer_taskrun: matches!(level, Level::Defer),
                    coop_taskrun: matches!(level, Level::Defer | Level::Coop),
                    sqpoll: cfg.sqpoll_idle_ms.is_some(),
                };
                return Ok((ring, applied));
            }
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => last = Some(e),
            Err(e) => {
                return Err(Refused {
                    unavailable: unavailable_errno(&e),
                    error: explain(e, cfg),
                });
            }
        }
    }
    Err(Refused {
        error: explain(last.expect("at least one level was tried"), cfg),
        unavailable: false,
    })
}

fn try_build(cfg: &RingConfig, level: Level) -> io::Result<IoUring> {
    let mut b = IoUring::builder();
    // MADV_DONTFORK on the ring mappings: a forked child does not share
    // (and cannot scribble on) the parent's SQ/CQ memory; see
    // docs/design/fork.md.
    b.dontfork();
    if let Some(cq) = cfg.cq_entries {
        b.setup_cqsize(cq);
    }
    if let Some(idle) = cfg.sqpoll_idle_ms {
        b.setup_sqpoll(idle);
    }
    match level {
        Level::Defer => {
            b.setup_single_issuer()
                .setup_defer_taskrun()
                .setup_coop_taskrun()
                .setup_taskrun_flag();
        }
        Level::Coop => {
            b.setup_coop_taskrun().setup_taskrun_flag();
        }
        Level::Plain => {}
    }
    b.build(cfg.entries)
}

/// The `tracing` events (feature `tracing`) of a loop's set-up: the
/// backend and ring it came up with (INFO), and, before that, why it fell
/// back to epoll if it did (WARN).
pub(super) fn trace_chosen(kernel: &super::Kernel, cfg: &RingConfig, fallback: Option<&str>) {
    if let Some(reason) = fallback {
        crate::trace::event!(
            target: "ringloop::driver",
            WARN,
            "io_uring is unavailable here; the loop falls back to epoll",
            reason = reason,
        );
    }
    match kernel {
        super::Kernel::Uring { ring, config } => crate::trace::event!(
            target: "ringloop::driver",
            INFO,
            "event loop set up",
            backend = "io_uring",
            sq_entries = ring.params().sq_entries(),
            cq_entries = ring.params().cq_entries(),
            flags = crate::trace::display(config.describe()),
        ),
        super::Kernel::Epoll(_) => crate::trace::event!(
            target: "ringloop::driver",
            INFO,
            "event loop set up",
            backend = "epoll",
            fallback = fallback.is_some(),
            requested_entries = cfg.entries,
        ),
    }
}

/// Turns an `io_uring_setup` error into one that names the cause and the fix.
fn explain(e: io::Error, cfg: &RingConfig) -> io::Error {
    let msg = match e.raw_os_error() {
        Some(libc::ENOSYS) => enosys_cause(),
        Some(errno @ (libc::EPERM | libc::EACCES)) => {
            let name = if errno == libc::EPERM {
                "EPERM"
            } else {
                "EACCES"
            };
            let sysctl = crate::sys::io_uring_disabled_sysctl();
            let cause = match sysctl.as_deref() {
                Some("2") => "kernel.io_uring_disabled = 2 disables io_uring for every process; \
                     set it to 0 (`sysctl -w kernel.io_uring_disabled=0`)"
                    .to_owned(),
                Some("1") => "kernel.io_uring_disabled = 1 allows io_uring only for \
                     CAP_SYS_ADMIN or members of kernel.io_uring_group; set it to 0 or add this \
                     user to that group"
                    .to_owned(),
                _ => "a seccomp filter (e.g. a container runtime's default profile) or an LSM \
                     blocks io_uring_setup; allow io_uring_setup, io_uring_enter and \
                     io_uring_register in the profile (docker: --security-opt \
                     seccomp=<profile allowing them>)"
                    .to_owned(),
            };
            format!("io_uring_setup was denied ({name}: {e}): {cause}")
        }
        Some(libc::ENOMEM) => {
            let limit = crate::sys::memlock_limit()
                .map(|l| {
                    if l == libc::RLIM_INFINITY {
                        "unlimited".to_owned()
                    } else {
                        format!("{} KiB", l / 1024)
                    }
                })
                .unwrap_or_else(|| "unknown".to_owned());
            format!(
                "io_uring_setup ran out of memory ({e}) for {} entries: kernels before 5.12 \
                 charge rings to RLIMIT_MEMLOCK (now {limit}); raise it (`ulimit -l`, systemd \
                 LimitMEMLOCK=) or ask for fewer entries with Builder::entries",
                cfg.entries
            )
        }
        Some(libc::EINVAL) => format!(
            "io_uring_setup rejected the parameters ({e}) even without optional flags: \
             entries = {}, cq_entries = {:?} (entries must be at most 32768 and cq_entries at \
             least entries)",
            cfg.entries, cfg.cq_entries
        ),
        _ => format!("io_uring_setup failed: {e}"),
    };
    io::Error::new(e.kind(), format!("ringloop: {msg}"))
}

/// Why `io_uring_setup` may answer ENOSYS here: an old kernel, or a new one
/// whose io_uring is hidden (gVisor, a seccomp profile answering ENOSYS,
/// `CONFIG_IO_URING=n`). gVisor reports an old release, so it is named in
/// both cases.
fn enosys_cause() -> String {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let version = (parts.next(), parts.next());
    let major_minor = match version {
        (Some(a), Some(b)) => a.parse::<u32>().ok().zip(b.parse::<u32>().ok()),
        _ => None,
    };
    let head = "io_uring_setup is not implemented (ENOSYS); ringloop needs Linux 5.11 or \
                newer with io_uring enabled";
    match major_minor {
        Some(v) if v < (5, 1) => format!(
            "{head}. This kernel ({release}) is older than 5.1, which introduced io_uring: \
             upgrade it (or, if this is gVisor, which reports an old release and disables \
             io_uring, run under a runtime that allows it)"
        ),
        _ => format!(
            "{head}. This kernel ({release}) is new enough, so io_uring is hidden from \
             this process: a sandbox such as gVisor, a seccomp filter that answers ENOSYS, or \
             a kernel built without CONFIG_IO_URING; allow io_uring_setup, io_uring_enter and \
             io_uring_register, or run outside the sandbox"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explains_enosys_eperm_enomem() {
        let cfg = RingConfig::default();
        for (errno, needle) in [
            (libc::ENOSYS, "Linux 5.11"),
            (libc::EPERM, "io_uring"),
            (libc::ENOMEM, "RLIMIT_MEMLOCK"),
        ] {
            let e = explain(io::Error::from_raw_os_error(errno), &cfg);
            let msg = e.to_string();
            assert!(msg.contains(needle), "{msg}");
            assert!(msg.starts_with("ringloop: "), "{msg}");
            assert_eq!(e.raw_os_error(), None);
        }
    }

    #[test]
    fn zero_entries_is_a_clear_error() {
        let cfg = RingConfig {
            entries: 0,
            ..RingConfig::default()
        };
        let e = build(&cfg).err().expect("0 entries must fail");
        assert_eq!(e.error.kind(), io::ErrorKind::InvalidInput);
        assert!(!e.unavailable);
    }
}
