//! `accept` when the process is out of fds (EMFILE): it backs off instead
//! of spinning, and resumes once fds are freed.
//!
//! Lowers RLIMIT_NOFILE, so it lives alone in its own test binary.

mod common;

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::{fd_count, ms, nofile_limit, set_nofile_soft};
use ringloop::net::TcpListener;
use ringloop::{EventLoop, sleep, spawn, wait_for};

/// Restores the soft RLIMIT_NOFILE when dropped (even if the test panics).
struct RestoreLimit(libc::rlim_t);

impl Drop for RestoreLimit {
    fn drop(&mut self) {
        set_nofile_soft(self.0);
    }
}

#[test]
fn accept_backs_off_on_emfile_and_resumes() {
    let lp = EventLoop::new().expect("event loop");
    let (soft, _) = nofile_limit();
    let restore = RestoreLimit(soft);
    let out = lp.run_until_complete(async {
        let body = async {
            let listener = Rc::new(TcpListener::bind("127.0.0.1:0").expect("bind"));
            let addr = listener.local_addr().expect("local_addr");

            // Room for at least 20 more fds (new fds get the lowest free
            // numbers below the limit).
            let limit = fd_count() as libc::rlim_t + 20;
            set_nofile_soft(limit);

            // Blocking connects complete in the kernel and wait in the
            // listener's backlog (nothing accepts yet: we do not yield). Go
            // on until the process is out of fds.
            let mut clients = Vec::new();
            loop {
                match std::net::TcpStream::connect(addr) {
                    Ok(c) => clients.push(c),
                    Err(e) if e.raw_os_error() == Some(libc::EMFILE) => break,
                    Err(e) => panic!("connect: {e}"),
                }
                assert!(
                    (clients.len() as libc::rlim_t) < limit,
                    "RLIMIT_NOFILE {limit} was not enforced"
                );
            }
            let pending = clients.len();
            assert!(pending >= 10, "only {pending} clients fit under the limit");

            // The accept loop: every accept now fails with EMFILE.
            let accepted = Rc::new(Cell::new(0usize));
            let (l, n) = (listener.clone(), accepted.clone());
            let acceptor = spawn(async move {
                loop {
                    match l.accept().await {
                        Ok((s, _)) => {
                            n.set(n.get() + 1);
                            drop(s);
                        }
                        Err(e) => break e,
                    }
                }
            });

            let e0 = lp.enter_count();
            sleep(ms(200)).await;
            let enters = lp.enter_count() - e0;
            assert_eq!(
                accepted.get(),
                0,
                "an accept succeeded with no fd free (did the limit hold?)"
            );
            assert!(
                !acceptor.is_done(),
                "the accept loop ended instead of backing off on EMFILE: {:?}",
                acceptor.await
            );
            // Backing off from 1 ms doubling to 20 ms is about 14 tries in
            // 200 ms; retrying at once would be thousands of loop turns.
            assert!(
                enters < 200,
                "{enters} io_uring_enter calls in 200 ms while out of fds: the accept loop spins"
            );

            // Free the fds: the pending connections get accepted.
            let t0 = Instant::now();
            drop(clients);
            while accepted.get() < pending {
                assert!(
                    t0.elapsed() < Duration::from_secs(10),
                    "accept did not resume: {} of {pending} pending connections accepted \
                     10 s after fds were freed",
                    accepted.get()
                );
                sleep(ms(5)).await;
            }
            let resumed_in = t0.elapsed();
            assert!(
                resumed_in < Duration::from_secs(2),
                "accepting the backlog took {resumed_in:?} after fds were freed"
            );
            assert_eq!(accepted.get(), pending);
            assert!(!acceptor.is_done(), "the accept loop stopped");
            drop(acceptor);
            (pending, enters)
        };
        wait_for(body, Some(Duration::from_secs(60)))
            .await
            .expect("test did not finish within 60 s")
    });
    let (pending, enters) = out.expect("run_until_complete");
    eprintln!("{pending} pending connections; {enters} loop enters in 200 ms at EMFILE");
    lp.cancel_all_tasks().expect("cancel_all_tasks");
    lp.close().expect("close");
    drop(lp);
    drop(restore);
    assert_eq!(nofile_limit().0, soft, "the limit was restored");
}
