//! io_uring refused: a child process installs a seccomp filter that makes
//! `io_uring_setup`, `io_uring_enter` and `io_uring_register` fail (as
//! Docker's and containerd's default profiles do since 2023), then:
//!
//! - `EventLoop::new()` (the default, `Auto`) comes up on the epoll
//!   backend, says so, and says why (`backend_fallback_reason`);
//! - that loop, and one made by `ringloop::run`, serve a TCP echo of 1 MiB
//!   over four connections byte-exact (SHA-256 compared);
//! - an io_uring forced by `Builder::backend(Backend::IoUring)`, or by
//!   `RINGLOOP_BACKEND=io_uring`, is an `io::Error` that names the cause
//!   and the fix, never a panic.
//!
//! EPERM is what container runtimes' default profiles (docker, podman)
//! answer; ENOSYS is what an old kernel, a kernel without
//! `CONFIG_IO_URING`, or gVisor answers.
//!
//! The children run without `RINGLOOP_BACKEND` (whatever the parent's
//! environment says: the suite may run with `RINGLOOP_BACKEND=epoll`),
//! except the one that sets it to `io_uring` on purpose.

use std::io;

use ringloop::net::{TcpListener, TcpStream};
use ringloop::{Backend, Builder, EventLoop, spawn};

use crate::child;
use crate::common::{Sha256, XorShift, hex};

/// `struct seccomp_data` offsets (linux/seccomp.h).
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;
const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
const BPF_LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const BPF_JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const BPF_RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xc000_003e; // AUDIT_ARCH_X86_64
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xc000_00b7; // AUDIT_ARCH_AARCH64

/// The syscalls Docker's default profile denies: all of io_uring.
const IO_URING_SYSCALLS: [libc::c_long; 3] = [
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
];

/// The echo each child serves: `CONNS` connections of `PER_CONN` bytes.
const CONNS: usize = 4;
const PER_CONN: usize = 256 * 1024;

/// The variable a child must not inherit (unless set on purpose).
const BACKEND_ENV: &str = "RINGLOOP_BACKEND";

/// Why a filter could not be installed.
enum Refused {
    /// The kernel has no seccomp filters: the test cannot run here.
    Unavailable(String),
    /// Anything else is a test failure.
    Failed(io::Error),
}

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// The filter: the io_uring syscalls of the native ABI fail with `errno`,
/// everything else is allowed.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn io_uring_filter(errno: i32) -> Vec<libc::sock_filter> {
    let n = IO_URING_SYSCALLS.len() as u8;
    let mut filter = vec![
        stmt(BPF_LD_W_ABS, DATA_ARCH),
        // Another ABI (x32, compat): allow (skip the number loads and
        // tests), we only deny the native calls.
        jump(BPF_JEQ_K, AUDIT_ARCH, 0, n + 1),
        stmt(BPF_LD_W_ABS, DATA_NR),
    ];
    for (i, nr) in IO_URING_SYSCALLS.into_iter().enumerate() {
        let nr = u32::try_from(nr).expect("syscall number");
        // Equal: jump over the remaining tests and the ALLOW to the ERRNO.
        filter.push(jump(BPF_JEQ_K, nr, n - i as u8, 0));
    }
    filter.push(stmt(BPF_RET_K, SECCOMP_RET_ALLOW));
    filter.push(stmt(BPF_RET_K, SECCOMP_RET_ERRNO | (errno as u32 & 0xffff)));
    filter
}

/// Installs, on the calling thread (and the threads it starts later),
/// [`io_uring_filter`]`(errno)`.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn deny_io_uring(errno: i32) -> Result<(), Refused> {
    let mut filter = io_uring_filter(errno);
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_mut_ptr(),
    };
    // SAFETY: prctl(PR_SET_NO_NEW_PRIVS) takes integer arguments only and
    // affects only this process (required to install a filter unprivileged).
    let r = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    if r != 0 {
        let e = io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::EINVAL) => Refused::Unavailable(format!("PR_SET_NO_NEW_PRIVS: {e}")),
            _ => Refused::Failed(e),
        });
    }
    // SAFETY: `prog` points at `filter`, both live for the call, which
    // copies the program into the kernel.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            0 as libc::c_ulong,
            &prog as *const libc::sock_fprog,
        )
    };
    if r != 0 {
        let e = io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            // No seccomp(2) (< 3.17) or no CONFIG_SECCOMP_FILTER.
            Some(libc::ENOSYS | libc::EINVAL) => {
                Refused::Unavailable(format!("seccomp(SET_MODE_FILTER): {e}"))
            }
            _ => Refused::Failed(e),
        });
    }
    Ok(())
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn deny_io_uring(_errno: i32) -> Result<(), Refused> {
    Err(Refused::Unavailable(
        "no seccomp filter for this architecture in the test".to_owned(),
    ))
}

