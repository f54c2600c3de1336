//! hyper on ringloop (`--features hyper`): hyper's own HTTP/1.1 and HTTP/2
//! client and server over `HyperIo`, on one loop, no tokio.
//!
//! - 1,000 keep-alive requests on one connection, bodies byte-exact both
//!   ways (TCP), and the same over a Unix stream;
//! - HTTP/2 (h2c, prior knowledge): 100 streams in flight at once;
//! - a client that sends half a request and stalls is cut off by the
//!   header-read timeout, one that resets mid-request is dropped, and the
//!   server serves others all along and leaks no fd;
//! - connection tasks cancelled mid-request leak no fd;
//! - the `http_server` and `http_client` examples: requests, Ctrl-C
//!   (graceful: the request in flight completes), exit status 0.
//!
//! Every test runs on both backends (`RINGLOOP_BACKEND=epoll`). Some count
//! the process's fds, so all run one at a time.

mod common;

use std::cell::Cell;
use std::convert::Infallible;
use std::io::{self, BufRead, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::{fd_count, fd_list, ms, run_bounded, serial};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use ringloop::hyper::{HyperExecutor, HyperIo, HyperTimer};
use ringloop::net::{TcpListener, TcpStream, UnixStream};
use ringloop::sync::Event;
use ringloop::{sleep, spawn};

/// `n` bytes of stream `seed`.
fn body_bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// `a=1&b=2` → the value of `key`.
fn query(req: &Request<Incoming>, key: &str) -> Option<u64> {
    req.uri().query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| v.parse().ok()).flatten()
    })
}

/// What the test server saw.
#[derive(Default)]
struct Seen {
    connections: Cell<usize>,
    requests: Cell<usize>,
    /// Requests inside the service now, and the most at once.
    inside: Cell<usize>,
    most_inside: Cell<usize>,
    /// `/hold` requests wait until this many are inside at once.
    hold_for: Cell<usize>,
    held: Event,
    /// Connections that ended in an error (a timeout, a reset).
    failed: Cell<usize>,
}

/// `GET /bytes?n=N&seed=S`: N bytes of stream S. `POST /echo`: the body
/// back. `GET /hold?n=N&seed=S`: as `/bytes`, once `hold_for` requests are
/// inside at once.
async fn service(
    req: Request<Incoming>,
    seen: Rc<Seen>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    seen.requests.set(seen.requests.get() + 1);
    seen.inside.set(seen.inside.get() + 1);
    seen.most_inside
        .set(seen.most_inside.get().max(seen.inside.get()));
    let n = query(&req, "n").unwrap_or(0) as usize;
    let seed = query(&req, "seed").unwrap_or(0);
    let body = match req.uri().path() {
        "/echo" => match req.into_body().collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => Bytes::new(),
        },
        "/hold" => {
            if seen.inside.get() >= seen.hold_for.get() {
                seen.held.set();
            }
            seen.held.wait().await;
            body_bytes(seed, n).into()
        }
        _ => body_bytes(seed, n).into(),
    };
    seen.inside.set(seen.inside.get() - 1);
    Ok(Response::new(Full::new(body)))
}

/// Serves HTTP/1.1 on `listener` until the task is dropped.
fn serve_http1(
    listener: TcpListener,
    seen: Rc<Seen>,
    header_timeout: Duration,
) -> ringloop::Task<()> {
    spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.expect("accept");
            seen.connections.set(seen.connections.get() + 1);
            let seen = seen.clone();
            spawn(async move {
                let svc = {
                    let seen = seen.clone();
                    hyper::service::service_fn(move |req| service(req, seen.clone()))
                };
                let res = hyper::server::conn::http1::Builder::new()
                    .timer(HyperTimer)
                    .header_read_timeout(header_timeout)
                    .serve_connection(HyperIo::from(stream), svc)
                    .await;
                if res.is_err() {
                    seen.failed.set(seen.failed.get() + 1);
                }
            })
            .detach();
        }
    })
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// hyper's HTTP/1.1 client over `io`; its connection runs as a task.
async fn http1_client<T>(io: HyperIo<T>) -> Sender
where
    HyperIo<T>: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .expect("handshake");
    spawn(async move {
        let _ = conn.await;
    })
    .detach();
    sender
}

