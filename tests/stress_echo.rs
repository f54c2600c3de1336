//! Echo stress tests (issue 7), all `#[ignore]`: `scripts/stress.sh` runs
//! them with `--ignored --test-threads=1`, `scripts/valgrind.sh` runs
//! `valgrind_echo_64x10000` under valgrind. Each prints one line starting
//! with `FIGURE ` for RELIABILITY.md.
//!
//! - `stress_echo_10k_connections`: a ringloop echo server (pinned to the
//!   first allowed CPU) and ringloop clients in a second process (pinned to
//!   the second) keep `RINGLOOP_STRESS_CONNS` (10,000) connections echoing
//!   random messages of 1..=`RINGLOOP_STRESS_MSG_BYTES` (4,096) bytes for
//!   `RINGLOOP_STRESS_SECS` (60) s. Checked: no connection goes 10 s
//!   without finishing a message (hung), every connection's SHA-256 of the
//!   bytes sent equals that of the bytes echoed and every message comes back
//!   equal, the server echoed exactly the bytes the clients got, both
//!   rings' `cq_overflow` is 0, and each process's RSS at the end is at most
//!   its RSS after warm-up (10 s) plus max(10 %, 8 MiB). The clients run in
//!   their own process (this binary re-executed) so that each process needs
//!   only `conns` + 1,024 fds: it raises RLIMIT_NOFILE to that in-process,
//!   within a hard limit that may be below 2 × `conns` (raising the hard
//!   limit needs CAP_SYS_RESOURCE).
//! - `valgrind_echo_64x10000`: the same server and clients on one loop (see
//!   `run_echo_one_loop` for why), 64 connections × 10,000 messages of up
//!   to 512 bytes (`RINGLOOP_VALGRIND_CONNS`, `RINGLOOP_VALGRIND_MSGS`,
//!   `RINGLOOP_VALGRIND_MSG_BYTES`).
//! - `stress_accept_starved_by_rlimit` (in `stress_echo/accept_rlimit.rs`).

#[path = "stress_echo/accept_rlimit.rs"]
mod accept_rlimit;
mod common;
#[path = "stress_echo/echo.rs"]
mod echo;
#[path = "stress_echo/support.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use echo::{
    ClientReport, EchoConfig, HUNG_AFTER, ServerReport, StopRule, Summary, bind, client,
    parse_summary, serve, server_loop, summary_line,
};
use ringloop::EventLoop;
use ringloop::sync::cross;
use support::{allowed_cpus, env_u64, pin_to_cpu, raise_nofile, rss_kib};

/// Set (to `<server address> <cpu or ->`) in the client process of
/// `stress_echo_10k_connections`.
const CLIENT_ENV: &str = "RINGLOOP_STRESS_ECHO_CLIENT";

/// The RSS a process may reach at the end, given its RSS after warm-up.
fn rss_bound(warm_kib: u64) -> u64 {
    warm_kib + (warm_kib / 10).max(8 * 1024)
}

/// Runs the server and the clients on one loop (one thread): valgrind
/// 3.19 does not release its lock during `io_uring_enter` (it does not
/// know the call blocks), so a loop parked in the kernel stops every other
/// thread of the process, and two loops on two threads deadlock.
fn run_echo_one_loop(cfg: EchoConfig) -> (ServerReport, ClientReport) {
    raise_nofile(2 * cfg.conns as u64 + 1024);
    let lp = EventLoop::new().expect("loop");
    let (mut server, mut client) = lp
        .run_until_complete(async {
            let listener = bind(1024);
            let addr = listener.local_addr().unwrap();
            let (stop_tx, stop_rx) = cross::channel::<()>(1).unwrap();
            let accepted = Arc::new(AtomicUsize::new(0));
            let server = ringloop::spawn(serve(listener, stop_rx, accepted.clone()));
            let client = client(&cfg, addr, Some(&accepted)).await;
            drop(stop_tx);
            (server.await.expect("server task"), client)
        })
        .expect("run");
    lp.cancel_all_tasks().expect("cancel tasks");
    (server.ring, client.ring) = (lp.ring_stats(), lp.ring_stats());
    (server, client)
}