/// Each io_uring syscall, called with arguments the kernel would reject
/// with EINVAL or EFAULT (or EBADF), fails with `errno`: the filter is in
/// force. (`io_uring_setup(0, NULL)` never makes a ring.)
fn assert_filtered(errno: i32) {
    const MINUS_ONE: libc::c_long = -1;
    for nr in IO_URING_SYSCALLS {
        // SAFETY: null pointers and fd -1: the kernel checks them and
        // writes nothing; the filter answers before it even looks.
        let r = unsafe { libc::syscall(nr, MINUS_ONE, 0usize, 0usize, 0usize, 0usize) };
        let e = io::Error::last_os_error();
        assert!(
            r == -1 && e.raw_os_error() == Some(errno),
            "syscall {nr} under the filter: {r}, {e}"
        );
    }
}

/// Installs the filter, or prints `SKIP` and returns false.
fn filter_or_skip(errno: i32) -> bool {
    match deny_io_uring(errno) {
        Ok(()) => {
            assert_filtered(errno);
            true
        }
        Err(Refused::Unavailable(why)) => {
            println!("SKIP seccomp unavailable: {why}");
            false
        }
        Err(Refused::Failed(e)) => panic!("installing the seccomp filter: {e}"),
    }
}

/// Echoes every connection it accepts until the peer's end of stream.
async fn echo_server(listener: TcpListener) -> io::Result<()> {
    loop {
        let (s, _) = listener.accept().await?;
        spawn(async move {
            let mut buf = Vec::with_capacity(16 * 1024);
            loop {
                buf.clear();
                let (res, b) = s.read(buf).await;
                if res.expect("server read") == 0 {
                    return;
                }
                let (res, b) = s.write_all(b).await;
                res.expect("server write");
                buf = b;
            }
        })
        .detach();
    }
}

/// One client: sends `PER_CONN` bytes from `seed` while reading the echo;
/// returns the SHA-256 of (what it sent, what came back).
async fn echo_client(addr: std::net::SocketAddr, seed: u64) -> ([u8; 32], [u8; 32]) {
    let c = TcpStream::connect(addr).await.expect("connect");
    let data = XorShift::new(seed).bytes(PER_CONN);
    let sent = Sha256::digest(&data);
    let c = &c;
    let (w, (r, back)) = futures_util::future::join(
        async {
            // In pieces, so writes and reads interleave on both ends.
            for piece in data.chunks(40 * 1024) {
                let (res, _) = c.write_all(piece.to_vec()).await;
                res?;
            }
            c.shutdown(std::net::Shutdown::Write).await
        },
        c.read_exact(Vec::with_capacity(PER_CONN)),
    )
    .await;
    w.expect("client write");
    r.expect("client read");
    // The server closes after our FIN: nothing beyond the echo.
    let (res, _) = c.read(Vec::with_capacity(16)).await;
    assert_eq!(
        res.expect("read at end of stream"),
        0,
        "bytes after the echo"
    );
    (sent, Sha256::digest(&back))
}

