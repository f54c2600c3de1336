//! `fork()` with a live loop (docs/design/fork.md).
//!
//! The test runs in a child process of the test binary (one test, on one
//! thread; the harness's main thread only waits), which builds a loop,
//! puts ops in flight (a read on a socketpair, an accept, a sleep), and
//! forks. The grandchild finds the inherited loop inert (running it is an
//! error; dropping it, and the sockets and tasks it owned, touches nothing
//! of the parent's), builds a new loop on the same thread and echoes over
//! TCP. The parent waits for it, then its in-flight ops complete normally.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use crate::common::{Sha256, XorShift, fd_count, hex, ms};
use crate::{assert_fds_back, child};
use ringloop::net::{TcpListener, TcpStream, UnixStream};
use ringloop::{EventLoop, Task, sleep, spawn, wait_for};

/// The ops the parent has in flight when it forks.
struct InFlight {
    /// The other end of the socketpair `read` waits on.
    peer: UnixStream,
    read: Task<io::Result<Vec<u8>>>,
    addr: SocketAddr,
    accept: Task<io::Result<(TcpStream, SocketAddr)>>,
    /// Sleeps 300 ms from just before the fork; gives its real duration.
    sleeper: Task<Duration>,
}

const SLEEP: Duration = Duration::from_millis(300);

async fn start_ops() -> InFlight {
    let (a, peer) = UnixStream::pair().expect("socketpair");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local_addr");
    let read = spawn(async move {
        let (res, buf) = a.read(Vec::with_capacity(64)).await;
        res.map(|_| buf)
    });
    let accept = spawn(async move { listener.accept().await });
    let t0 = Instant::now();
    let sleeper = spawn(async move {
        sleep(SLEEP).await;
        t0.elapsed()
    });
    // The tasks run and their ops reach the kernel.
    sleep(ms(20)).await;
    InFlight {
        peer,
        read,
        addr,
        accept,
        sleeper,
    }
}

/// An echo of 256 KiB over TCP 127.0.0.1:0 on the running loop, checked.
async fn tcp_echo() {
    const SIZE: usize = 256 * 1024;
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local_addr");
    let server = spawn(async move {
        let (s, _) = listener.accept().await.expect("accept");
        let mut buf = Vec::with_capacity(32 * 1024);
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
    });
    let client = TcpStream::connect(addr).await.expect("connect");
    let data = XorShift::new(99).bytes(SIZE);
    let c = &client;
    let (w, (r, back)) = futures_util::future::join(
        async {
            let (res, _) = c.write_all(data.clone()).await;
            res?;
            c.shutdown(std::net::Shutdown::Write).await
        },
        c.read_exact(Vec::with_capacity(SIZE)),
    )
    .await;
    w.expect("client write");
    r.expect("client read");
    assert_eq!(hex(&Sha256::digest(&back)), hex(&Sha256::digest(&data)));
    server.await.expect("server task");
}

/// `fork()`; returns the child's pid in the parent, 0 in the child.
fn fork() -> libc::pid_t {
    io::stdout().flush().expect("flush");
    // SAFETY: fork has no memory-safety precondition; the child has only
    // this thread. The processes that call this run one test, and their
    // other threads (the harness's main thread, waiting; an idle default
    // blocking-pool worker) hold no lock the child then takes (it never
    // uses the default pool).
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
    pid
}

/// Ends a forked child: exit code 0 if `f` returned, 1 if it panicked.
fn run_then_exit(f: impl FnOnce()) -> ! {
    let code = i32::from(catch_unwind(AssertUnwindSafe(f)).is_err());
    let _ = io::stdout().flush();
    let _ = io::stderr().flush();
    // SAFETY: _exit ends the child at once, without running its copy of
    // the parent's destructors or atexit handlers, or the test harness.
    unsafe { libc::_exit(code) }
}

