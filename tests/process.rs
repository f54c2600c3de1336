//! `ringloop::process`: child processes driven by the loop (SEMANTICS X2).
//!
//! Every test holds `common::serial()` (one counts the process's fds, and
//! children's pipes would disturb it), and every child that could outlive a
//! failed test is spawned with `kill_on_drop(true)`: a panic drops it, which
//! kills it, and the loop or a reaper thread reaps it.

mod common;

use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{Sha256, XorShift, fd_count, fd_list, ms, run_bounded, serial};
use futures_util::{AsyncReadExt, AsyncWriteExt};
use ringloop::process::{Command, Stdio};

const LIMIT: Duration = Duration::from_secs(60);

/// Whether `pid` is still a child of ours (running, or a zombie nobody
/// reaped): `/proc/<pid>/stat` exists and names us as its parent.
fn is_our_child(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    let after = &stat[stat.rfind(')').expect("stat has a comm") + 2..];
    let ppid: u32 = after
        .split(' ')
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("stat has a ppid");
    ppid == std::process::id()
}

/// `waitid(P_PID, pid, WEXITED | WNOHANG)` fails with `ECHILD`: `pid` is
/// not an unreaped child of ours.
fn not_waitable(pid: u32) -> bool {
    // SAFETY: siginfo_t is plain data; all-zero is valid.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is a writable siginfo_t; WNOHANG never blocks.
    let r = unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG,
        )
    };
    r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD)
}

/// Lets the loop run until `pid` is no longer a child of ours (reaped), at
/// most 5 s; true if it was.
async fn reaped_within_5s(pid: u32) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(5) {
        if !is_our_child(pid) && not_waitable(pid) {
            return true;
        }
        ringloop::sleep(ms(5)).await;
    }
    false
}

/// A directory under the temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "ringloop-test-process-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create the test directory");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn x2_exit_codes_are_reported() {
    let _s = serial();
    run_bounded(LIMIT, async {
        for code in [0, 1, 2, 42, 255] {
            let mut child = Command::new("sh")
                .arg("-c")
                .arg(format!("exit {code}"))
                .spawn()
                .expect("spawn sh");
            let status = child.wait().await.expect("wait");
            assert_eq!(status.code(), Some(code));
            assert_eq!(status.success(), code == 0);
            assert_eq!(status.signal(), None);
        }
        let status = Command::new("true").status().await.expect("true");
        assert!(status.success());
    });
}

#[test]
fn x2_death_by_signal_is_reported() {
    let _s = serial();
    run_bounded(LIMIT, async {
        let mut child = Command::new("sleep")
            .arg("10")
            .kill_on_drop(true)
            .spawn()
            .expect("spawn sleep");
        child.send_signal(libc::SIGTERM).expect("SIGTERM");
        let status = child.wait().await.expect("wait");
        assert_eq!(
            (status.code(), status.signal()),
            (None, Some(libc::SIGTERM))
        );
        // Signalling a reaped child is a no-op, as in asyncio.
        child.kill().expect("kill after exit");
        child.send_signal(libc::SIGINT).expect("signal after exit");

        let mut child = Command::new("sleep")
            .arg("10")
            .kill_on_drop(true)
            .spawn()
            .expect("spawn sleep");
        child.terminate().expect("terminate");
        assert_eq!(
            child.wait().await.expect("wait").signal(),
            Some(libc::SIGTERM)
        );

        // A child that signals itself.
        let status = Command::new("sh")
            .args(["-c", "kill -USR1 $$"])
            .status()
            .await
            .expect("sh");
        assert_eq!(status.signal(), Some(libc::SIGUSR1));

        // A bad signal number is an error naming the program.
        let child = Command::new("sleep")
            .arg("10")
            .kill_on_drop(true)
            .spawn()
            .expect("spawn sleep");
        let err = child.send_signal(12345).expect_err("bad signal");
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("sleep"), "{err}");
    });
}

