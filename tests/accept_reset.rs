//! R1: one connection's failure never stops a listener or a server.
//!
//! Clients that connect and reset at once (SO_LINGER 0, as health checkers,
//! port scanners and impatient clients do) are mixed with good clients
//! that must all be echoed byte-exact: first while nobody accepts (the
//! resets wait in the backlog), then while an accept is armed. The same
//! through `start_server`, a Unix listener, and the echo_server example.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::thread::JoinHandle;
use std::time::Duration;

use common::{Sha256, XorShift, ensure_nofile, reset, run_bounded};
use ringloop::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use ringloop::{spawn, to_thread};

/// Resets per phase (backlog, then armed): 1,000 in all per test.
const RESETS: usize = 500;
/// One good client after every this many resets.
const GOOD_EVERY: usize = 25;
/// How long a good client waits for its echo before it fails the test.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// A client that connects and resets at once.
fn reset_client(addr: SocketAddr) {
    reset(std::net::TcpStream::connect(addr).expect("reset client connect"));
}

/// A good client: sends `payload`, half-closes, and checks that exactly the
/// same bytes come back. Its connection is made before this returns (so it
/// sits in the backlog in order with the resets); the exchange runs on a
/// thread.
fn good_client(addr: SocketAddr, payload: Vec<u8>) -> JoinHandle<Result<(), String>> {
    let mut s = std::net::TcpStream::connect(addr).expect("good client connect");
    std::thread::spawn(move || {
        s.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
        s.write_all(&payload).map_err(|e| format!("write: {e}"))?;
        s.shutdown(Shutdown::Write)
            .map_err(|e| format!("shutdown: {e}"))?;
        let mut back = Vec::new();
        s.read_to_end(&mut back)
            .map_err(|e| format!("read after {} bytes: {e}", back.len()))?;
        if Sha256::digest(&back) != Sha256::digest(&payload) {
            return Err(format!(
                "echo differs: sent {} bytes, got {}",
                payload.len(),
                back.len()
            ));
        }
        Ok(())
    })
}

/// Resets interleaved with good clients; returns the good clients.
fn storm(addr: SocketAddr, seed: u64) -> Vec<JoinHandle<Result<(), String>>> {
    let mut rng = XorShift::new(seed);
    let mut good = Vec::new();
    for i in 0..RESETS {
        reset_client(addr);
        if i % GOOD_EVERY == 0 {
            let len = rng.range_usize(1, 16 * 1024);
            good.push(good_client(addr, rng.bytes(len)));
        }
    }
    good
}

/// Runs `storm` on a thread without blocking the loop.
async fn storm_off_loop(addr: SocketAddr, seed: u64) -> Vec<JoinHandle<Result<(), String>>> {
    to_thread(move || storm(addr, seed))
        .await
        .expect("the storm thread panicked")
}

/// Waits for every good client and checks each was served byte-exact.
async fn check_all(good: Vec<JoinHandle<Result<(), String>>>) {
    let n = good.len();
    let results = to_thread(move || {
        good.into_iter()
            .map(|h| h.join().expect("client thread panicked"))
            .collect::<Vec<_>>()
    })
    .await
    .expect("join thread panicked");
    let failed: Vec<_> = results.into_iter().filter_map(Result::err).collect();
    assert!(
        failed.is_empty(),
        "{} of {n} good clients failed: {failed:?}",
        failed.len()
    );
}

/// One more good client, after the storm, is echoed byte-exact.
async fn assert_still_served(addr: SocketAddr) {
    let last = to_thread(move || good_client(addr, b"still here".to_vec()).join())
        .await
        .unwrap()
        .expect("client thread panicked");
    assert_eq!(last, Ok(()));
}

