//! A client for the echo server, in two modes.
//!
//! Lines: each argument is sent as a line and its echo printed; `-` sends
//! the lines typed on (or piped into) standard input instead. It exits 0
//! once every line came back, and fails if one did not (within 10 s).
//!
//! ```sh
//! cargo run --release --example echo_server &
//! cargo run --release --example echo_client -- hello world
//! cargo run --release --example echo_client -- -      # type lines, Ctrl-D to end
//! ```
//!
//! Load: `--conns` connections each send a `--size`-byte message, wait for
//! it to come back, check every byte, and repeat for `--secs` seconds; then
//! it prints msgs/s and latency percentiles.
//!
//! ```sh
//! cargo run --release --example echo_client -- --addr 127.0.0.1:7878 --conns 100 --size 64 --secs 5
//! ```

use std::cell::RefCell;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use ringloop::net::TcpStream;

struct Args {
    addr: SocketAddr,
    conns: usize,
    size: usize,
    secs: f64,
    /// Line mode: what to send, one line each.
    lines: Option<Lines>,
}

enum Lines {
    Args(Vec<String>),
    Stdin,
}

const USAGE: &str = "usage: echo_client [--addr A] LINE...   (send each LINE, print its echo)\n       \
                     echo_client [--addr A] -         (the same for the lines of stdin)\n       \
                     echo_client [--addr A] [--conns N] [--size BYTES] [--secs S]   (load)";

/// How long a line's echo may take before the client gives up.
const ECHO_TIMEOUT: Duration = Duration::from_secs(10);

fn parse() -> Result<Args, String> {
    let mut a = Args {
        addr: "127.0.0.1:7878".parse().expect("literal"),
        conns: 16,
        size: 64,
        secs: 5.0,
        lines: None,
    };
    let (mut words, mut stdin, mut load) = (Vec::new(), false, false);
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().ok_or(format!("{k} needs a value"));
        match k.as_str() {
            "--addr" => a.addr = v()?.parse().map_err(|e| format!("--addr: {e}"))?,
            "--conns" => a.conns = v()?.parse().map_err(|e| format!("--conns: {e}"))?,
            "--size" => a.size = v()?.parse().map_err(|e| format!("--size: {e}"))?,
            "--secs" => a.secs = v()?.parse().map_err(|e| format!("--secs: {e}"))?,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            "-" => stdin = true,
            other if other.starts_with("--") => return Err(format!("unknown option {other:?}")),
            line => words.push(line.to_owned()),
        }
        load |= matches!(k.as_str(), "--conns" | "--size" | "--secs");
    }
    if (stdin || !words.is_empty()) && load {
        return Err("lines to send and --conns/--size/--secs do not mix".into());
    }
    if stdin && !words.is_empty() {
        return Err("give lines as arguments or `-` for stdin, not both".into());
    }
    if stdin {
        a.lines = Some(Lines::Stdin);
    } else if !words.is_empty() {
        a.lines = Some(Lines::Args(words));
    }
    if a.conns == 0 || a.size == 0 {
        return Err("--conns and --size must be at least 1".into());
    }
    Ok(a)
}

/// One line from standard input (with its newline), or `None` at its end.
/// Read on the blocking pool: a read from a terminal would block the loop.
async fn stdin_line() -> io::Result<Option<String>> {
    ringloop::to_thread(|| {
        let mut line = String::new();
        let n = io::stdin().read_line(&mut line)?;
        Ok((n > 0).then_some(line))
    })
    .await
    .map_err(io::Error::from)?
}

/// Line mode: sends each line, prints each echo as it comes back.
async fn talk(addr: SocketAddr, lines: Lines) -> io::Result<()> {
    let (mut reader, writer) = ringloop::io::open_connection(addr)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("connect to {addr}: {e}")))?;
    let mut args = match lines {
        Lines::Args(words) => Some(words.into_iter()),
        Lines::Stdin => None,
    };
    let mut stdout = io::stdout();
    for n in 1.. {
        let line = match args.as_mut() {
            Some(words) => words.next(),
            None => stdin_line().await?,
        };
        let Some(mut line) = line else { break };
        if !line.ends_with('\n') {
            line.push('\n');
        }
        writer.write(line.as_bytes())?;
        writer.drain().await?;
        let echo = ringloop::wait_for(reader.readline(), ECHO_TIMEOUT)
            .await
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("line {n}: no echo from {addr} within {ECHO_TIMEOUT:?}"),
                )
            })?
            .map_err(|e| {
                let e = io::Error::from(e);
                io::Error::new(e.kind(), format!("line {n}: {e}"))
            })?;
        if echo != line.as_bytes() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "line {n}: sent {line:?}, got back {:?}{}",
                    String::from_utf8_lossy(&echo),
                    if reader.at_eof() {
                        " (the server closed the connection)"
                    } else {
                        ""
                    }
                ),
            ));
        }
        stdout.write_all(&echo)?;
        stdout.flush()?;
    }
    writer.close();
    writer.wait_closed().await
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
    let mut a = parse().map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    if let Some(lines) = a.lines.take() {
        return ringloop::run(talk(a.addr, lines))?;
    }
    let a = Rc::new(a);
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