#[test]
fn x2_try_wait_does_not_block() {
    let _s = serial();
    run_bounded(LIMIT, async {
        let mut child = Command::new("sh")
            .args(["-c", "sleep 0.05; exit 3"])
            .kill_on_drop(true)
            .spawn()
            .expect("spawn sh");
        let t0 = Instant::now();
        assert!(child.try_wait().expect("try_wait").is_none());
        assert!(t0.elapsed() < ms(20), "try_wait blocked");
        while child.try_wait().expect("try_wait").is_none() {
            assert!(t0.elapsed() < Duration::from_secs(5), "never exited");
            ringloop::sleep(ms(5)).await;
        }
        assert_eq!(
            child.try_wait().expect("try_wait").and_then(|s| s.code()),
            Some(3)
        );
        assert_eq!(child.wait().await.expect("wait").code(), Some(3));
    });
}

/// 10 MiB of pseudo-random bytes to `cat` and back, three ways: with
/// `communicate`, with owned-buffer writes and reads in two tasks, and with
/// the futures-io adapters. Checked with SHA-256.
#[test]
fn x2_ten_mib_through_cat_both_ways() {
    let _s = serial();
    let data = XorShift::new(8).bytes(10 << 20);
    let digest = Sha256::digest(&data);
    run_bounded(LIMIT, async {
        let piped = || {
            let mut c = Command::new("cat");
            c.stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .kill_on_drop(true);
            c
        };

        // communicate: feeds and drains at once (the pipe holds 64 KiB).
        let mut child = piped().spawn().expect("spawn cat");
        let out = child.communicate(data.clone()).await.expect("communicate");
        assert!(out.status.success());
        assert_eq!(out.stdout.len(), data.len());
        assert_eq!(Sha256::digest(&out.stdout), digest);

        // Owned buffers: a writer task in 1 MiB pieces, a streaming reader.
        let mut child = piped().spawn().expect("spawn cat");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let to_send = data.clone();
        let writer = ringloop::spawn(async move {
            for piece in to_send.chunks(1 << 20) {
                let (res, _) = stdin.write_all(piece.to_vec()).await;
                res?;
            }
            stdin.close().await
        });
        let mut hash = Sha256::new();
        let mut total = 0;
        let mut buf = Vec::with_capacity(100_000);
        loop {
            buf.clear();
            let (res, b) = stdout.read(buf).await;
            buf = b;
            let n = res.expect("read");
            if n == 0 {
                break;
            }
            hash.update(&buf[..n]);
            total += n;
        }
        writer.await.expect("writer task").expect("write");
        assert_eq!(total, data.len());
        assert_eq!(hash.finish(), digest);
        assert!(child.wait().await.expect("wait").success());

        // futures-io adapters, written in odd-sized pieces.
        let mut child = piped().spawn().expect("spawn cat");
        let mut stdin = child.stdin.take().expect("stdin");
        let mut stdout = child.stdout.take().expect("stdout");
        // The inherent owned-buffer methods shadow the extension traits'
        // methods of the same name: call those through the trait.
        let feed = async {
            for piece in data.chunks(77_777) {
                AsyncWriteExt::write_all(&mut stdin, piece).await?;
            }
            AsyncWriteExt::close(&mut stdin).await
        };
        let mut back = Vec::new();
        let drain = AsyncReadExt::read_to_end(&mut stdout, &mut back);
        let (fed, read) = futures_util::future::join(feed, drain).await;
        fed.expect("AsyncWrite");
        read.expect("AsyncRead");
        assert_eq!(back.len(), data.len());
        assert_eq!(Sha256::digest(&back), digest);
        assert!(child.wait().await.expect("wait").success());
    });
}

#[test]
fn x2_output_drains_stdout_and_stderr_past_the_pipe_buffer() {
    let _s = serial();
    run_bounded(LIMIT, async {
        // 1 MB on each stream, interleaved: sequential draining would
        // deadlock once either pipe's 64 KiB filled up.
        let out = Command::new("sh")
            .args([
                "-c",
                "for i in 1 2 3 4 5 6 7 8; do head -c 131072 /dev/zero; \
                 head -c 131072 /dev/zero | tr '\\0' e >&2; done; exit 4",
            ])
            .output()
            .await
            .expect("output");
        assert_eq!(out.status.code(), Some(4));
        assert_eq!(out.stdout.len(), 1 << 20);
        assert!(out.stdout.iter().all(|&b| b == 0));
        assert_eq!(out.stderr.len(), 1 << 20);
        assert!(out.stderr.iter().all(|&b| b == b'e'));
        // output() gives the child /dev/null as stdin: `cat` ends at once.
        let out = Command::new("cat").output().await.expect("cat");
        assert!(out.status.success() && out.stdout.is_empty());
    });
}