/// Echoes one ringloop TCP connection until EOF (or the peer's reset).
async fn echo_tcp(stream: TcpStream) {
    let mut buf = Vec::with_capacity(16 * 1024);
    loop {
        buf.clear();
        let (res, b) = stream.read(buf).await;
        match res {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let (res, b) = stream.write_all(b).await;
        if res.is_err() {
            return;
        }
        buf = b;
    }
}

#[test]
fn r1_reset_clients_never_stop_tcp_accept() {
    ensure_nofile(4096);
    run_bounded(Duration::from_secs(120), async {
        let listener = Rc::new(TcpListener::bind("127.0.0.1:0").unwrap());
        let addr = listener.local_addr().unwrap();

        // Phase 1: nobody accepts; resets and good clients wait in the backlog.
        let mut good = storm_off_loop(addr, 1).await;

        // Then serve: every accept error is a failure of this test.
        let l = listener.clone();
        let acceptor = spawn(async move {
            let mut accepted = 0u64;
            loop {
                match l.accept().await {
                    Ok((stream, _peer)) => {
                        accepted += 1;
                        spawn(echo_tcp(stream)).detach();
                    }
                    Err(e) => return (accepted, e),
                }
            }
        });

        // Phase 2: the accept is armed while the resets arrive.
        good.extend(storm_off_loop(addr, 2).await);
        check_all(good).await;

        // The accept loop is still serving.
        assert_still_served(addr).await;
        assert!(
            !acceptor.is_done(),
            "the accept loop ended: {:?}",
            acceptor.await
        );
    });
}

#[test]
fn r1_reset_clients_never_stop_start_server() {
    ensure_nofile(4096);
    run_bounded(Duration::from_secs(120), async {
        let server = ringloop::io::start_server(
            |mut r, w| async move {
                loop {
                    match r.read(16 * 1024).await {
                        Ok(data) if !data.is_empty() => {
                            if w.write(&data).is_err() || w.drain().await.is_err() {
                                return;
                            }
                        }
                        _ => return,
                    }
                }
            },
            "127.0.0.1:0",
        )
        .unwrap();
        let addr = server.local_addr().unwrap();

        // Phase 1: the storm runs while this loop is blocked, before the
        // server's first accept was even submitted: the resets queue in
        // the backlog. Phase 2: the accept is armed.
        let mut good = std::thread::spawn(move || storm(addr, 3)).join().unwrap();
        good.extend(storm_off_loop(addr, 4).await);
        check_all(good).await;

        assert_still_served(addr).await;
        let mut server = server;
        // Still accepting: serve_forever has not returned an error.
        let r = ringloop::wait_for(server.serve_forever(), Some(Duration::from_millis(50))).await;
        assert!(r.is_err(), "the server stopped: {r:?}");
    });
}

#[test]
fn r1_closed_unix_clients_never_stop_unix_accept() {
    run_bounded(Duration::from_secs(60), async {
        let dir = std::env::temp_dir().join(format!("ringloop-r1-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sock");
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(path.as_path()).unwrap();

        // Clients that connect and close before the accept, some after
        // sending a line: each is still a connection to serve (its bytes
        // can be read, then EOF), never an accept error.
        let p = path.clone();
        let clients = to_thread(move || {
            (0..200)
                .map(|i| {
                    let mut c = StdUnixStream::connect(&p).unwrap();
                    if i % 2 == 0 {
                        c.write_all(format!("client {i}\n").as_bytes()).unwrap();
                    }
                    drop(c);
                })
                .count()
        })
        .await
        .unwrap();
        let mut lines = 0;
        for _ in 0..clients {
            let (s, _addr): (UnixStream, _) = listener.accept().await.expect("unix accept");
            let (res, buf) = s.read(Vec::with_capacity(64)).await;
            let n = res.unwrap();
            if n > 0 {
                assert!(buf.starts_with(b"client "), "{buf:?}");
                lines += 1;
            }
        }
        assert_eq!(lines, 100);
        drop(listener);
        std::fs::remove_dir_all(&dir).unwrap();
    });
}

/// Kills the child on drop so a failing test leaves no process behind.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn read_listen_line(child: &mut Child) -> SocketAddr {
    use std::io::BufRead;
    let out = child.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(out).lines();
    let line = lines.next().expect("echo_server printed nothing").unwrap();
    let addr = line
        .strip_prefix("echo server listening on ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    addr.trim().parse().unwrap()
}

#[test]
fn r1_reset_clients_never_stop_the_echo_server_example() {
    let bin = common::example_binary("echo_server", &[]);
    run_example_storm(&bin);
}

fn run_example_storm(bin: &Path) {
    let child = Command::new(bin)
        .args(["--addr", "127.0.0.1:0", "--quiet"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start echo_server");
    let mut child = Reap(child);
    let addr = read_listen_line(&mut child.0);
    let mut good = storm(addr, 5);
    good.extend(storm(addr, 6));
    for h in good {
        assert_eq!(h.join().expect("client thread panicked"), Ok(()));
    }
    assert_eq!(
        good_client(addr, b"still here".to_vec()).join().unwrap(),
        Ok(())
    );
    assert!(
        child.0.try_wait().unwrap().is_none(),
        "echo_server exited during the storm"
    );
    // Ctrl-C stops it cleanly.
    // SAFETY: kill(2) on our own child's pid; no memory is involved.
    let r = unsafe { libc::kill(child.0.id() as libc::pid_t, libc::SIGINT) };
    assert_eq!(r, 0);
    let status = child.0.wait().unwrap();
    let mut err = String::new();
    if let Some(mut e) = child.0.stderr.take() {
        e.read_to_string(&mut err).unwrap();
    }
    assert!(status.success(), "echo_server exited with {status}: {err}");
}
