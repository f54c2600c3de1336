//! The epoll backend, forced with `Builder::backend` so that these run in
//! the io_uring pass of the suite too (the whole suite also runs on epoll
//! with `RINGLOOP_BACKEND=epoll`). Each test is an edge a readiness
//! emulation of io_uring can get wrong: end of stream after a drained read,
//! fd numbers reused behind its back, a wake-up from another thread, files
//! on the pool, a linked timeout.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use ringloop::fs::File;
use ringloop::net::{ListenOptions, TcpListener, TcpStream, UnixStream};
use ringloop::process::Command;
use ringloop::{Backend, Builder, EventLoop};

fn epoll_loop() -> EventLoop {
    let lp = Builder::new().backend(Backend::Epoll).build().unwrap();
    assert_eq!(lp.backend(), Backend::Epoll);
    assert_eq!(
        lp.backend_fallback_reason(),
        None,
        "forced, not fallen back"
    );
    assert_eq!(lp.ring_stats().backend, Backend::Epoll);
    assert_eq!(lp.ring_flags(), "epoll");
    lp
}

/// Bounds a test's future so a lost wake-up fails instead of hanging.
fn run<F: std::future::Future>(lp: &EventLoop, f: F) -> F::Output {
    lp.run_until_complete(async move {
        ringloop::wait_for(f, Some(Duration::from_secs(20)))
            .await
            .expect("lost wake-up: the test did not finish within 20 s")
    })
    .unwrap()
}

#[test]
fn data_and_fin_arriving_together_read_then_eof() {
    let lp = epoll_loop();
    run(&lp, async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = std::thread::spawn(move || {
            let mut c = std::net::TcpStream::connect(addr).unwrap();
            c.write_all(b"hello").unwrap();
            c.shutdown(Shutdown::Write).unwrap();
            let mut back = Vec::new();
            c.read_to_end(&mut back).unwrap();
            back
        });
        let (s, _) = listener.accept().await.unwrap();
        // Let the data and the FIN both arrive before the first read, which
        // then sees a short read of a stream that has nothing more but EOF.
        ringloop::sleep(Duration::from_millis(50)).await;
        let (r, buf) = s.read(vec![0u8; 4096]).await;
        assert_eq!(&buf[..r.unwrap()], b"hello");
        let (r, _) = s.read(vec![0u8; 4096]).await;
        assert_eq!(r.unwrap(), 0, "end of stream after the drained read");
        let (r, _) = s.write_all(b"bye".to_vec()).await;
        r.unwrap();
        drop(s);
        assert_eq!(client.join().unwrap(), b"bye");
    });
}

#[test]
fn an_fd_number_reused_after_a_failed_connect_still_gets_readiness() {
    let lp = epoll_loop();
    run(&lp, async {
        // A port nobody listens on: its socket is refused and dropped by
        // the connect op itself, not closed through the driver.
        // A port held by a connected (not listening) socket: nobody
        // listens there, and no other test can bind it meanwhile.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let holder = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let dead = holder.local_addr().unwrap();
        for _ in 0..20 {
            let e = TcpStream::connect(dead).await.unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
        }
        // The next sockets get the same numbers; they must still be woken.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let t0 = Instant::now();
        let accepted = ringloop::spawn(async move { listener.accept().await });
        let c = TcpStream::connect_timeout(addr, Duration::from_secs(10))
            .await
            .unwrap();
        let (s, _) = accepted.await.unwrap().unwrap();
        let (r, _) = c.write_all(b"ping".to_vec()).await;
        r.unwrap();
        let (r, buf) = s.read_exact(Vec::with_capacity(4)).await;
        r.unwrap();
        assert_eq!(buf, b"ping");
        assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    });
}