#[test]
fn x2_hundred_concurrent_children() {
    let _s = serial();
    run_bounded(LIMIT, async {
        let t0 = Instant::now();
        let tasks: Vec<_> = (0..100)
            .map(|i| {
                ringloop::spawn(async move {
                    let out = Command::new("sh")
                        .arg("-c")
                        .arg(format!("sleep 0.1; printf child-{i}; exit {}", i % 7))
                        .kill_on_drop(true)
                        .output()
                        .await
                        .expect("output");
                    (i, out)
                })
            })
            .collect();
        for t in tasks {
            let (i, out) = t.await.expect("task");
            assert_eq!(out.status.code(), Some(i % 7));
            assert_eq!(out.stdout, format!("child-{i}").into_bytes());
        }
        // They ran side by side: far less than 100 x 100 ms.
        assert!(t0.elapsed() < Duration::from_secs(8), "{:?}", t0.elapsed());
    });
}

#[test]
fn x2_wait_for_times_out_then_kill() {
    let _s = serial();
    run_bounded(LIMIT, async {
        let mut child = Command::new("sleep")
            .arg("10")
            .kill_on_drop(true)
            .spawn()
            .expect("spawn sleep");
        let pid = child.id();
        let t0 = Instant::now();
        let res = ringloop::wait_for(child.wait(), Some(ms(50))).await;
        let waited = t0.elapsed();
        assert!(res.is_err(), "sleep 10 finished early: {res:?}");
        assert!(
            waited >= ms(50) && waited < Duration::from_secs(2),
            "{waited:?}"
        );
        assert!(is_our_child(pid), "still running after the timeout");
        child.kill().expect("kill");
        let status = child.wait().await.expect("wait");
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
        assert!(!is_our_child(pid) && not_waitable(pid), "reaped by wait");
    });
}

#[test]
fn x2_dropped_child_leaves_no_zombie() {
    let _s = serial();
    run_bounded(LIMIT, async {
        // Exits at once, dropped without a wait.
        let child = Command::new("true").spawn().expect("spawn true");
        let quick = child.id();
        drop(child);
        // Still running when dropped: reaped by the loop once it exits.
        let child = Command::new("sleep")
            .arg("0.2")
            .spawn()
            .expect("spawn sleep");
        let slow = child.id();
        drop(child);
        assert!(is_our_child(slow), "dropping must not kill it");
        assert!(reaped_within_5s(quick).await, "zombie {quick} left");
        assert!(reaped_within_5s(slow).await, "zombie {slow} left");
    });
}

#[test]
fn x2_kill_on_drop_kills_and_reaps() {
    let _s = serial();
    run_bounded(LIMIT, async {
        let child = Command::new("sleep")
            .arg("10")
            .kill_on_drop(true)
            .spawn()
            .expect("spawn sleep");
        let pid = child.id();
        let t0 = Instant::now();
        drop(child);
        assert!(reaped_within_5s(pid).await, "{pid} still alive or a zombie");
        assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    });
}

/// A child dropped after its loop finished is reaped by a thread.
#[test]
fn x2_child_outliving_its_loop_is_reaped() {
    let _s = serial();
    let child = run_bounded(LIMIT, async {
        Command::new("sleep")
            .arg("0.1")
            .spawn()
            .expect("spawn sleep")
    });
    let pid = child.id();
    drop(child);
    let t0 = Instant::now();
    while is_our_child(pid) || !not_waitable(pid) {
        assert!(t0.elapsed() < Duration::from_secs(5), "zombie {pid} left");
        std::thread::sleep(ms(5));
    }
}

