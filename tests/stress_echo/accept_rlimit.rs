//! `stress_accept_starved_by_rlimit`: a ringloop server whose process may
//! hold only `RINGLOOP_STRESS_NOFILE` (64) fds, with `RINGLOOP_STRESS_HELD`
//! (200) client connections waiting. It accepts until `EMFILE`, then must
//! back off: under 5 % of one CPU while starved; and once one of its fds is
//! closed, the next accept must return within 100 ms.
//!
//! The limit is process-wide, so the server runs in a child process (this
//! test binary re-executed with [`CHILD_ENV`] set); the parent holds the
//! client connections (their fds must not count against the server's
//! limit) and relays the child's output.

use std::cell::{Cell, RefCell};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ringloop::net::{TcpListener, TcpStream};
use ringloop::{EventLoop, ring_stats, sleep, spawn};

use super::common::XorShift;
use super::support::{env_u64, getrlimit_nofile, process_cpu_time, raise_nofile, setrlimit_nofile};

/// Set (to the fd limit) in the re-executed child.
pub const CHILD_ENV: &str = "RINGLOOP_STRESS_RLIMIT_CHILD";

/// Bounds the issue sets.
const MAX_CPU_PCT: f64 = 5.0;
const MAX_RESUME: Duration = Duration::from_millis(100);
/// Resume measurements, each after a random wait so that the fd is freed
/// at a different point of the accept back-off.
const TRIALS: usize = 8;

/// The parent side: starts the child, connects and holds the clients, and
/// relays the child's output; fails if the child fails or takes > 120 s.
pub fn parent(test_name: &str) {
    let held_n = env_u64("RINGLOOP_STRESS_HELD", 200);
    let nofile = env_u64("RINGLOOP_STRESS_NOFILE", 64);
    raise_nofile(held_n + 256);
    let exe = std::env::current_exe().expect("current_exe");
    let mut child = Command::new(exe)
        .args([
            "--exact",
            test_name,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, nofile.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("re-execute the test binary");
    let (tx, rx) = mpsc::channel::<String>();
    let stdout = child.stdout.take().expect("child stdout");
    let relay = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let next_line = |what: &str| {
        let left = deadline.saturating_duration_since(Instant::now());
        rx.recv_timeout(left)
            .unwrap_or_else(|e| panic!("waiting for the child's {what}: {e}"))
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let addr: SocketAddr = loop {
            let line = next_line("address");
            // libtest may have printed `test <name> ... ` on the same line.
            match line.split_once("ADDR ") {
                Some((_, a)) => break a.trim().parse().expect("child's address"),
                None => println!("{line}"),
            }
        };
        // Blocking connects: the kernel completes them into the backlog.
        let held: Vec<std::net::TcpStream> = (0..held_n)
            .map(|i| {
                std::net::TcpStream::connect(addr)
                    .unwrap_or_else(|e| panic!("connect {} of {held_n}: {e}", i + 1))
            })
            .collect();
        let mut stdin = child.stdin.take().expect("child stdin");
        writeln!(stdin, "GO {held_n}").expect("tell the child to go");
        drop(stdin);
        loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => println!("{line}"),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(e) => panic!("the child did not finish within 120 s: {e}"),
            }
        }
        drop(held);
    }));
    if result.is_err() {
        // Ours to stop: the child we started.
        let _ = child.kill();
    }
    let status = child.wait().expect("wait for the child");
    let _ = relay.join();
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
    assert!(
        status.success(),
        "the child (the starved server) failed: {status}"
    );
}

/// The child: the starved server.
pub fn child(nofile: u64) {
    let (_, hard) = getrlimit_nofile();
    setrlimit_nofile(nofile, hard).expect("lower RLIMIT_NOFILE");
    let lp = EventLoop::new().expect("loop");
    lp.run_until_complete(starved_server(nofile))
        .expect("run the server");
    lp.cancel_all_tasks().expect("cancel_all_tasks");
}