/// The grandchild's part.
fn grandchild(inherited: EventLoop, ops: InFlight) {
    // Running the inherited loop is an error, not a crash, and submits
    // nothing to the parent's ring.
    let e = inherited
        .run_until_complete(async {})
        .expect_err("running a loop inherited across fork");
    println!("INHERITED-RUN-ERROR {e}");
    assert!(e.to_string().contains("inherited across fork()"), "{e}");
    // Dropping its sockets and tasks, then the loop itself, must not
    // cancel, shut down or reap anything of the parent's.
    drop(ops);
    drop(inherited);
    // A new loop on the same thread works. The first one opens the
    // child's own signal eventfd, which lives as long as the process.
    ringloop::run(async {}).expect("a new loop in the forked child");
    let fds = fd_count();
    let t0 = Instant::now();
    ringloop::run(tcp_echo()).expect("a new loop in the forked child");
    // The default blocking pool's threads did not survive the fork; a pool
    // made in the child works.
    let pool = ringloop::BlockingPool::builder().build().expect("pool");
    let job = EventLoop::builder()
        .blocking_pool(pool)
        .run(async { wait_for(ringloop::to_thread(|| 6 * 7), Some(ms(5000))).await })
        .expect("run");
    assert_eq!(
        job.expect("to_thread on the child's pool").expect("job"),
        42
    );
    assert_fds_back(fds);
    println!("GRANDCHILD-OK echo in {:?}", t0.elapsed());
}

/// Waits for `pid` and returns its exit code (panics if it was killed).
fn wait_exit(pid: libc::pid_t) -> i32 {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid, writable int; `pid` is our child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        let e = io::Error::last_os_error();
        assert_eq!(e.kind(), io::ErrorKind::Interrupted, "waitpid: {e}");
    }
    assert!(
        libc::WIFEXITED(status),
        "the forked child did not exit normally (wait status {status:#x}, signal {})",
        libc::WTERMSIG(status)
    );
    libc::WEXITSTATUS(status)
}

/// The middle process: a loop with ops in flight, fork, then the checks.
fn forking_process() {
    ringloop::run(async {}).expect("warm-up loop"); // process-lifetime fds
    let base = fd_count();
    let lp = EventLoop::new().expect("loop");
    let ops = lp.run_until_complete(start_ops()).expect("start ops");
    // Give the default blocking pool an idle thread (which fork drops).
    lp.run_until_complete(ringloop::to_thread(|| ()))
        .expect("run")
        .expect("job");
    let in_flight = lp.ring_stats().ops_in_flight;
    assert!(in_flight >= 2, "ops in flight before the fork: {in_flight}");
    let pid = fork();
    if pid == 0 {
        run_then_exit(move || grandchild(lp, ops));
    }
    assert_eq!(wait_exit(pid), 0, "the forked child failed");
    let out = lp.run_until_complete(async move {
        let msg = b"sent after the fork".to_vec();
        let (res, _) = ops.peer.write_all(msg.clone()).await;
        res.expect("write to the socketpair");
        let got = ops.read.await.expect("read task").expect("read");
        assert_eq!(got, msg, "the read in flight across the fork");
        let client = std::net::TcpStream::connect(ops.addr).expect("connect");
        let (s, from) = ops.accept.await.expect("accept task").expect("accept");
        assert_eq!(from, client.local_addr().expect("client addr"));
        let slept = ops.sleeper.await.expect("sleeper task");
        assert!(slept >= SLEEP, "slept {slept:?}");
        assert!(slept < SLEEP + Duration::from_secs(5), "slept {slept:?}");
        drop(s);
        drop(ops.peer);
    });
    out.expect("the parent's loop after the fork");
    // No completion the parent did not ask for (a child's cancel would be).
    assert_eq!(lp.ring_stats().stale_cqes, 0, "{:?}", lp.ring_stats());
    drop(lp);
    assert_fds_back(base);
    println!("PARENT-OK");
}

/// See the module docs.
#[test]
fn fork_child_builds_its_own_loop_and_the_parent_is_unaffected() {
    if child::is_child("fork") {
        return forking_process();
    }
    let _serial = crate::common::serial();
    let name = "fork_child_builds_its_own_loop_and_the_parent_is_unaffected";
    let run = child::run(&child::test_name(module_path!(), name), "fork");
    println!("{}", run.dump());
    run.assert_passed();
    for marker in ["INHERITED-RUN-ERROR ", "GRANDCHILD-OK", "PARENT-OK"] {
        assert!(run.line(marker).is_some(), "no {marker}:\n{}", run.dump());
    }
}