/// Request `i` of the keep-alive test, and the body it must get back.
fn request(i: usize) -> (Request<Full<Bytes>>, Vec<u8>) {
    let n = match i % 100 {
        99 => 1 << 20, // a body far larger than the socket buffers
        _ => i * 7919 % 65_536,
    };
    let seed = i as u64;
    let want = body_bytes(seed, n);
    let req = if i % 3 == 0 {
        Request::post("/echo")
            .header("host", "test")
            .body(Full::new(Bytes::from(want.clone())))
    } else {
        Request::get(format!("/bytes?n={n}&seed={seed}"))
            .header("host", "test")
            .body(Full::new(Bytes::new()))
    };
    (req.unwrap(), want)
}

async fn send_checked(sender: &mut Sender, i: usize) {
    let (req, want) = request(i);
    sender.ready().await.expect("connection ready");
    let res = sender.send_request(req).await.expect("send_request");
    assert_eq!(res.status(), StatusCode::OK, "request {i}");
    let got = res.into_body().collect().await.expect("body").to_bytes();
    assert!(
        got.len() == want.len() && got[..] == want[..],
        "request {i}: body of {} bytes, want {}",
        got.len(),
        want.len()
    );
}

#[test]
fn a_thousand_keep_alive_requests_on_one_connection_byte_exact() {
    let _serial = serial();
    run_bounded(Duration::from_secs(120), async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Rc::new(Seen::default());
        let _server = serve_http1(listener, seen.clone(), Duration::from_secs(30));
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let mut sender = http1_client(HyperIo::from(stream)).await;
        for i in 0..1000 {
            send_checked(&mut sender, i).await;
        }
        assert_eq!(seen.requests.get(), 1000);
        assert_eq!(
            seen.connections.get(),
            1,
            "keep-alive reused one connection"
        );
        assert_eq!(seen.failed.get(), 0);
    });
}

#[test]
fn keep_alive_over_a_unix_stream() {
    let _serial = serial();
    run_bounded(Duration::from_secs(60), async {
        let (a, b) = UnixStream::pair().unwrap();
        let seen = Rc::new(Seen::default());
        let server = {
            let seen = seen.clone();
            spawn(async move {
                let svc = hyper::service::service_fn(move |req| service(req, seen.clone()));
                hyper::server::conn::http1::Builder::new()
                    .timer(HyperTimer)
                    .serve_connection(HyperIo::from(b), svc)
                    .await
            })
        };
        let mut sender = http1_client(HyperIo::from(a)).await;
        for i in 0..200 {
            send_checked(&mut sender, i).await;
        }
        drop(sender);
        server
            .await
            .unwrap()
            .expect("the server ends cleanly when the client leaves");
        assert_eq!(seen.requests.get(), 200);
    });
}

#[test]
fn http2_prior_knowledge_with_a_hundred_concurrent_streams() {
    let _serial = serial();
    const STREAMS: usize = 100;
    run_bounded(Duration::from_secs(60), async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Rc::new(Seen::default());
        seen.hold_for.set(STREAMS);
        let server = {
            let seen = seen.clone();
            spawn(async move {
                let (stream, _) = listener.accept().await.unwrap();
                let svc = hyper::service::service_fn(move |req| service(req, seen.clone()));
                hyper::server::conn::http2::Builder::new(HyperExecutor)
                    .timer(HyperTimer)
                    .max_concurrent_streams(2 * STREAMS as u32)
                    .serve_connection(HyperIo::from(stream), svc)
                    .await
            })
        };
        let stream = TcpStream::connect(addr).await.unwrap();
        h2_streams_in_flight_at_once(HyperIo::from(stream), STREAMS, &seen).await;
        server
            .await
            .unwrap()
            .expect("server connection ends cleanly");
    });
}