/// Prints the `FIGURE` line, then checks the bounds.
async fn starved_server(nofile: u64) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    println!("ADDR {}", listener.local_addr().unwrap());
    std::io::stdout().flush().unwrap();
    // Wait for the parent's connections (a blocking read is fine here:
    // nothing else runs on this loop yet).
    let mut go = String::new();
    std::io::stdin().read_line(&mut go).expect("read GO");
    let held: usize = go
        .strip_prefix("GO ")
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("expected `GO <n>`, got {go:?}"));

    let accepted: Rc<RefCell<Vec<TcpStream>>> = Rc::default();
    let count = Rc::new(Cell::new(0usize));
    let last = Rc::new(Cell::new(Instant::now()));
    let (acc, n, l) = (accepted.clone(), count.clone(), last.clone());
    let acceptor = spawn(async move {
        loop {
            let (s, _) = listener.accept().await.expect("accept");
            l.set(Instant::now());
            n.set(n.get() + 1);
            acc.borrow_mut().push(s);
        }
    });
    // Starved: no accept for 300 ms.
    let t0 = Instant::now();
    while count.get() == 0 || last.get().elapsed() < Duration::from_millis(300) {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "accepting never stalled"
        );
        sleep(Duration::from_millis(20)).await;
    }
    let at_starve = count.get();
    assert!(
        at_starve < held && (at_starve as u64) < nofile,
        "{at_starve} of {held} connections accepted under RLIMIT_NOFILE={nofile}"
    );

    // CPU use while starved.
    let (cpu0, enters0, wall0) = (
        process_cpu_time(),
        ring_stats().unwrap().enters,
        Instant::now(),
    );
    sleep(Duration::from_secs(1)).await;
    let wall = wall0.elapsed();
    let cpu = process_cpu_time() - cpu0;
    let enters = ring_stats().unwrap().enters - enters0;
    let cpu_pct = 100.0 * cpu.as_secs_f64() / wall.as_secs_f64();
    assert_eq!(
        count.get(),
        at_starve,
        "an accept succeeded with no fd free"
    );

    // Free one fd at a time and time the next accept.
    let mut rng = XorShift::new(64);
    let mut resume = Vec::with_capacity(TRIALS);
    for trial in 0..TRIALS {
        sleep(Duration::from_millis(300 + rng.range(0, 100))).await;
        let s = accepted.borrow_mut().pop().expect("an accepted connection");
        let before = count.get();
        s.close().await.expect("close an accepted connection");
        let freed = Instant::now();
        while count.get() == before {
            assert!(
                freed.elapsed() < Duration::from_secs(5),
                "trial {trial}: no accept 5 s after an fd was freed"
            );
            sleep(Duration::from_millis(1)).await;
        }
        resume.push(last.get().saturating_duration_since(freed));
    }
    drop(acceptor);
    let max = resume.iter().max().copied().unwrap_or_default();
    let ms: Vec<String> = resume
        .iter()
        .map(|d| format!("{:.1}", d.as_secs_f64() * 1e3))
        .collect();
    let figure = format!(
        "FIGURE accept_rlimit nofile={nofile} held={held} accepted_when_starved={at_starve} \
         starved_cpu_pct={cpu_pct:.2} starved_enters_per_s={:.1} resume_ms_max={:.1} \
         resume_ms=[{}]",
        enters as f64 / wall.as_secs_f64(),
        max.as_secs_f64() * 1e3,
        ms.join(",")
    );
    println!("{figure}");
    assert!(
        cpu_pct < MAX_CPU_PCT,
        "{cpu_pct:.2}% CPU while starved of fds (bound {MAX_CPU_PCT}%)"
    );
    assert!(
        max < MAX_RESUME,
        "accept resumed {max:?} after an fd was freed (bound {MAX_RESUME:?}): {ms:?}"
    );
}