/// `CONNS` concurrent clients against an echo server on 127.0.0.1:0, on
/// the running loop; prints `ECHO <label> ...` once every byte came back.
async fn echo_1mib(label: &str) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local_addr");
    let server = spawn(echo_server(listener));
    let clients: Vec<_> = (0..CONNS as u64)
        .map(|i| spawn(echo_client(addr, 0x5ecc_0000 + i)))
        .collect();
    let mut all_sent = Sha256::new();
    let mut all_back = Sha256::new();
    for c in clients {
        let (sent, back) = c.await.expect("client task");
        assert_eq!(hex(&back), hex(&sent), "echoed bytes differ");
        all_sent.update(&sent);
        all_back.update(&back);
    }
    drop(server);
    let (sent, back) = (hex(&all_sent.finish()), hex(&all_back.finish()));
    assert_eq!(back, sent);
    println!(
        "ECHO {label} conns={CONNS} bytes={} sha256-of-sha256s sent={sent} echoed={back}",
        CONNS * PER_CONN
    );
}

/// The child's part under `Auto`: the loop falls back to epoll and works;
/// io_uring forced by the builder is the explained error.
fn child_falls_back(errno: i32) {
    assert!(
        std::env::var_os(BACKEND_ENV).is_none(),
        "the child inherited {BACKEND_ENV}"
    );
    if !filter_or_skip(errno) {
        return;
    }
    let lp = EventLoop::new().expect("EventLoop::new with io_uring denied");
    println!("BACKEND {}", lp.backend());
    let why = lp
        .backend_fallback_reason()
        .expect("a loop that fell back says why");
    println!("FALLBACK {why}");
    lp.run_until_complete(async {
        let stats = ringloop::ring_stats().expect("ring_stats");
        assert_eq!(stats.backend, Backend::Epoll, "{stats:?}");
        echo_1mib("EventLoop::new").await;
    })
    .expect("run_until_complete on the epoll loop");
    lp.close().expect("close");
    drop(lp);

    ringloop::run(async {
        let stats = ringloop::ring_stats().expect("ring_stats");
        assert_eq!(stats.backend, Backend::Epoll, "{stats:?}");
        echo_1mib("run").await;
    })
    .expect("ringloop::run with io_uring denied");

    let e = Builder::new()
        .backend(Backend::IoUring)
        .build()
        .expect_err("a forced io_uring with io_uring denied");
    println!("FORCED-ERROR {:?}: {e}", e.kind());
}

/// The child's part with `RINGLOOP_BACKEND=io_uring`: `EventLoop::new()`
/// and `ringloop::run` return the explained error; nothing runs.
fn child_forced_by_env(errno: i32) {
    assert_eq!(
        std::env::var(BACKEND_ENV).as_deref(),
        Ok("io_uring"),
        "the parent sets {BACKEND_ENV}=io_uring"
    );
    if !filter_or_skip(errno) {
        return;
    }
    let e = EventLoop::new().expect_err("EventLoop::new with io_uring forced and denied");
    println!("LOOP-ERROR {:?}: {e}", e.kind());
    let ran = std::cell::Cell::new(false);
    let e =
        ringloop::run(async { ran.set(true) }).expect_err("run with io_uring forced and denied");
    assert!(!ran.get(), "the future ran without a loop");
    println!("RUN-ERROR {:?}: {e}", e.kind());
}

/// What the errors and the fallback reason must say for one errno.
struct Expect {
    /// `"<ErrorKind>: ringloop: io_uring_setup"`: how an error line starts.
    kind: &'static str,
    /// Words each message holds.
    needles: Vec<&'static str>,
}

impl Expect {
    fn check(&self, what: &str, line: &str) {
        assert!(line.starts_with(self.kind), "{what} {line}");
        for needle in &self.needles {
            assert!(line.contains(needle), "{what} {line}\nlacks {needle:?}");
        }
    }
}

/// Runs one child of test `func` as `role`, with `RINGLOOP_BACKEND` set to
/// `backend` or removed; None if it skipped (seccomp unavailable).
fn run_child(func: &str, role: &str, backend: Option<&str>) -> Option<child::ChildRun> {
    let run = child::run_with_env(
        &child::test_name(module_path!(), func),
        role,
        &[(BACKEND_ENV, backend)],
    );
    run.assert_passed();
    assert!(!run.stderr.contains("panicked"), "{}", run.dump());
    if let Some(why) = run.line("SKIP ") {
        assert!(
            why.starts_with("seccomp unavailable"),
            "unexpected skip: {}",
            run.dump()
        );
        println!("skipped: {why}");
        return None;
    }
    Some(run)
}