/// The clients' checks.
fn check_client(c: &Summary, conns: usize, first_error: Option<&str>) {
    assert_eq!(
        c["hung"], 0,
        "{} connections hung (no progress for {HUNG_AFTER:?})",
        c["hung"]
    );
    assert_eq!(
        c["errors"], 0,
        "{} connections failed, first: {first_error:?}",
        c["errors"]
    );
    assert_eq!(c["conns"], conns as u64, "connection reports");
    assert_eq!(
        c["corrupt"], 0,
        "connections that got back bytes they did not send"
    );
    assert_eq!(c["idle"], 0, "connections that never completed a message");
    assert_eq!(c["cq_overflow"], 0, "client CQ overflow");
}

/// The server's checks, against what the clients received.
fn check_server(server: &ServerReport, c: &Summary, conns: usize) {
    assert_eq!(server.accepted, conns as u64, "accepted");
    assert_eq!(
        server.errors, 0,
        "server errors, first: {:?}",
        server.first_error
    );
    assert_eq!(
        server.open_at_end, 0,
        "server connections still open 30 s after the clients closed"
    );
    assert_eq!(
        server.echoed, c["bytes"],
        "bytes echoed by the server vs. received by the clients"
    );
    assert_eq!(
        server.ring.cq_overflow, 0,
        "server CQ overflow: {:?}",
        server.ring
    );
}

fn echo_10k_config() -> EchoConfig {
    let secs = env_u64("RINGLOOP_STRESS_SECS", 60);
    EchoConfig {
        conns: env_u64("RINGLOOP_STRESS_CONNS", 10_000) as usize,
        msg_bytes: env_u64("RINGLOOP_STRESS_MSG_BYTES", 4096) as usize,
        stop: StopRule::Secs(secs),
        connect_batch: 512,
        warm_up: Some(Duration::from_secs(10.min(secs / 3))),
        marks: true,
    }
}

/// The client process of `stress_echo_10k_connections`: prints its
/// summary as a `CLIENT` line, then checks it.
fn client_process(cfg: EchoConfig, arg: &str) {
    let (addr, cpu) = arg.split_once(' ').expect("`<addr> <cpu>`");
    let addr = addr.parse().expect("server address");
    raise_nofile(cfg.conns as u64 + 1024);
    if let Ok(cpu) = cpu.parse() {
        pin_to_cpu(cpu);
    }
    let lp = EventLoop::new().expect("client loop");
    let report = lp
        .run_until_complete(client(&cfg, addr, None))
        .expect("client run");
    lp.cancel_all_tasks().expect("cancel client tasks");
    drop(lp);
    let summary = report.summary();
    println!("{}", summary_line(&summary));
    check_client(&summary, cfg.conns, report.first_error());
}