#[test]
fn an_fd_number_reused_after_a_child_exit_still_gets_readiness() {
    let lp = epoll_loop();
    run(&lp, async {
        for _ in 0..10 {
            // The pidfd is polled, then closed outside the driver.
            let status = Command::new("true").spawn().unwrap().wait().await.unwrap();
            assert!(status.success());
            // Its number goes to a socket, whose read must still wake.
            let (a, b) = UnixStream::pair().unwrap();
            let reader = ringloop::spawn(async move { b.read(vec![0u8; 8]).await });
            ringloop::sleep(Duration::from_millis(2)).await;
            let (r, _) = a.write_all(b"x".to_vec()).await;
            r.unwrap();
            let (r, buf) = reader.await.unwrap();
            assert_eq!(&buf[..r.unwrap()], b"x");
        }
    });
}

#[test]
fn call_soon_threadsafe_wakes_a_parked_epoll_loop() {
    let lp = epoll_loop();
    let handle = lp.handle();
    let t0 = Instant::now();
    let got = run(&lp, async move {
        let (tx, mut rx) = ringloop::sync::cross::channel(1).unwrap();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            handle
                .call_soon_threadsafe(move || tx.try_send(7).unwrap())
                .unwrap();
        });
        rx.recv().await.unwrap()
    });
    assert_eq!(got, 7);
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(20) && took < Duration::from_secs(2),
        "{took:?}"
    );
}

#[test]
fn sleep_precision_is_not_rounded_to_milliseconds() {
    let lp = epoll_loop();
    run(&lp, async {
        for _ in 0..20 {
            let t0 = Instant::now();
            ringloop::sleep(Duration::from_micros(300)).await;
            let took = t0.elapsed();
            assert!(took >= Duration::from_micros(300), "{took:?}");
            assert!(took < Duration::from_secs(2), "{took:?}");
        }
    });
}

#[test]
fn files_go_through_the_pool_and_back() {
    let dir = std::env::temp_dir().join(format!("ringloop-backends-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("data");
    let lp = epoll_loop();
    let data: Vec<u8> = (0..256 * 1024u32)
        .map(|i| (i * 7 + i / 251) as u8)
        .collect();
    let expect = data.clone();
    let path2 = path.clone();
    run(&lp, async move {
        let f = File::create(&path2).await.unwrap();
        let (r, _) = f.write_all_at(data, 0).await;
        r.unwrap();
        f.sync_all().await.unwrap();
        assert_eq!(f.metadata().await.unwrap().len(), expect.len() as u64);
        f.close().await.unwrap();
        let f = File::open(&path2).await.unwrap();
        let (r, back) = f.read_exact_at(Vec::with_capacity(expect.len()), 0).await;
        r.unwrap();
        assert_eq!(back, expect);
        let missing = File::open(path2.with_file_name("missing"))
            .await
            .unwrap_err();
        assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
    });
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn connect_timeout_fires_through_the_linked_timeout() {
    let lp = epoll_loop();
    run(&lp, async {
        // Backlog 0: one connection fills the accept queue and further
        // SYNs are dropped, so the linked timeout has to end the connect.
        let full = TcpListener::bind_with(
            "127.0.0.1:0",
            ListenOptions {
                backlog: 0,
                ..ListenOptions::default()
            },
        )
        .unwrap();
        let addr = full.local_addr().unwrap();
        let mut held = Vec::new();
        let mut timed_out = None;
        for _ in 0..8 {
            let t0 = Instant::now();
            match TcpStream::connect_timeout(addr, Duration::from_millis(200)).await {
                Ok(s) => held.push(s),
                Err(e) => {
                    assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
                    timed_out = Some(t0.elapsed());
                    break;
                }
            }
        }
        let took = timed_out.expect("a connect to a full accept queue timed out");
        assert!(
            took >= Duration::from_millis(200) && took < Duration::from_secs(5),
            "{took:?}"
        );
        // The socket a timed-out connect dropped left nothing behind: the
        // next connect (likely the same fd number) still completes.
        drop(full);
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = l.local_addr().unwrap();
        let acc = ringloop::spawn(async move { l.accept().await });
        TcpStream::connect_timeout(a, Duration::from_secs(5))
            .await
            .unwrap();
        acc.await.unwrap().unwrap();
    });
}
