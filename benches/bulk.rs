//! Bulk transfer over loopback, one connection: plain `write_all` against
//! `write_all_zc` (`IORING_OP_SEND_ZC`), in pairs inside one process.
//!
//! A ringloop loop on CPU 0 writes messages of SIZE bytes (one buffer,
//! reused) for SECS seconds to a std thread on CPU 1 that reads them in
//! 1 MiB reads and checks every byte against the pattern. Each pair runs
//! both modes back to back on a fresh connection, the order flipped every
//! other pair, and prints one line per run:
//!
//! `RUN size=… mode=plain|zc mbps=… sender_cpu_us_per_mb=…
//! total_cpu_us_per_mb=…`
//!
//! then, per size, the median and interquartile range of the per-pair
//! ratios zc/plain. Sender CPU is the loop thread's (`RUSAGE_THREAD`:
//! with loopback it includes the receive-side TCP work done in its
//! softirq); total CPU is the process's (both threads and any io-wq
//! worker).
//!
//! Environment: `BULK_SIZES` (bytes, comma-separated; default
//! `4096,65536,1048576`), `BULK_PAIRS` (default 10), `BULK_SECS` (default
//! 1.0), and `RINGLOOP_BACKEND` as everywhere. Run with
//! `cargo bench --bench bulk`; with no `--bench` argument (as
//! `cargo test --benches` runs it) it makes one short pair at 64 KiB.

use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener as StdListener};
use std::time::{Duration, Instant};

use ringloop::net::TcpStream;

fn pin(cpu: usize) {
    // SAFETY: `set` is a plain bitmask filled by CPU_ZERO/CPU_SET with a
    // CPU number below its size; sched_setaffinity only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// CPU time (user + system) of `who` (`RUSAGE_THREAD` or `RUSAGE_SELF`).
fn cpu(who: i32) -> Duration {
    // SAFETY: getrusage writes one `rusage` into the zeroed value it is
    // given and reads nothing else.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(who, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn pattern(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i % 251) as u8).collect()
}

/// Reads to EOF, checking that the stream is `size`-byte copies of the
/// pattern; returns the bytes read.
fn receive(listener: StdListener, size: usize) -> io::Result<u64> {
    pin(1);
    let (mut s, _) = listener.accept()?;
    let expect = pattern(size);
    let mut buf = vec![0u8; 1 << 20];
    let mut total: u64 = 0;
    loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Ok(total);
        }
        let mut done = 0;
        while done < n {
            let at = ((total + done as u64) % size as u64) as usize;
            let len = (size - at).min(n - done);
            if buf[done..done + len] != expect[at..at + len] {
                return Err(io::Error::other(format!(
                    "byte mismatch at stream offset {}",
                    total + done as u64
                )));
            }
            done += len;
        }
        total += n as u64;
    }
}

struct Run {
    mbps: f64,
    sender_us_per_mb: f64,
    total_us_per_mb: f64,
}

fn one_run(size: usize, zc: bool, secs: f64) -> io::Result<Run> {
    let listener = StdListener::bind("127.0.0.1:0")?;
    let addr: SocketAddr = listener.local_addr()?;
    let reader = std::thread::spawn(move || receive(listener, size));
    pin(0);
    let (sent, elapsed, sender_cpu, total_cpu) = ringloop::run(async move {
        let stream = TcpStream::connect(addr).await?;
        let mut buf = pattern(size);
        let (t0, c0, p0) = (
            Instant::now(),
            cpu(libc::RUSAGE_THREAD),
            cpu(libc::RUSAGE_SELF),
        );
        let deadline = t0 + Duration::from_secs_f64(secs);
        let mut sent: u64 = 0;
        while Instant::now() < deadline {
            let (res, b) = if zc {
                stream.write_all_zc(buf).await
            } else {
                stream.write_all(buf).await
            };
            res?;
            buf = b;
            sent += size as u64;
        }
        drop(stream);
        Ok::<_, io::Error>((
            sent,
            t0.elapsed(),
            cpu(libc::RUSAGE_THREAD) - c0,
            cpu(libc::RUSAGE_SELF) - p0,
        ))
    })??;
    let got = reader.join().expect("reader thread panicked")?;
    if got != sent {
        return Err(io::Error::other(format!(
            "sent {sent} bytes, received {got}"
        )));
    }
    let mb = sent as f64 / 1e6;
    Ok(Run {
        mbps: mb / elapsed.as_secs_f64(),
        sender_us_per_mb: sender_cpu.as_secs_f64() * 1e6 / mb,
        total_us_per_mb: total_cpu.as_secs_f64() * 1e6 / mb,
    })
}

fn quartiles(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.25), at(0.75))
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> io::Result<()> {
    let full = std::env::args().any(|a| a == "--bench");
    let sizes: Vec<usize> = if full {
        std::env::var("BULK_SIZES")
            .unwrap_or_else(|_| "4096,65536,1048576".to_owned())
            .split(',')
            .map(|s| {
                s.trim()
                    .parse()
                    .map_err(|e| io::Error::other(format!("BULK_SIZES: {e}")))
            })
            .collect::<io::Result<_>>()?
    } else {
        vec![65536]
    };
    let pairs = if full {
        env_or("BULK_PAIRS", 10usize)
    } else {
        1
    };
    let secs = if full {
        env_or("BULK_SECS", 1.0f64)
    } else {
        0.1
    };
    for &size in &sizes {
        let mut ratios = (Vec::new(), Vec::new(), Vec::new());
        for pair in 0..pairs {
            let zc_first = pair % 2 == 1;
            let mut runs = [None, None];
            for zc in [zc_first, !zc_first] {
                let r = one_run(size, zc, secs)?;
                println!(
                    "RUN size={size} mode={} mbps={:.1} sender_cpu_us_per_mb={:.1} total_cpu_us_per_mb={:.1}",
                    if zc { "zc" } else { "plain" },
                    r.mbps,
                    r.sender_us_per_mb,
                    r.total_us_per_mb
                );
                runs[usize::from(zc)] = Some(r);
            }
            let [Some(plain), Some(zc)] = runs else {
                unreachable!("both modes ran")
            };
            ratios.0.push(zc.mbps / plain.mbps);
            ratios.1.push(zc.sender_us_per_mb / plain.sender_us_per_mb);
            ratios.2.push(zc.total_us_per_mb / plain.total_us_per_mb);
        }
        for (what, v) in [
            ("mbps", ratios.0),
            ("sender_cpu_per_mb", ratios.1),
            ("total_cpu_per_mb", ratios.2),
        ] {
            let (m, lo, hi) = quartiles(v);
            println!(
                "RATIO size={size} zc/plain {what}: median {m:.3} (IQR {lo:.3}-{hi:.3}, {pairs} pairs)"
            );
        }
    }
    Ok(())
}