/// hyper's HTTP/2 client over `io` sends `streams` `/hold` requests at
/// once (the server must hold them until all are inside), checks every
/// body, then closes the connection cleanly.
async fn h2_streams_in_flight_at_once<T>(io: HyperIo<T>, streams: usize, seen: &Seen)
where
    HyperIo<T>: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
{
    let (sender, conn) = hyper::client::conn::http2::Builder::new(HyperExecutor)
        .timer(HyperTimer)
        .handshake(io)
        .await
        .expect("h2 handshake");
    let conn = spawn(conn);
    let tasks: Vec<_> = (0..streams)
        .map(|i| {
            let mut sender = sender.clone();
            spawn(async move {
                // Up to 200 KiB each: beyond the default 64 KiB stream
                // window, so flow control runs too.
                let n = (i * 2003) % (200 << 10);
                let req = Request::get(format!("http://test/hold?n={n}&seed={i}"))
                    .body(Full::new(Bytes::new()))
                    .unwrap();
                let res = sender.send_request(req).await.expect("h2 request");
                assert_eq!(res.status(), StatusCode::OK);
                assert_eq!(res.version(), hyper::Version::HTTP_2);
                let got = res.into_body().collect().await.expect("body").to_bytes();
                assert!(got[..] == body_bytes(i as u64, n)[..], "stream {i} differs");
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        seen.most_inside.get(),
        streams,
        "all streams were in flight at once"
    );
    assert_eq!(seen.requests.get(), streams);
    drop(sender);
    conn.await.unwrap().expect("client connection ends cleanly");
}

/// A client that sends half a request and stalls is cut off by the
/// header-read timeout; one that resets halfway is dropped; meanwhile a
/// keep-alive client is served throughout, and afterwards no fd is left.
#[test]
fn a_stalled_and_a_reset_client_do_not_stop_the_server() {
    let _serial = serial();
    const TIMEOUT: Duration = Duration::from_millis(300);
    run_bounded(Duration::from_secs(60), async {
        let baseline = fd_count();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Rc::new(Seen::default());
        let server = serve_http1(listener, seen.clone(), TIMEOUT);

        // The staller: half a request head, then nothing.
        let staller = TcpStream::connect(addr).await.unwrap();
        let t0 = Instant::now();
        let (res, _) = staller
            .write_all(b"GET /bytes?n=10 HTTP/1.1\r\nHost: te".to_vec())
            .await;
        res.unwrap();
        // The resetter: half a request, then an RST.
        let mut resetter = std::net::TcpStream::connect(addr).unwrap();
        resetter
            .write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nhalf")
            .unwrap();

        // A well-behaved client is served while both misbehave.
        let stream = TcpStream::connect(addr).await.unwrap();
        let mut sender = http1_client(HyperIo::from(stream)).await;
        for i in 0..50 {
            send_checked(&mut sender, i % 99).await;
        }
        sleep(ms(20)).await;
        common::reset(resetter);

        // The staller's connection is closed by the timeout, not before.
        let (res, _) = staller.read(Vec::with_capacity(64)).await;
        let waited = t0.elapsed();
        match res {
            Ok(0) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
            other => panic!("the stalled connection got {other:?}, not closed"),
        }
        assert!(
            waited >= TIMEOUT,
            "closed after {waited:?}, before the timeout"
        );
        assert!(
            waited < Duration::from_secs(10),
            "closed only after {waited:?}"
        );

        // Still serving, on the kept-alive connection and on new ones.
        for i in 50..100 {
            send_checked(&mut sender, i % 99).await;
        }
        let stream = TcpStream::connect(addr).await.unwrap();
        let mut fresh = http1_client(HyperIo::from(stream)).await;
        send_checked(&mut fresh, 1).await;
        assert_eq!(seen.failed.get(), 2, "the staller and the resetter failed");
        // 101 served, and the resetter's, whose head was complete.
        assert_eq!(seen.requests.get(), 102);

        drop((sender, fresh, staller, server));
        for _ in 0..200 {
            if fd_count() == baseline {
                break;
            }
            sleep(ms(10)).await;
        }
        assert_eq!(fd_count(), baseline, "fds left: {:?}", fd_list());
    });
}

/// Connection tasks cancelled while hyper waits mid-request (a head cut
/// short, a body cut short) or between keep-alive requests close their
/// connections and leak no fd; the clients see the connection end.
#[test]
fn connection_tasks_cancelled_mid_request_leak_no_fd() {
    let _serial = serial();
    run_bounded(Duration::from_secs(60), async {
        let baseline = fd_count();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Rc::new(Seen::default());
        for round in 0..50 {
            let mut client = std::net::TcpStream::connect(addr).unwrap();
            let (stream, _) = listener.accept().await.unwrap();
            let conn = {
                let seen = seen.clone();
                spawn(async move {
                    let svc = hyper::service::service_fn(move |req| service(req, seen.clone()));
                    hyper::server::conn::http1::Builder::new()
                        .timer(HyperTimer)
                        .serve_connection(HyperIo::from(stream), svc)
                        .await
                })
            };
            client
                .write_all(b"GET /bytes?n=5&seed=1 HTTP/1.1\r\nHost: t\r\n\r\n")
                .unwrap();
            let part: &[u8] = match round % 3 {
                0 => b"GET /bytes?n=5 HTTP/1.1\r\nHo",
                1 => b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc",
                _ => b"",
            };
            client.write_all(part).unwrap();
            sleep(ms(2)).await;
            conn.cancel();
            // The client got the first response whole, then the end.
            let got = ringloop::to_thread(move || {
                client
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .unwrap();
                let mut all = Vec::new();
                client.read_to_end(&mut all).map(|_| all)
            })
            .await
            .unwrap()
            .expect("the client sees the connection end");
            let text = String::from_utf8_lossy(&got);
            assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text:?}");
            assert!(got.ends_with(&body_bytes(1, 5)), "{text:?}");
        }
        drop(listener);
        for _ in 0..200 {
            if fd_count() == baseline {
                break;
            }
            sleep(ms(10)).await;
        }
        assert_eq!(fd_count(), baseline, "fds left: {:?}", fd_list());
    });
}

// --- the examples -------------------------------------------------------

/// An example's binary, built with this test's features (`hyper`, and
/// `tls` when it is on).
fn build_example(name: &str) -> PathBuf {
    let features: &[&str] = if cfg!(feature = "tls") {
        &["hyper", "tls"]
    } else {
        &["hyper"]
    };
    common::example_binary(name, features)
}

/// Kills the child on drop so a failing test leaves no process behind.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One blocking HTTP/1.1 exchange (`Connection: close`): the response.
fn blocking_get(addr: SocketAddr, path: &str) -> io::Result<String> {
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// `http_server` with `args`, its output lines as they come, and the
/// address it listens on.
fn start_server(args: &[&str]) -> (Reap, std::sync::mpsc::Receiver<String>, SocketAddr) {
    let server_bin = build_example("http_server");
    let child = Command::new(&server_bin)
        .args(["--addr", "127.0.0.1:0"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start http_server");
    let mut child = Reap(child);
    let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
    let out = child.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = next_line(&lines, "first line");
    let addr: SocketAddr = first
        .strip_prefix("http server listening on ")
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .parse()
        .unwrap();
    (child, lines, addr)
}

fn next_line(lines: &std::sync::mpsc::Receiver<String>, what: &str) -> String {
    lines
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("http_server printed no {what}"))
}

/// Sends Ctrl-C; the server must exit with status 0 within 30 s. Returns
/// the rest of its output.
fn ctrl_c_and_wait(mut child: Reap, lines: std::sync::mpsc::Receiver<String>) -> Vec<String> {
    // SAFETY: kill(2) with the child's pid (alive: reaped only by `Reap`).
    assert_eq!(unsafe { libc::kill(child.0.id() as i32, libc::SIGINT) }, 0);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "http_server did not exit after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "http_server exited with {status}");
    // The rest of its output, up to the end (it exited: the pipe ends).
    lines.iter().collect()
}

/// Runs `http_client` with `args`: its stdout, or its stderr if it failed.
fn client(args: &[&str]) -> Result<String, String> {
    let out = Command::new(build_example("http_client"))
        .args(args)
        .output()
        .expect("run http_client");
    match out.status.success() {
        true => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
    }
}

#[test]
fn the_http_examples_serve_and_shut_down_gracefully_on_ctrl_c() {
    let _serial = serial();
    let file = build_example("http_server");
    let file_arg = file.to_str().unwrap();
    let (child, lines, addr) = start_server(&["--grace", "10", "--file", file_arg]);

    // Hello world, and a streamed file through the client example, over
    // HTTP/1.1 and HTTP/2.
    let hello = blocking_get(addr, "/").unwrap();
    assert!(hello.starts_with("HTTP/1.1 200 OK\r\n"), "{hello:?}");
    assert!(hello.ends_with("Hello, world!\n"), "{hello:?}");
    let size = std::fs::metadata(&file).unwrap().len();
    for h2 in [false, true] {
        let url = format!("http://{addr}/file");
        let args = if h2 {
            vec!["--http2", &url]
        } else {
            vec![&url[..]]
        };
        let text = client(&args).expect("http_client");
        let status = if h2 {
            "HTTP/2.0 200 OK"
        } else {
            "HTTP/1.1 200 OK"
        };
        assert!(text.starts_with(status), "{text}");
        assert!(text.contains(&format!("content-length: {size}")), "{text}");
        assert!(text.contains(&format!("body: {size} bytes")), "{text}");
    }

    // A request in flight when Ctrl-C comes is completed.
    let slow = std::thread::spawn(move || blocking_get(addr, "/slow?ms=500"));
    std::thread::sleep(Duration::from_millis(150));
    let rest = ctrl_c_and_wait(child, lines);
    let slow = slow.join().unwrap().expect("the slow request completes");
    assert!(slow.starts_with("HTTP/1.1 200 OK\r\n"), "{slow:?}");
    assert!(slow.ends_with("slept 500 ms\n"), "{slow:?}");
    assert!(
        rest.iter()
            .any(|l| l == "shutting down: 1 connections open"),
        "{rest:?}"
    );
    assert_eq!(rest.last().map(String::as_str), Some("bye"), "{rest:?}");
    // Stopped accepting: nobody listens there any more.
    let e = std::net::TcpStream::connect(addr).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
}

/// `http_server --cores 2`: core 0 hands connections out round-robin (so
/// one after another they alternate), and one Ctrl-C shuts every core
/// down gracefully.
#[test]
fn the_http_server_example_on_two_cores() {
    let _serial = serial();
    let (child, lines, addr) = start_server(&["--cores", "2", "--grace", "10"]);
    for _ in 0..8 {
        let hello = blocking_get(addr, "/").unwrap();
        assert!(hello.ends_with("Hello, world!\n"), "{hello:?}");
    }
    let slow = std::thread::spawn(move || blocking_get(addr, "/slow?ms=300"));
    std::thread::sleep(Duration::from_millis(100));
    let rest = ctrl_c_and_wait(child, lines);
    let slow = slow.join().unwrap().expect("the slow request completes");
    assert!(slow.ends_with("slept 300 ms\n"), "{slow:?}");
    let opened = |core: usize| {
        rest.iter()
            .filter(|l| l.starts_with(&format!("[core {core}] opened")))
            .count()
    };
    assert_eq!((opened(0), opened(1)), (5, 4), "{rest:?}");
    for core in 0..2 {
        assert!(
            rest.iter()
                .any(|l| l.starts_with(&format!("[core {core}] shutting down"))),
            "{rest:?}"
        );
    }
    assert_eq!(rest.last().map(String::as_str), Some("bye"), "{rest:?}");
}

/// `HyperTimer`: sleeps end at their deadline, never before; `reset`
/// moves a sleep's deadline in place, earlier or later; a sleep of
/// another timer is replaced by one of ours.
#[test]
fn the_timer_sleeps_and_resets_in_place() {
    use hyper::rt::{Sleep, Timer};
    use std::pin::Pin;

    struct Foreign;
    impl std::future::Future for Foreign {
        type Output = ();
        fn poll(self: Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<()> {
            std::task::Poll::Pending
        }
    }
    impl Sleep for Foreign {}

    let _serial = serial();
    run_bounded(Duration::from_secs(10), async {
        let timer = HyperTimer;
        let t0 = Instant::now();
        timer.sleep(ms(5)).await;
        assert!(t0.elapsed() >= ms(5));

        // Reset earlier: a sleep of an hour ends after 5 ms.
        let mut s = timer.sleep(Duration::from_secs(3600));
        let t0 = Instant::now();
        let addr_before = &*s as *const dyn Sleep as *const u8;
        timer.reset(&mut s, Instant::now() + ms(5));
        assert_eq!(
            addr_before, &*s as *const dyn Sleep as *const u8,
            "reset in place"
        );
        s.as_mut().await;
        let took = t0.elapsed();
        assert!(took >= ms(5) && took < Duration::from_secs(5), "{took:?}");

        // Reset later, after it was polled once: it waits for the new one.
        let mut s = timer.sleep_until(Instant::now() + ms(1));
        assert!(futures_util::poll!(s.as_mut()).is_pending());
        let t0 = Instant::now();
        timer.reset(&mut s, Instant::now() + ms(30));
        s.as_mut().await;
        assert!(t0.elapsed() >= ms(30));

        // Another timer's sleep is replaced by ours.
        let mut s: Pin<Box<dyn Sleep>> = Box::pin(Foreign);
        timer.reset(&mut s, Instant::now() + ms(2));
        assert!(
            s.as_mut()
                .downcast_mut_pin::<ringloop::hyper::HyperSleep>()
                .is_some()
        );
        s.as_mut().await;
    });
}

/// hyper over [`ringloop::tls::TlsStream`] (`--features hyper,tls`).
#[cfg(feature = "tls")]
mod https {
    use super::*;
    use std::path::Path;
    use std::sync::Arc;

    use ringloop::tls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    use ringloop::tls::{ServerName, TlsAcceptor, TlsConnector, TlsStream, rustls};

    /// A server offering `h2` and `http/1.1`, and a client trusting it
    /// that offers `alpn`.
    fn configs(alpn: &[&[u8]]) -> (TlsAcceptor, TlsConnector) {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert = made.cert.der().clone();
        let key = PrivatePkcs8KeyDer::from(made.signing_key.serialize_der());
        let mut server = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], PrivateKeyDer::Pkcs8(key))
            .unwrap();
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert).unwrap();
        let mut client = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        client.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        (
            TlsAcceptor::new(Arc::new(server)),
            TlsConnector::new(Arc::new(client)),
        )
    }

    /// Accepts one TLS connection and serves it with the protocol ALPN
    /// chose; returns that protocol.
    fn serve_one_https(
        listener: TcpListener,
        acceptor: TlsAcceptor,
        seen: Rc<Seen>,
    ) -> ringloop::Task<Vec<u8>> {
        spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let tls = acceptor.accept(tcp).await.expect("server handshake");
            let alpn = tls.alpn_protocol().unwrap_or_default().to_vec();
            let svc = hyper::service::service_fn(move |req| service(req, seen.clone()));
            let res = if alpn == b"h2" {
                hyper::server::conn::http2::Builder::new(HyperExecutor)
                    .timer(HyperTimer)
                    .max_concurrent_streams(1000)
                    .serve_connection(HyperIo::from(tls), svc)
                    .await
            } else {
                hyper::server::conn::http1::Builder::new()
                    .timer(HyperTimer)
                    .serve_connection(HyperIo::from(tls), svc)
                    .await
            };
            // The client closes once it has its last response, without
            // waiting for the server's close_notify; the server's reply to
            // its close_notify may then meet the client's RST (a race the
            // kernel decides). Anything else is a failure.
            if let Err(e) = res {
                let gone = std::error::Error::source(&e)
                    .and_then(|s| s.downcast_ref::<io::Error>())
                    .is_some_and(|e| {
                        matches!(
                            e.kind(),
                            io::ErrorKind::NotConnected
                                | io::ErrorKind::ConnectionReset
                                | io::ErrorKind::BrokenPipe
                        )
                    });
                assert!(gone, "server connection failed: {e:?}");
            }
            alpn
        })
    }

    async fn connect(addr: SocketAddr, connector: &TlsConnector) -> HyperIo<TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(addr).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        HyperIo::from(
            connector
                .connect(name, tcp)
                .await
                .expect("client handshake"),
        )
    }

    #[test]
    fn https_keep_alive_requests_byte_exact() {
        let _serial = serial();
        // `run` listens for Ctrl-C: the process's first listening loop
        // leases a signal eventfd, which stays open for later loops by
        // design (src/signal): count from after one.
        ringloop::run(async {}).unwrap();
        let before = fd_count();
        run_bounded(Duration::from_secs(120), async {
            let (acceptor, connector) = configs(&[b"http/1.1"]);
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let seen = Rc::new(Seen::default());
            let server = serve_one_https(listener, acceptor, seen.clone());
            let mut sender = http1_client(connect(addr, &connector).await).await;
            // Every 100th body is 1 MiB: many TLS records, both ways.
            for i in 0..300 {
                send_checked(&mut sender, i).await;
            }
            drop(sender);
            assert_eq!(server.await.unwrap(), b"http/1.1");
            assert_eq!(seen.requests.get(), 300);
        });
        assert_eq!(fd_count(), before, "fds left behind: {:?}", fd_list());
    }

    #[test]
    fn https_h2_by_alpn_with_a_hundred_concurrent_streams() {
        let _serial = serial();
        run_bounded(Duration::from_secs(60), async {
            let (acceptor, connector) = configs(&[b"h2", b"http/1.1"]);
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let seen = Rc::new(Seen::default());
            seen.hold_for.set(100);
            let server = serve_one_https(listener, acceptor, seen.clone());
            h2_streams_in_flight_at_once(connect(addr, &connector).await, 100, &seen).await;
            assert_eq!(server.await.unwrap(), b"h2", "the server's first choice");
        });
    }

    /// `http_server --tls` with its self-signed certificate, and
    /// `http_client` over https: HTTP/2 by ALPN, HTTP/1.1 when the client
    /// offers only that, a clear error without the CA, and the certificate
    /// file gone after Ctrl-C.
    #[test]
    fn the_http_examples_over_tls() {
        let _serial = serial();
        let (child, lines, addr) = start_server(&["--tls", "--quiet"]);
        let cert_line = next_line(&lines, "certificate line");
        let pem = cert_line
            .strip_prefix("self-signed certificate for localhost and 127.0.0.1: ")
            .unwrap_or_else(|| panic!("unexpected line {cert_line:?}"))
            .to_owned();
        assert!(Path::new(&pem).exists());
        let url = format!("https://localhost:{}/", addr.port());
        for (flags, version) in [
            (&[][..], "HTTP/2.0 200 OK"),
            (&["--http2"][..], "HTTP/2.0 200 OK"),
            (&["--http1"][..], "HTTP/1.1 200 OK"),
        ] {
            let mut args = flags.to_vec();
            args.extend(["--cacert", &pem, &url]);
            let text = client(&args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            assert!(text.starts_with(version), "{args:?}: {text}");
            assert!(text.contains("body: 14 bytes"), "{args:?}: {text}");
        }
        // Without the CA: the certificate is refused, and said so.
        let err = client(&[&url]).expect_err("an unknown CA must fail");
        assert!(
            err.contains("certificate") || err.contains("CA"),
            "unclear error: {err}"
        );
        // Plain HTTP on the TLS port: no hang, an error.
        let plain = blocking_get(addr, "/");
        assert!(
            !plain.as_deref().is_ok_and(|r| r.contains("200 OK")),
            "{plain:?}"
        );
        let rest = ctrl_c_and_wait(child, lines);
        assert_eq!(rest.last().map(String::as_str), Some("bye"), "{rest:?}");
        assert!(!Path::new(&pem).exists(), "{pem} left behind");
    }
}
