//! A load generator for the echo server: `--conns` connections each send a
//! `--size`-byte message, wait for it to come back, check every byte, and
//! repeat for `--secs` seconds; then it prints msgs/s and latency
//! percentiles.
//!
//! ```sh
//! cargo run --release --example echo_server &
//! cargo run --release --example echo_client -- --addr 127.0.0.1:7878 --conns 100 --size 64 --secs 5
//! ```

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use ringloop::net::TcpStream;

struct Args {
    addr: SocketAddr,
    conns: usize,
    size: usize,
    secs: f64,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        addr: "127.0.0.1:7878".parse().expect("literal"),
        conns: 16,
        size: 64,
        secs: 5.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().ok_or(format!("{k} needs a value"));
        match k.as_str() {
            "--addr" => a.addr = v()?.parse().map_err(|e| format!("--addr: {e}"))?,
            "--conns" => a.conns = v()?.parse().map_err(|e| format!("--conns: {e}"))?,
            "--size" => a.size = v()?.parse().map_err(|e| format!("--size: {e}"))?,
            "--secs" => a.secs = v()?.parse().map_err(|e| format!("--secs: {e}"))?,
            "-h" | "--help" => {
                println!("usage: echo_client [--addr A] [--conns N] [--size BYTES] [--secs S]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if a.conns == 0 || a.size == 0 {
        return Err("--conns and --size must be at least 1".into());
    }
    Ok(a)
}

async fn client(
    id: usize,
    a: Rc<Args>,
    until: Instant,
    lat: Rc<RefCell<Vec<u32>>>,
) -> io::Result<u64> {
    let s = TcpStream::connect(a.addr).await?;
    s.set_nodelay(true)?;
    let mut out: Vec<u8> = (0..a.size).map(|i| (i * 31 + id) as u8).collect();
    let mut inb = Vec::with_capacity(a.size);
    let mut n = 0u64;
    while Instant::now() < until {
        // Vary the payload per message so a stale echo cannot pass.
        out[0] = n as u8;
        let t0 = Instant::now();
        let (res, o) = s.write_all(out).await;
        res?;
        out = o;
        inb.clear();
        let (res, i) = s.read_exact(inb).await;
        res?;
        inb = i;
        if inb != out {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("conn {id}: echo mismatch at message {n}"),
            ));
        }
        lat.borrow_mut()
            .push(t0.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
        n += 1;
    }
    Ok(n)
}

fn main() -> io::Result<()> {
    let a = Rc::new(parse().map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?);
    ringloop::run(async move {
        let lat = Rc::new(RefCell::new(Vec::new()));
        let t0 = Instant::now();
        let until = t0 + Duration::from_secs_f64(a.secs);
        let tasks: Vec<_> = (0..a.conns)
            .map(|i| ringloop::spawn(client(i, a.clone(), until, lat.clone())))
            .collect();
        let mut msgs = 0;
        for t in tasks {
            msgs += t.await.map_err(io::Error::from)??;
        }
        let secs = t0.elapsed().as_secs_f64();
        let mut l = lat.borrow_mut();
        l.sort_unstable();
        let pct = |p: f64| {
            l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
                .copied()
                .unwrap_or(0)
        };
        println!(
            "{} conns x {} B: {msgs} msgs in {secs:.2} s = {:.0} msgs/s, p50 {} us, p99 {} us (every byte checked)",
            a.conns,
            a.size,
            msgs as f64 / secs,
            pct(0.50),
            pct(0.99)
        );
        Ok(())
    })?
}
