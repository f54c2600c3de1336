//! Copies a file with several reads and writes in flight at once.
//!
//! ```text
//! cargo run --release --example file_copy -- SRC DST
//! ```
//!
//! Four workers (tasks) share the source and destination [`File`]s. Each
//! owns one 256 KiB buffer and repeatedly claims the next chunk of the
//! source: `read_exact_at` it, then `write_all_at` the same buffer at the
//! same offset in the destination. Reads and writes are positional, so
//! chunks may finish in any order; up to four are in the kernel at once.

use std::cell::Cell;
use std::io;
use std::rc::Rc;
use std::time::Instant;

use ringloop::fs::{File, OpenOptions};
use ringloop::io::IoBuf;

const WORKERS: usize = 4;
const CHUNK: usize = 256 << 10;

/// Copies chunks claimed from `next` until the source is done; returns the
/// bytes copied.
async fn worker(src: Rc<File>, dst: Rc<File>, next: Rc<Cell<u64>>, len: u64) -> io::Result<u64> {
    let mut buf = Vec::with_capacity(CHUNK);
    let mut copied = 0;
    loop {
        let offset = next.get();
        if offset >= len {
            return Ok(copied);
        }
        let want = (len - offset).min(CHUNK as u64) as usize;
        next.set(offset + want as u64);
        buf.clear();
        let (res, slice) = src.read_exact_at(buf.slice(..want), offset).await;
        res?;
        let (res, back) = dst.write_all_at(slice.into_inner(), offset).await;
        res?;
        buf = back;
        copied += want as u64;
    }
}

async fn copy(src_path: &str, dst_path: &str) -> io::Result<u64> {
    let src = File::open(src_path).await?;
    let len = src.metadata().await?.len();
    let dst = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(dst_path)
        .await?;
    let (src, dst) = (Rc::new(src), Rc::new(dst));
    let next = Rc::new(Cell::new(0));
    let workers = (0..WORKERS).map(|_| worker(src.clone(), dst.clone(), next.clone(), len));
    let copied: u64 = ringloop::gather(workers)
        .await
        .map_err(|e| io::Error::other(e.to_string()))?
        .into_iter()
        .sum::<io::Result<u64>>()?;
    // Every worker is done: these are the last references.
    let dst = Rc::try_unwrap(dst).expect("workers finished");
    dst.close().await?;
    Ok(copied)
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [src, dst] = args.as_slice() else {
        eprintln!("usage: file_copy SRC DST");
        std::process::exit(2);
    };
    let t0 = Instant::now();
    let copied = match ringloop::run(copy(src, dst))? {
        Ok(n) => n,
        Err(e) => {
            eprintln!("file_copy: {e}");
            std::process::exit(1);
        }
    };
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "copied {copied} bytes in {:.3} s: {:.1} MB/s ({WORKERS} x {} KiB in flight)",
        secs,
        copied as f64 / 1e6 / secs,
        CHUNK >> 10
    );
    Ok(())
}
