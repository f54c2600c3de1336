//! What each connection distribution of a 2-core server costs and how it
//! spreads connections under load: new connections per second, each one
//! connect + 8-byte echo + close, from `--clients` blocking client threads,
//! against `ringloop::Cores::new(2)` with a `CoresListener` in each mode,
//! and against tokio's multi-thread runtime (2 workers, one listener, a
//! task per connection) as the twin a tokio user would write.
//!
//! ```sh
//! cargo bench --bench cores_accept -- [--rounds 10] [--secs 1] [--clients 4] [--tsv FILE]
//! ```
//!
//! Rounds alternate the servers (the order reversed every other round, as
//! `shared/BENCHMARKING.md` asks), each run a fresh server in this process
//! for `--secs` seconds; figures are quoted as the median of the per-round
//! ratios to `reuseport` with their interquartile range, the absolute
//! connections/s beside them, and the busiest core's share of the
//! connections (tokio has no per-core count: a connection's task may move).
//! Clients close with `SO_LINGER` 0 (a reset, no `TIME_WAIT`), so a run
//! cannot exhaust the ephemeral ports. Every echoed byte is checked.

use std::cell::Cell;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::select;
use ringloop::Cores;
use ringloop::net::{CoresListener, Distribution};
use ringloop::sync::cross;

struct Opts {
    rounds: usize,
    secs: f64,
    clients: usize,
    tsv: Option<String>,
}

fn opts() -> Opts {
    let mut o = Opts {
        rounds: 10,
        secs: 1.0,
        clients: 4,
        tsv: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut v = || args.next().expect("a value after the flag");
        match a.as_str() {
            "--rounds" => o.rounds = v().parse().expect("--rounds N"),
            "--secs" => o.secs = v().parse().expect("--secs S"),
            "--clients" => o.clients = v().parse().expect("--clients N"),
            "--tsv" => o.tsv = Some(v()),
            // `cargo bench` passes `--bench`.
            _ => {}
        }
    }
    o
}

/// One run's outcome: connections per second and per-core counts.
struct Run {
    rate: f64,
    per_core: Vec<u64>,
}

/// Connect + echo 8 bytes + reset-close, as fast as possible, on
/// `clients` threads for `secs`; returns the connections made.
fn load(addr: SocketAddr, clients: usize, secs: f64) -> (u64, Duration) {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (stop, done) = (stop.clone(), done.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let mut c = std::net::TcpStream::connect(addr).expect("connect");
                    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                    c.write_all(&n.to_le_bytes()).unwrap();
                    let mut back = [0u8; 8];
                    c.read_exact(&mut back).expect("echo");
                    assert_eq!(u64::from_le_bytes(back), n, "echoed bytes differ");
                    linger_zero(&c);
                    n += 1;
                }
                done.fetch_add(n, Ordering::Relaxed);
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    threads.into_iter().for_each(|t| t.join().unwrap());
    (done.load(Ordering::Relaxed), t0.elapsed())
}