#[test]
fn x2_fd_count_back_to_baseline() {
    let _s = serial();
    // Let earlier tests' reaper threads (if any) finish first.
    std::thread::sleep(ms(50));
    let before = fd_count();
    run_bounded(LIMIT, async {
        for i in 0..20 {
            let mut child = Command::new("sh")
                .args(["-c", "cat; echo err >&2"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .expect("spawn");
            match i % 3 {
                // Collected to the end.
                0 => {
                    let out = child.communicate("abc").await.expect("communicate");
                    assert_eq!(out.stdout, b"abc");
                    assert_eq!(out.stderr, b"err\n");
                }
                // Pipes dropped unread, then waited for.
                1 => {
                    drop(child.stdout.take());
                    drop(child.stderr.take());
                    child.wait().await.expect("wait");
                }
                // Everything dropped: killed and reaped in the background.
                _ => {
                    let pid = child.id();
                    drop(child);
                    assert!(reaped_within_5s(pid).await);
                }
            }
        }
        // Let the closes submitted by drops complete.
        ringloop::sleep(ms(20)).await;
    });
    let after = fd_count();
    assert_eq!(after, before, "fds now: {:?}", fd_list());
}

#[test]
fn x2_spawn_errors_name_the_program() {
    let _s = serial();
    let dir = TempDir::new("errors");
    let script = dir.0.join("not-executable.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").expect("write script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let missing_dir = dir.0.join("no-such-dir");
    run_bounded(LIMIT, async {
        let err = Command::new("ringloop-no-such-program")
            .spawn()
            .expect_err("missing program");
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert!(
            err.to_string().contains("ringloop-no-such-program"),
            "{err}"
        );

        let err = Command::new(&script).spawn().expect_err("not executable");
        assert_eq!(err.kind(), ErrorKind::PermissionDenied);
        assert!(err.to_string().contains("not-executable.sh"), "{err}");

        let err = Command::new("true")
            .current_dir(&missing_dir)
            .spawn()
            .expect_err("bad cwd");
        assert_eq!(err.kind(), ErrorKind::NotFound);
        let msg = err.to_string();
        assert!(msg.contains("\"true\""), "{msg}");
        assert!(
            msg.contains("working directory") && msg.contains("no-such-dir"),
            "{msg}"
        );

        // output() reports the same error.
        let err = Command::new("ringloop-no-such-program")
            .output()
            .await
            .expect_err("missing program");
        assert!(
            err.to_string().contains("ringloop-no-such-program"),
            "{err}"
        );
        // communicate with input but no piped stdin is refused.
        let mut child = Command::new("true").spawn().expect("spawn true");
        let err = child.communicate("x").await.expect_err("no stdin");
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(child.wait().await.expect("wait").success());
    });
    // Spawning needs a running loop.
    let err = Command::new("true").spawn().expect_err("no loop");
    assert!(err.to_string().contains("event loop"), "{err}");
}

#[test]
fn x2_env_and_cwd_are_passed() {
    let _s = serial();
    let dir = TempDir::new("cwd");
    run_bounded(LIMIT, async {
        let out = Command::new("/usr/bin/env")
            .env_clear()
            .env("A", "alpha")
            .output()
            .await
            .expect("env");
        assert_eq!(out.stdout, b"A=alpha\n");

        let out = Command::new("pwd")
            .current_dir(&dir.0)
            .output()
            .await
            .expect("pwd");
        let cwd = dir.0.canonicalize().expect("canonical");
        assert_eq!(out.stdout, format!("{}\n", cwd.display()).into_bytes());

        let out = Command::new("sh")
            .args(["-c", "printf '%s' \"${B:-removed}\""])
            .env("B", "x")
            .env_remove("B")
            .output()
            .await
            .expect("sh");
        assert_eq!(out.stdout, b"removed");
    });
}

/// `wait` closes stdin first, so a child reading it cannot deadlock it.
#[test]
fn x2_wait_closes_stdin() {
    let _s = serial();
    run_bounded(LIMIT, async {
        let mut child = Command::new("cat")
            .stdin(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn cat");
        let status = ringloop::wait_for(child.wait(), Some(Duration::from_secs(5)))
            .await
            .expect("cat saw end-of-file")
            .expect("wait");
        assert!(status.success());
    });
}

/// A read whose future is dropped after the kernel filled its buffer hands
/// those bytes to the next read (DESIGN decision 4).
#[test]
fn x2_dropped_read_loses_no_bytes() {
    let _s = serial();
    run_bounded(LIMIT, async {
        let mut child = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn cat");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let mut read = Box::pin(stdout.read(Vec::with_capacity(64)));
        // Start the read (its SQE goes in), then let it complete unobserved.
        std::future::poll_fn(|cx| {
            assert!(read.as_mut().poll(cx).is_pending(), "nothing written yet");
            std::task::Poll::Ready(())
        })
        .await;
        let (res, _) = stdin.write_all(b"kept bytes".to_vec()).await;
        res.expect("write");
        ringloop::sleep(ms(100)).await;
        drop(read);
        let (res, buf) = stdout.read(Vec::with_capacity(64)).await;
        assert_eq!(res.expect("read"), 10);
        assert_eq!(buf, b"kept bytes");
        stdin.close().await.expect("close");
        let (res, rest) = stdout.read_to_end(Vec::new()).await;
        assert_eq!((res.expect("eof"), rest.len()), (0, 0));
        assert!(child.wait().await.expect("wait").success());
    });
}

#[test]
fn x2_stdio_not_piped_is_none() {
    let _s = serial();
    run_bounded(LIMIT, async {
        let mut child = Command::new("true")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn");
        assert!(child.stdin.is_none() && child.stdout.is_none() && child.stderr.is_none());
        let out = child.communicate(Vec::new()).await.expect("communicate");
        assert!(out.status.success() && out.stdout.is_empty() && out.stderr.is_empty());
        assert!(format!("{child:?}").contains("true"));
    });
}

/// A child whose task is cancelled when `run` ends (the loop is still
/// running then) is reaped once it exits, after the loop is gone.
#[test]
fn x2_child_of_a_cancelled_task_is_reaped() {
    let _s = serial();
    let pid = run_bounded(LIMIT, async {
        let (tx, rx) = std::sync::mpsc::channel();
        let holder = ringloop::spawn(async move {
            let child = Command::new("sleep")
                .arg("0.2")
                .spawn()
                .expect("spawn sleep");
            tx.send(child.id()).expect("send pid");
            std::future::pending::<()>().await;
            drop(child);
        });
        ringloop::sleep(ms(20)).await;
        holder.detach();
        rx.recv().expect("pid")
    });
    assert!(is_our_child(pid), "dropping must not kill it");
    let t0 = Instant::now();
    while is_our_child(pid) || !not_waitable(pid) {
        assert!(t0.elapsed() < Duration::from_secs(5), "zombie {pid} left");
        std::thread::sleep(ms(5));
    }
}

/// Restores `SIGCHLD`'s default disposition when dropped.
struct SigchldDefault;

impl Drop for SigchldDefault {
    fn drop(&mut self) {
        // SAFETY: resetting a disposition to SIG_DFL installs no handler.
        unsafe { libc::signal(libc::SIGCHLD, libc::SIG_DFL) };
    }
}

/// With `SIGCHLD` ignored the kernel reaps children itself: waiting must
/// fail with an error that says so, never report a made-up status.
#[test]
fn x2_child_reaped_elsewhere_is_an_error() {
    let _s = serial();
    let _restore = SigchldDefault;
    // SAFETY: SIG_IGN installs no handler; the guard restores SIG_DFL, and
    // every test of this binary holds `serial()`, so none spawns meanwhile.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };
    run_bounded(LIMIT, async {
        // The child may even be gone before its pidfd is opened: then
        // spawn fails instead of wait.
        let res = match Command::new("sh").args(["-c", "sleep 0.05"]).spawn() {
            Ok(mut child) => child.wait().await,
            Err(e) => Err(e),
        };
        let err = res.expect_err("the status is lost");
        let msg = err.to_string();
        assert!(
            msg.contains("reaped by someone else") || msg.contains("pidfd_open"),
            "{msg}"
        );
    });
}
