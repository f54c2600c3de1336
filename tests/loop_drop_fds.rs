//! Dropping a loop while ops are still in flight frees everything: the
//! ring, its eventfd, the sockets of those ops and their buffers.
//!
//! Regression (found by valgrind over tests/tcp_echo.rs, issue 7): an op
//! abandoned in the kernel keeps its socket in the driver until its CQE,
//! and the socket holds the driver, so nothing ever dropped the driver
//! (a reference cycle): every such loop leaked its io_uring and eventfd,
//! the sockets' fds, and the driver's memory.

mod common;

use common::{fd_list, serial};
use ringloop::net::{TcpListener, TcpStream, UnixStream};
use ringloop::{EventLoop, spawn, yield_now};

/// Runs `setup` on a fresh loop (it leaves ops in flight), drops the loop,
/// and checks the process opened no fd that is still open: every fd open
/// now was open before, and there are no more of them. (An fd of an earlier
/// test may close late, e.g. a loop's wake-up eventfd still held for a
/// moment by another thread's waker: it may be gone, which is fine.)
fn leaves_no_fd(setup: impl AsyncFnOnce()) {
    let _g = serial();
    let before = fd_list();
    let lp = EventLoop::new().expect("loop");
    lp.run_until_complete(async {
        setup().await;
        // Let the spawned tasks submit their ops.
        for _ in 0..3 {
            yield_now().await;
        }
    })
    .expect("run");
    drop(lp);
    assert_no_new_fd(&before, "dropping the loop");
}

/// Every fd open now was open at `before`, and there are no more of them.
fn assert_no_new_fd(before: &[String], after_what: &str) {
    let after = fd_list();
    let new: Vec<&String> = after.iter().filter(|fd| !before.contains(fd)).collect();
    assert!(
        new.is_empty() && after.len() <= before.len(),
        "fds left open after {after_what}: {new:?}\nbefore: {before:?}\nafter: {after:?}"
    );
}

#[test]
fn l3_dropping_a_loop_with_a_read_in_flight_closes_every_fd() {
    leaves_no_fd(async || {
        let (a, b) = UnixStream::pair().unwrap();
        spawn(async move {
            let _peer = a;
            let _ = b.read(vec![0u8; 16]).await;
        })
        .detach();
    });
}

#[test]
fn l3_dropping_a_loop_with_an_armed_accept_closes_every_fd() {
    leaves_no_fd(async || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        spawn(async move {
            let _ = listener.accept().await;
        })
        .detach();
    });
}

#[test]
fn l3_dropping_a_loop_with_1024_reads_in_flight_closes_every_fd() {
    leaves_no_fd(async || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        for _ in 0..512 {
            let client = TcpStream::connect(addr).await.unwrap();
            let (server, _) = listener.accept().await.unwrap();
            for s in [client, server] {
                spawn(async move {
                    let _ = s.read(Vec::with_capacity(4096)).await;
                })
                .detach();
            }
        }
    });
}

#[test]
fn l3_run_with_a_read_in_flight_at_exit_closes_every_fd() {
    let _g = serial();
    // `run` watches Ctrl-C through a process-wide eventfd that stays open
    // (src/signal/handler.rs): create it before counting.
    ringloop::run(async {}).expect("run");
    let before = fd_list();
    ringloop::run(async {
        let (a, b) = UnixStream::pair().unwrap();
        spawn(async move {
            let _peer = a;
            let _ = b.read(vec![0u8; 16]).await;
        })
        .detach();
        yield_now().await;
    })
    .expect("run");
    assert_no_new_fd(&before, "run");
}