#[test]
#[ignore = "stress: run by scripts/stress.sh"]
fn stress_echo_10k_connections() {
    let cfg = echo_10k_config();
    if let Ok(arg) = std::env::var(CLIENT_ENV) {
        return client_process(cfg, &arg);
    }
    let (conns, secs) = (cfg.conns, env_u64("RINGLOOP_STRESS_SECS", 60));
    raise_nofile(conns as u64 + 1024);
    let cpus = allowed_cpus();
    let (server_cpu, client_cpu) = match cpus[..] {
        [a, b, ..] => (Some(a), Some(b)),
        _ => (None, None),
    };
    let (addr_tx, addr_rx) = mpsc::channel();
    let (stop_tx, stop_rx) = cross::channel::<()>(1).unwrap();
    let server = std::thread::Builder::new()
        .name("echo-server".into())
        .spawn(move || {
            if let Some(cpu) = server_cpu {
                pin_to_cpu(cpu);
            }
            server_loop(addr_tx, stop_rx, Arc::default(), 4096)
        })
        .unwrap();
    let addr = addr_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("server address");
    let cpu = client_cpu.map_or("-".to_owned(), |c| c.to_string());
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "stress_echo_10k_connections",
            "--ignored",
            "--nocapture",
        ])
        .args(["--test-threads=1"])
        .env(CLIENT_ENV, format!("{addr} {cpu}"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the client process");
    let (tx, rx) = mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    let relay = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // The server samples its own RSS when the clients sample theirs.
    let deadline = Instant::now() + Duration::from_secs(secs + 300);
    let (mut warm_kib, mut end_kib, mut summary) = (None, None, None);
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(l) if l.contains("MARK warm") => warm_kib = Some(rss_kib()),
            Ok(l) if l.contains("MARK end") => end_kib = Some(rss_kib()),
            Ok(l) => match parse_summary(&l) {
                Some(s) => summary = Some(s),
                None => println!("{l}"),
            },
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(e) => {
                let _ = child.kill(); // ours: the client process we started
                panic!("the client process did not finish in {secs} + 300 s: {e}");
            }
        }
    }
    let status = child.wait().expect("wait for the client process");
    let _ = relay.join();
    drop(stop_tx);
    let server = server.join().expect("server thread");
    let c = summary.unwrap_or_else(|| panic!("the client process printed no summary: {status}"));
    let (warm_kib, end_kib) = (warm_kib.expect("warm mark"), end_kib.expect("end mark"));
    println!(
        "FIGURE echo_10k conns={conns} secs={secs} msg_max={} msgs={} bytes={} \
         min_msgs_per_conn={} hung={} corrupt={} errors={} cq_overflow_server={} \
         cq_overflow_client={} overflow_flushes_server={} overflow_flushes_client={} \
         connect_s={:.2} echo_s={:.2} server_rss_warm_kib={warm_kib} \
         server_rss_end_kib={end_kib} client_rss_warm_kib={} client_rss_end_kib={} \
         rss_bound=warm+max(10%,8MiB) warm_s={}",
        cfg.msg_bytes,
        c["msgs"],
        c["bytes"],
        c["min_msgs"],
        c["hung"],
        c["corrupt"],
        c["errors"],
        server.ring.cq_overflow,
        c["cq_overflow"],
        server.ring.overflow_flushes,
        c["overflow_flushes"],
        c["connect_ms"] as f64 / 1e3,
        c["echo_ms"] as f64 / 1e3,
        c["rss_warm_kib"],
        c["rss_end_kib"],
        cfg.warm_up.unwrap_or_default().as_secs(),
    );
    assert!(status.success(), "the client process failed: {status}");
    check_client(&c, conns, None);
    check_server(&server, &c, conns);
    for (who, warm, end) in [
        ("server", warm_kib, end_kib),
        ("client", c["rss_warm_kib"], c["rss_end_kib"]),
    ] {
        assert!(
            end <= rss_bound(warm),
            "{who} RSS grew from {warm} KiB after warm-up to {end} KiB (bound {} KiB)",
            rss_bound(warm)
        );
    }
}

#[test]
#[ignore = "valgrind: run by scripts/valgrind.sh"]
fn valgrind_echo_64x10000() {
    let conns = env_u64("RINGLOOP_VALGRIND_CONNS", 64) as usize;
    let per_conn = env_u64("RINGLOOP_VALGRIND_MSGS", 10_000);
    let msg_bytes = env_u64("RINGLOOP_VALGRIND_MSG_BYTES", 512) as usize;
    let cfg = EchoConfig {
        conns,
        msg_bytes,
        stop: StopRule::Messages(per_conn),
        connect_batch: 64,
        warm_up: None,
        marks: false,
    };
    let (server, client) = run_echo_one_loop(cfg);
    let c = client.summary();
    check_client(&c, conns, client.first_error());
    check_server(&server, &c, conns);
    assert_eq!(c["msgs"], conns as u64 * per_conn, "messages");
    println!(
        "FIGURE valgrind_echo conns={conns} msgs_per_conn={per_conn} msg_max={msg_bytes} \
         msgs={} bytes={} hung=0 corrupt=0 errors=0 cq_overflow={} echo_s={:.2}",
        c["msgs"],
        c["bytes"],
        server.ring.cq_overflow,
        c["echo_ms"] as f64 / 1e3
    );
}

#[test]
#[ignore = "stress: run by scripts/stress.sh"]
fn stress_accept_starved_by_rlimit() {
    match std::env::var(accept_rlimit::CHILD_ENV) {
        Ok(limit) => accept_rlimit::child(limit.parse().expect("fd limit")),
        Err(_) => accept_rlimit::parent("stress_accept_starved_by_rlimit"),
    }
}