/// The parent's part: the `Auto` child (fallback, echo, forced error) and
/// the `RINGLOOP_BACKEND=io_uring` child (errors), checked against `want`.
fn expect_fallback(func: &str, role: &str, want: &Expect) {
    let Some(run) = run_child(func, role, None) else {
        return;
    };
    let backend = run.line("BACKEND ").unwrap_or_default();
    assert_eq!(backend, "epoll", "{}", run.dump());
    let why = run
        .line("FALLBACK ")
        .unwrap_or_else(|| panic!("no FALLBACK line:\n{}", run.dump()));
    // The reason is the io_uring error itself, without its kind.
    let kind_free = Expect {
        kind: want.kind.split_once(": ").map_or(want.kind, |(_, m)| m),
        needles: want.needles.clone(),
    };
    kind_free.check("FALLBACK", why);
    for label in ["EventLoop::new", "run"] {
        let echo = run
            .line(&format!("ECHO {label} "))
            .unwrap_or_else(|| panic!("no ECHO {label} line:\n{}", run.dump()));
        assert!(
            echo.starts_with(&format!("conns={CONNS} bytes={} ", CONNS * PER_CONN)),
            "ECHO {label} {echo}"
        );
    }
    let forced = run
        .line("FORCED-ERROR ")
        .unwrap_or_else(|| panic!("no FORCED-ERROR line:\n{}", run.dump()));
    want.check("FORCED-ERROR", forced);

    let Some(run) = run_child(func, &format!("{role}-forced"), Some("io_uring")) else {
        return;
    };
    for marker in ["LOOP-ERROR ", "RUN-ERROR "] {
        let line = run
            .line(marker)
            .unwrap_or_else(|| panic!("no {marker}line:\n{}", run.dump()));
        want.check(marker, line);
    }
}

/// What an EPERM message names: seccomp, or the sysctl when that is set
/// (the driver reads it to tell the two apart).
fn eperm_cause() -> &'static str {
    match std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .map(|s| s.trim().to_owned())
        .as_deref()
    {
        Ok("1" | "2") => "kernel.io_uring_disabled",
        _ => "seccomp",
    }
}

/// EPERM (a container's seccomp profile): the loop runs on epoll; the
/// reason and the forced errors say io_uring_setup was denied, name
/// seccomp, and say what to allow.
#[test]
fn io_uring_denied_eperm_by_seccomp_falls_back_to_epoll() {
    const FUNC: &str = "io_uring_denied_eperm_by_seccomp_falls_back_to_epoll";
    if child::is_child("seccomp-eperm") {
        return child_falls_back(libc::EPERM);
    }
    if child::is_child("seccomp-eperm-forced") {
        return child_forced_by_env(libc::EPERM);
    }
    let _serial = crate::common::serial();
    let mut needles = vec!["EPERM", eperm_cause()];
    if needles[1] == "seccomp" {
        needles.push("io_uring_setup, io_uring_enter and io_uring_register");
    }
    let want = Expect {
        kind: "PermissionDenied: ringloop: io_uring_setup",
        needles,
    };
    expect_fallback(FUNC, "seccomp-eperm", &want);
}

/// ENOSYS (old kernel, gVisor, a profile that answers ENOSYS): the loop
/// runs on epoll; the reason and the forced errors say io_uring is missing
/// and which Linux ringloop needs, and, on a kernel new enough to have it,
/// that something hides it.
#[test]
fn io_uring_denied_enosys_falls_back_to_epoll() {
    const FUNC: &str = "io_uring_denied_enosys_falls_back_to_epoll";
    if child::is_child("seccomp-enosys") {
        return child_falls_back(libc::ENOSYS);
    }
    if child::is_child("seccomp-enosys-forced") {
        return child_forced_by_env(libc::ENOSYS);
    }
    let _serial = crate::common::serial();
    let want = Expect {
        kind: "Unsupported: ringloop: io_uring_setup",
        needles: vec!["ENOSYS", "Linux 5.11", "seccomp", "gVisor"],
    };
    expect_fallback(FUNC, "seccomp-enosys", &want);
}