fn linger_zero(c: &std::net::TcpStream) {
    let lg = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `lg` is a valid `linger` for the call and the size passed is
    // its size; `c` is an open socket.
    let r = unsafe {
        libc::setsockopt(
            c.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&lg as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "SO_LINGER: {}", std::io::Error::last_os_error());
}

async fn echo8(s: ringloop::net::TcpStream) {
    let (r, buf) = s.read_exact(Vec::with_capacity(8)).await;
    if r.is_ok() {
        let _ = s.write_all(buf).await;
    }
}

fn ringloop_run(how: Distribution, o: &Opts) -> Run {
    let listener = CoresListener::bind("127.0.0.1:0", 2, how).unwrap();
    let addr = listener.local_addr();
    let (stops, rxs): (Vec<_>, Vec<_>) = (0..2).map(|_| cross::channel::<()>(1).unwrap()).unzip();
    let rxs = Arc::new(Mutex::new(rxs.into_iter().map(Some).collect::<Vec<_>>()));
    let server = std::thread::spawn(move || {
        Cores::new(2)
            .run(move |core| {
                let listener = listener.clone();
                let mut stop = rxs.lock().unwrap()[core.index()].take().unwrap();
                async move {
                    let mine = listener.for_core(&core).unwrap();
                    let accepted = Cell::new(0u64);
                    let serve = async {
                        loop {
                            let (s, _) = mine.accept().await.unwrap();
                            accepted.set(accepted.get() + 1);
                            ringloop::spawn(echo8(s)).detach();
                        }
                    };
                    select(pin!(serve), pin!(stop.recv())).await;
                    accepted.get()
                }
            })
            .unwrap()
    });
    let (n, elapsed) = load(addr, o.clients, o.secs);
    stops.iter().for_each(|s| s.send_blocking(()).unwrap());
    let per_core = server.join().unwrap();
    assert_eq!(
        per_core.iter().sum::<u64>(),
        n,
        "every connection counted once"
    );
    Run {
        rate: n as f64 / elapsed.as_secs_f64(),
        per_core,
    }
}

fn tokio_run(o: &Opts) -> Run {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let server = rt.spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0u8; 8];
                if s.read_exact(&mut buf).await.is_ok() {
                    let _ = s.write_all(&buf).await;
                }
            });
        }
    });
    let (n, elapsed) = load(addr, o.clients, o.secs);
    server.abort();
    drop(rt);
    Run {
        rate: n as f64 / elapsed.as_secs_f64(),
        per_core: Vec::new(),
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn quartiles(v: &mut [f64]) -> (f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    (v[v.len() / 4], v[(3 * v.len()) / 4])
}

fn main() {
    let o = opts();
    let names = ["reuseport", "round-robin", "shared", "tokio-mt2"];
    let mut runs: Vec<Vec<Run>> = names.iter().map(|_| Vec::new()).collect();
    let mut tsv = String::from("round\tserver\tconns_per_s\tper_core\n");
    for round in 0..o.rounds {
        let mut order: Vec<usize> = (0..names.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let run = match names[i] {
                "tokio-mt2" => tokio_run(&o),
                name => ringloop_run(name.parse().unwrap(), &o),
            };
            let pc: Vec<String> = run.per_core.iter().map(u64::to_string).collect();
            tsv.push_str(&format!(
                "{round}\t{}\t{:.0}\t{}\n",
                names[i],
                run.rate,
                pc.join(",")
            ));
            runs[i].push(run);
        }
        eprintln!("round {round} done");
    }
    println!(
        "{:<12} {:>12} {:>22} {:>24}",
        "server", "conns/s", "ratio to reuseport", "busiest core (median, max)"
    );
    for (i, name) in names.iter().enumerate() {
        let mut rates: Vec<f64> = runs[i].iter().map(|r| r.rate).collect();
        let mut ratios: Vec<f64> = runs[i]
            .iter()
            .zip(&runs[0])
            .map(|(r, base)| r.rate / base.rate)
            .collect();
        let (q1, q3) = quartiles(&mut ratios);
        let mut busiest: Vec<f64> = runs[i]
            .iter()
            .filter(|r| !r.per_core.is_empty())
            .map(|r| {
                let total: u64 = r.per_core.iter().sum();
                100.0 * *r.per_core.iter().max().unwrap() as f64 / total.max(1) as f64
            })
            .collect();
        let spread = if busiest.is_empty() {
            "-".to_owned()
        } else {
            let max = busiest.iter().copied().fold(0.0, f64::max);
            format!("{:.1} %, {:.1} %", median(&mut busiest), max)
        };
        println!(
            "{name:<12} {:>12.0} {:>10.3} ({q1:.3}-{q3:.3}) {spread:>24}",
            median(&mut rates),
            median(&mut ratios)
        );
    }
    if let Some(path) = &o.tsv {
        std::fs::write(path, tsv).unwrap();
    }
}
