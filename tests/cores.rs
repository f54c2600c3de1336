//! The thread-per-core launcher (`Cores`): outputs by core, pinning, a panic
//! on one core stopping the others, work sent between cores, and a
//! `SO_REUSEPORT` server with one listener per core.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::{Duration, Instant};

use ringloop::net::{ListenOptions, TcpListener};
use ringloop::{Cores, CoresError, Handle};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; all-zero is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a writable cpu_set_t of the size passed.
    let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    assert_eq!(r, 0);
    (0..1024)
        // SAFETY: CPU_ISSET reads the set within its capacity (1024 bits).
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect()
}

#[test]
fn each_core_runs_its_own_loop_on_its_own_thread_outputs_by_index() {
    let out = Cores::new(4)
        .thread_name("test-core")
        .run(|core| async move {
            // Let the cores interleave a little.
            ringloop::sleep(ms(5 * (4 - core.index() as u64))).await;
            let me = Handle::current();
            (
                core.index(),
                core.count(),
                std::thread::current().name().map(str::to_owned),
                std::thread::current().id(),
                // Every core's handle list has this loop at its own index:
                // a callback sent there runs on this very thread.
                core.handle(core.index())
                    .spawn(async { std::thread::current().id() })
                    .unwrap()
                    .await
                    .unwrap(),
                me.is_closed(),
            )
        })
        .unwrap();
    assert_eq!(out.len(), 4);
    let mut threads = Vec::new();
    for (i, (index, count, name, thread, there, closed)) in out.into_iter().enumerate() {
        assert_eq!(index, i);
        assert_eq!(count, 4);
        assert_eq!(name.as_deref(), Some(format!("test-core-{i}").as_str()));
        assert_eq!(thread, there);
        assert!(!closed);
        threads.push(thread);
    }
    threads.sort_by_key(|t| format!("{t:?}"));
    threads.dedup();
    assert_eq!(threads.len(), 4, "four distinct threads");
}

#[test]
fn pinned_cores_run_on_their_cpu() {
    let allowed = allowed_cpus();
    let n = allowed.len().min(2);
    let out = Cores::new(n)
        .pin(true)
        .run(|core| async move {
            let mut seen = Vec::new();
            for _ in 0..5 {
                // SAFETY: sched_getcpu has no preconditions.
                seen.push(unsafe { libc::sched_getcpu() } as usize);
                ringloop::sleep(ms(1)).await;
            }
            (core.cpu(), seen)
        })
        .unwrap();
    for (i, (cpu, seen)) in out.into_iter().enumerate() {
        assert_eq!(cpu, Some(allowed[i]));
        assert!(
            seen.iter().all(|&c| c == allowed[i]),
            "core {i} ran on {seen:?}"
        );
    }
}

#[test]
fn bad_configurations_are_errors_not_panics() {
    let r = Cores::new(0).run(|_| async {});
    assert!(matches!(r, Err(CoresError::InvalidConfig(_))), "{r:?}");
    let too_many = allowed_cpus().len() + 1;
    let r = Cores::new(too_many).pin(true).run(|_| async {});
    match r {
        Err(CoresError::InvalidConfig(msg)) => assert!(msg.contains("CPUs"), "{msg}"),
        other => panic!("{other:?}"),
    }
    // A loop that cannot be built (absurd ring size) fails to start, cleanly.
    // io_uring forced: ring settings are ignored on epoll (where io_uring
    // is unavailable, the forced io_uring fails to start as well).
    let r = Cores::new(2)
        .loop_builder(
            ringloop::Builder::new()
                .backend(ringloop::Backend::IoUring)
                .entries(0),
        )
        .run(|_| async {});
    assert!(matches!(r, Err(CoresError::Start { .. })), "{r:?}");
}