/// `fork()` from inside a task of a running loop. The child goes on
/// running the task's code to its next `await`; then the inherited loop
/// cannot turn, so `run` returns the "inherited across fork()" error (the
/// main future's output, if it finished, is lost: results leave through a
/// variable). The child then builds a new loop. The parent's `run` goes on
/// as if nothing happened: its read in flight across the fork completes.
#[test]
fn fork_inside_a_running_task() {
    if child::is_child("fork-in-task") {
        ringloop::run(async {}).expect("warm-up loop"); // process-lifetime fds
        let base = fd_count();
        let forked_here = std::cell::Cell::new(false);
        let res = ringloop::run(async {
            let (a, peer) = UnixStream::pair().expect("socketpair");
            let read = spawn(async move {
                let (res, buf) = a.read(Vec::with_capacity(64)).await;
                res.map(|_| buf)
            });
            sleep(ms(20)).await; // the read is in the kernel
            let pid = fork();
            if pid == 0 {
                forked_here.set(true);
                // The next turn of the inherited loop ends it.
                sleep(ms(1)).await;
                unreachable!("the inherited loop turned");
            }
            let code = ringloop::to_thread(move || wait_exit(pid))
                .await
                .expect("waitpid job");
            assert_eq!(code, 0, "the forked child failed");
            let (res, _) = peer.write_all(b"hello parent".to_vec()).await;
            res.expect("write");
            let got = read.await.expect("read task").expect("read");
            assert_eq!(got, b"hello parent");
        });
        if forked_here.get() {
            run_then_exit(|| {
                let e = res.expect_err("run in the child of a fork inside a task");
                println!("CHILD-RUN-ERROR {e}");
                assert!(e.to_string().contains("inherited across fork()"), "{e}");
                ringloop::run(tcp_echo()).expect("a new loop in the child");
                println!("CHILD-OK");
            });
        }
        res.expect("the parent's run");
        assert_fds_back(base);
        println!("PARENT-OK");
        return;
    }
    let _serial = crate::common::serial();
    let run = child::run(
        &child::test_name(module_path!(), "fork_inside_a_running_task"),
        "fork-in-task",
    );
    run.assert_passed();
    for marker in ["CHILD-RUN-ERROR ", "CHILD-OK", "PARENT-OK"] {
        assert!(run.line(marker).is_some(), "no {marker}:\n{}", run.dump());
    }
}

/// Regression (found here, issue 7): the default blocking pool counted the
/// parent's idle worker after `fork()`, a thread the child does not have,
/// so the child's first `to_thread` was handed to nobody and never ran. A
/// forked child now gets a fresh default pool.
#[test]
fn fork_child_to_thread_on_the_default_pool() {
    if child::is_child("fork-pool") {
        // The default pool gets a thread, idle when the fork happens.
        ringloop::run(ringloop::to_thread(|| ()))
            .expect("run")
            .expect("job");
        let pid = fork();
        if pid == 0 {
            run_then_exit(|| {
                let job = EventLoop::builder()
                    .blocking_shutdown_timeout(ms(100))
                    .run(async { wait_for(ringloop::to_thread(|| 6 * 7), Some(ms(2000))).await })
                    .expect("run");
                let job = job.expect("to_thread on the default pool hangs in a forked child");
                assert_eq!(job.expect("job"), 42);
            });
        }
        assert_eq!(wait_exit(pid), 0, "the forked child failed");
        println!("POOL-OK");
        return;
    }
    let _serial = crate::common::serial();
    let run = child::run(
        &child::test_name(module_path!(), "fork_child_to_thread_on_the_default_pool"),
        "fork-pool",
    );
    run.assert_passed();
    assert!(run.line("POOL-OK").is_some(), "{}", run.dump());
}
