//! The echo_client example's line mode, the README's way to try the echo
//! server: lines from the arguments or from stdin go out, their echoes are
//! printed, and it exits 0; a server that does not echo, or a bad command
//! line, is a clear failure (non-zero exit, a message naming the problem).
//!
//! The servers here are plain std threads on 127.0.0.1, port 0, except
//! the last test, which runs the echo_server example itself.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Output, Stdio};
use std::thread::JoinHandle;
use std::time::Duration;

/// Kills the child on drop so a failing test leaves no process behind.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A std echo server for one connection; returns its address and a handle
/// giving the bytes it echoed.
fn echo_once() -> (SocketAddr, JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    seen.extend_from_slice(&buf[..n]);
                    s.write_all(&buf[..n]).unwrap();
                }
            }
        }
        seen
    });
    (addr, server)
}

/// Runs the client with `args` and `stdin`, waiting at most 30 s.
fn client(args: &[&str], stdin: &[u8]) -> Output {
    let bin = common::example_binary("echo_client", &[]);
    let mut child = Reap(
        Command::new(bin)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start echo_client"),
    );
    let mut input = child.0.stdin.take().unwrap();
    input.write_all(stdin).unwrap();
    drop(input);
    let (mut out, mut err) = (
        child.0.stdout.take().unwrap(),
        child.0.stderr.take().unwrap(),
    );
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        out.read_to_end(&mut v).map(|_| v)
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        err.read_to_end(&mut v).map(|_| v)
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "echo_client did not exit in 30 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: out.join().unwrap().unwrap(),
        stderr: err.join().unwrap().unwrap(),
    }
}

fn text(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap()
}

#[test]
fn lines_from_the_arguments_come_back_and_the_client_exits_0() {
    let (addr, server) = echo_once();
    let out = client(&["--addr", &addr.to_string(), "hello", "two words"], b"");
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout), "hello\ntwo words\n");
    assert_eq!(server.join().unwrap(), b"hello\ntwo words\n");
}

#[test]
fn lines_from_stdin_come_back_and_the_client_exits_0() {
    let (addr, server) = echo_once();
    // The last line has no newline: one is added.
    let out = client(&["--addr", &addr.to_string(), "-"], b"first\n\nthird");
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout), "first\n\nthird\n");
    assert_eq!(server.join().unwrap(), b"first\n\nthird\n");
}

#[test]
fn a_server_that_closes_without_echoing_fails_the_client() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut line = [0u8; 6];
        s.read_exact(&mut line).unwrap();
        line
        // `s` closes here: no echo.
    });
    let out = client(&["--addr", &addr.to_string(), "hello"], b"");
    assert_eq!(&server.join().unwrap(), b"hello\n");
    assert!(!out.status.success(), "exited 0 with no echo");
    assert!(text(&out.stdout).is_empty(), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(err.contains("line 1"), "{err}");
}

#[test]
fn nothing_listening_and_bad_arguments_are_clear_errors() {
    // A port nobody listens on: bind one, note it, close it.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let out = client(&["--addr", &addr.to_string(), "hello"], b"");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(&format!("connect to {addr}")),
        "{}",
        text(&out.stderr)
    );

    let out = client(&["--conns", "2", "hello"], b"");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("do not mix"),
        "{}",
        text(&out.stderr)
    );

    let out = client(&["--bogus"], b"");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--bogus"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_client_talks_to_the_echo_server_example() {
    let server_bin = common::example_binary("echo_server", &[]);
    let mut server = Reap(
        Command::new(server_bin)
            .args(["--addr", "127.0.0.1:0", "--quiet"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start echo_server"),
    );
    let mut lines = BufReader::new(server.0.stdout.take().unwrap()).lines();
    let first = lines.next().expect("echo_server printed nothing").unwrap();
    let addr = first
        .strip_prefix("echo server listening on ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_owned();
    // Keep draining its stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    let out = client(&["--addr", &addr, "ping", "pong"], b"");
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout), "ping\npong\n");
}

/// The echo_server example's `--quiet` task (shaped for a small idle
/// footprint) and its one-shot twin (`ECHO_READS=one-shot`): 4 MiB from 8
/// clients at once come back byte-exact, and a client that half-closes
/// gets every byte back, then the end of stream.
#[test]
fn the_quiet_echo_server_echoes_every_byte_and_closes_after_a_half_close() {
    let server_bin = common::example_binary("echo_server", &[]);
    for reads in ["chunks", "one-shot"] {
        let mut server = Reap(
            Command::new(&server_bin)
                .args(["--addr", "127.0.0.1:0", "--quiet"])
                .env("ECHO_READS", reads)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("start echo_server"),
        );
        let mut lines = BufReader::new(server.0.stdout.take().unwrap()).lines();
        let first = lines.next().expect("echo_server printed nothing").unwrap();
        let addr: SocketAddr = first
            .strip_prefix("echo server listening on ")
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .parse()
            .unwrap();
        std::thread::spawn(move || lines.for_each(drop));
        let clients: Vec<_> = (0..8u8)
            .map(|c| {
                std::thread::spawn(move || {
                    let data: Vec<u8> = (0..512 * 1024u32)
                        .map(|i| (i.wrapping_mul(31) as u8) ^ c)
                        .collect();
                    let s = std::net::TcpStream::connect(addr).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                    let mut w = s.try_clone().unwrap();
                    let sent = data.clone();
                    let writer = std::thread::spawn(move || {
                        w.write_all(&sent).unwrap();
                        w.shutdown(std::net::Shutdown::Write).unwrap();
                    });
                    let mut got = Vec::new();
                    (&s).read_to_end(&mut got).unwrap();
                    writer.join().unwrap();
                    (got == data, got.len())
                })
            })
            .collect();
        for (i, c) in clients.into_iter().enumerate() {
            let (same, n) = c.join().unwrap();
            assert!(
                same,
                "{reads}: client {i} got {n} bytes back, not its 512 KiB"
            );
        }
    }
}