#[test]
fn a_panic_on_one_core_stops_the_others_cleanly() {
    let cleaned = Arc::new(AtomicUsize::new(0));
    struct Cleanup(Arc<AtomicUsize>);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let c = cleaned.clone();
    let t0 = Instant::now();
    let r = Cores::new(3).run(move |core| {
        let c = c.clone();
        async move {
            if core.index() == 1 {
                ringloop::sleep(ms(20)).await;
                panic!("core one fails");
            }
            // The others would run forever; their cleanup must still run,
            // and so must the cleanup of a task they spawned.
            let _guard = Cleanup(c.clone());
            let child = ringloop::spawn({
                let c = c.clone();
                async move {
                    let _guard = Cleanup(c);
                    std::future::pending::<()>().await
                }
            });
            child.detach();
            std::future::pending::<()>().await
        }
    });
    match r {
        Err(e @ CoresError::Panicked { core: 1, .. }) => {
            assert_eq!(e.panic_message(), Some("core one fails"));
            assert!(e.to_string().contains("core 1 panicked"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        cleaned.load(Ordering::SeqCst),
        4,
        "two entry futures and two tasks dropped"
    );
    assert!(t0.elapsed() < Duration::from_secs(5));
}

#[test]
fn work_is_sent_to_another_core_and_awaited() {
    let out = Cores::new(2)
        .run(|core| async move {
            let other = 1 - core.index();
            let mut sum = 0u64;
            for i in 0..1000u64 {
                sum += core
                    .handle(other)
                    .spawn(async move { i })
                    .unwrap()
                    .await
                    .unwrap();
            }
            sum
        })
        .unwrap();
    assert_eq!(out, vec![499_500, 499_500]);
}

/// One `SO_REUSEPORT` listener per core on the same port: every connection
/// is accepted by exactly one core and echoed.
#[test]
fn reuse_port_listeners_one_per_core_serve_every_connection() {
    const CONNS: usize = 40;
    let port = Arc::new((Mutex::new(None::<u16>), Condvar::new()));
    let (addr_tx, addr_rx) = mpsc::channel();
    let accepted = Arc::new(AtomicUsize::new(0));
    let (p, acc) = (port.clone(), accepted.clone());
    let server = std::thread::spawn(move || {
        Cores::new(2).run(move |core| {
            let (p, acc, addr_tx) = (p.clone(), acc.clone(), addr_tx.clone());
            async move {
                let opts = ListenOptions {
                    reuse_port: true,
                    ..ListenOptions::default()
                };
                // Core 0 picks the port; core 1 binds the same one.
                let listener = if core.index() == 0 {
                    let l = TcpListener::bind_with("127.0.0.1:0", opts).unwrap();
                    let port = l.local_addr().unwrap().port();
                    *p.0.lock().unwrap() = Some(port);
                    p.1.notify_all();
                    l
                } else {
                    let mut g = p.0.lock().unwrap();
                    while g.is_none() {
                        g = p.1.wait(g).unwrap();
                    }
                    let port = g.unwrap();
                    drop(g);
                    let l = TcpListener::bind_with(("127.0.0.1", port), opts).unwrap();
                    addr_tx.send(l.local_addr().unwrap()).unwrap();
                    l
                };
                let mut mine = 0;
                loop {
                    let accept = ringloop::wait_for(listener.accept(), Some(ms(300))).await;
                    let Ok(res) = accept else {
                        // Quiet for a while after the clients are done.
                        if acc.load(Ordering::SeqCst) >= CONNS {
                            return mine;
                        }
                        continue;
                    };
                    let (s, _) = res.unwrap();
                    mine += 1;
                    acc.fetch_add(1, Ordering::SeqCst);
                    ringloop::spawn(async move {
                        let (r, buf) = s.read_exact(Vec::with_capacity(8)).await;
                        r.unwrap();
                        let (r, _) = s.write_all(buf).await;
                        r.unwrap();
                    })
                    .detach();
                }
            }
        })
    });
    let addr = addr_rx.recv().unwrap();
    for i in 0..CONNS as u64 {
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.write_all(&i.to_le_bytes()).unwrap();
        let mut back = [0u8; 8];
        c.read_exact(&mut back).unwrap();
        assert_eq!(u64::from_le_bytes(back), i);
    }
    let per_core = server.join().unwrap().unwrap();
    assert_eq!(per_core.iter().sum::<usize>(), CONNS, "{per_core:?}");
    assert_eq!(accepted.load(Ordering::SeqCst), CONNS);
}
