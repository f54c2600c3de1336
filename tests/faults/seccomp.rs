//! io_uring refused: a child process installs a seccomp filter that makes
//! `io_uring_setup` fail, then creates a loop. It must get an `io::Error`
//! that names the cause and the fix, never a panic.
//!
//! EPERM is what container runtimes' default profiles (docker, podman)
//! answer; ENOSYS is what an old kernel, a kernel without
//! `CONFIG_IO_URING`, or gVisor answers.

use std::io;

use crate::child;

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

/// Installs, on the calling thread (and the threads it starts later), a
/// filter that fails `io_uring_setup` with `errno` and allows every other
/// syscall.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn deny_io_uring_setup(errno: i32) -> Result<(), Refused> {
    let nr = u32::try_from(libc::SYS_io_uring_setup).expect("syscall number");
    let mut filter = [
        stmt(BPF_LD_W_ABS, DATA_ARCH),
        // Another ABI (x32, compat): allow, we only deny the native call.
        jump(BPF_JEQ_K, AUDIT_ARCH, 0, 3),
        stmt(BPF_LD_W_ABS, DATA_NR),
        jump(BPF_JEQ_K, nr, 0, 1),
        stmt(BPF_RET_K, SECCOMP_RET_ERRNO | (errno as u32 & 0xffff)),
        stmt(BPF_RET_K, SECCOMP_RET_ALLOW),
    ];
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
fn deny_io_uring_setup(_errno: i32) -> Result<(), Refused> {
    Err(Refused::Unavailable(
        "no seccomp filter for this architecture in the test".to_owned(),
    ))
}

/// The child's part: filter, then `EventLoop::new()` and `ringloop::run`;
/// prints `LOOP-ERROR <kind>: <message>` and `RUN-ERROR ...`, or `SKIP`.
fn child_refused(errno: i32) {
    match deny_io_uring_setup(errno) {
        Ok(()) => {}
        Err(Refused::Unavailable(why)) => {
            println!("SKIP seccomp unavailable: {why}");
            return;
        }
        Err(Refused::Failed(e)) => panic!("installing the seccomp filter: {e}"),
    }
    let e = ringloop::EventLoop::new().expect_err("EventLoop::new with io_uring_setup denied");
    println!("LOOP-ERROR {:?}: {e}", e.kind());
    let ran = std::cell::Cell::new(false);
    let e = ringloop::run(async { ran.set(true) }).expect_err("run with io_uring_setup denied");
    assert!(!ran.get(), "the future ran without a loop");
    println!("RUN-ERROR {:?}: {e}", e.kind());
}

/// The parent's part: runs the child, checks both errors carry `needles`.
/// Returns false (the test is skipped) when seccomp is unavailable.
fn expect_refusal(func: &str, role: &str, kind: &str, needles: &[&str]) -> bool {
    let run = child::run(&child::test_name(module_path!(), func), role);
    run.assert_passed();
    if let Some(why) = run.line("SKIP ") {
        assert!(
            why.starts_with("seccomp unavailable"),
            "unexpected skip: {}",
            run.dump()
        );
        println!("skipped: {why}");
        return false;
    }
    for marker in ["LOOP-ERROR ", "RUN-ERROR "] {
        let line = run
            .line(marker)
            .unwrap_or_else(|| panic!("no {marker}line:\n{}", run.dump()));
        assert!(line.starts_with(kind), "{marker}{line}");
        for needle in needles {
            assert!(line.contains(needle), "{marker}{line}\nlacks {needle:?}");
        }
    }
    assert!(!run.stderr.contains("panicked"), "{}", run.dump());
    true
}

/// EPERM (a container's seccomp profile): the error says io_uring_setup
/// was denied, names seccomp, and says what to allow.
#[test]
fn io_uring_setup_eperm_by_seccomp_is_a_clear_error() {
    if child::is_child("seccomp-eperm") {
        return child_refused(libc::EPERM);
    }
    let _serial = crate::common::serial();
    expect_refusal(
        "io_uring_setup_eperm_by_seccomp_is_a_clear_error",
        "seccomp-eperm",
        "PermissionDenied: ringloop: io_uring_setup",
        &[
            "EPERM",
            "seccomp",
            "io_uring_setup, io_uring_enter and io_uring_register",
        ],
    );
}

/// ENOSYS (old kernel, gVisor, a profile that answers ENOSYS): the error
/// says io_uring is missing and which Linux ringloop needs, and, on a
/// kernel new enough to have it, that something hides it.
#[test]
fn io_uring_setup_enosys_is_a_clear_error() {
    if child::is_child("seccomp-enosys") {
        return child_refused(libc::ENOSYS);
    }
    let _serial = crate::common::serial();
    expect_refusal(
        "io_uring_setup_enosys_is_a_clear_error",
        "seccomp-enosys",
        "Unsupported: ringloop: io_uring_setup",
        &["ENOSYS", "Linux 5.11", "seccomp", "gVisor"],
    );
}
