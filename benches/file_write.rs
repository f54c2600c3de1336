//! `file_write_fsync`: a 4 KiB write followed by `fsync`, one at a time
//! (queue depth 1), ringloop beside tokio and beside plain threads.
//!
//! ```text
//! cargo bench --bench file_write
//! ```
//!
//! The file (`$CARGO_TARGET_DIR/file_write.bin`, default `target/`, 256 KiB)
//! is made on first use and removed when the bench ends. A pass writes
//! blocks 0 to 63 in turn, each followed by an `fsync` that must return
//! before the next write starts; every block carries the pass number and its
//! block number, checked after each pass (outside the timing) by reading the
//! file back. Criterion's element throughput is write+fsync pairs per
//! second.
//!
//! Rows:
//!
//! - `ringloop`: `File::write_all_at` then `File::sync_all`.
//! - `tokio_fs`: `tokio::fs::File`, `seek` + `write_all` + `sync_all` (the
//!   write goes to tokio's blocking pool in the background; `sync_all`
//!   waits for it, then runs `fsync` on the pool).
//! - `tokio_pwrite`: one `spawn_blocking` job per pair (`pwrite` + `fsync`).
//! - `inline_pwrite`: `pwrite` + `fsync` on the calling thread, no runtime.
//! - `pool_pwrite_batch64`: one `spawn_blocking` job doing the pass's 64
//!   pairs, the best plain thread-pool form.
//!
//! Each row also counts the process's CPU time (`getrusage`, all threads)
//! over its timed passes (warm-up passes included; the read-back checks
//! between passes excluded); at the end the bench prints one line per row:
//! `cpu<TAB><id><TAB><cpu ns per pair><TAB><wall ns per pair><TAB><pairs>`.

use std::cell::{Cell, OnceCell, RefCell};
use std::io::SeekFrom;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use criterion::{Bencher, Criterion, Throughput, criterion_group};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

const BLOCK: usize = 4096;
/// Write + fsync pairs per pass.
const OPS: usize = 64;

static PATH: OnceLock<PathBuf> = OnceLock::new();

/// The file written, made (`OPS` blocks of zeros) on first use.
fn path() -> &'static Path {
    PATH.get_or_init(|| {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
        std::fs::create_dir_all(&target).expect("create the target directory");
        let path = target.join("file_write.bin");
        std::fs::write(&path, vec![0u8; OPS * BLOCK]).expect("create the benchmark file");
        path
    })
}

/// The block written at `index` in pass `pass`: both numbers, then filler.
fn block(pass: u64, index: usize) -> Vec<u8> {
    let mut b = vec![(index % 251) as u8; BLOCK];
    b[..8].copy_from_slice(&pass.to_le_bytes());
    b[8..16].copy_from_slice(&(index as u64).to_le_bytes());
    b
}

/// Reads the file back and checks that every block is pass `pass`'s.
fn verify(pass: u64) {
    let data = std::fs::read(path()).expect("read the file back");
    assert_eq!(data.len(), OPS * BLOCK, "file size");
    for (i, got) in data.chunks(BLOCK).enumerate() {
        assert!(got == block(pass, i), "block {i} is not pass {pass}'s");
    }
}

fn offset(index: usize) -> u64 {
    (index * BLOCK) as u64
}

#[path = "common/cpu.rs"]
mod cpu;
use cpu::cpu_time;

/// Per row: (pairs, CPU time, wall time) over every timed pass.
type CpuTable = Vec<(String, u64, Duration, Duration)>;

thread_local! {
    static CPU: RefCell<CpuTable> = const { RefCell::new(Vec::new()) };
    /// The number of the pass being written, unique over the process.
    static PASS: Cell<u64> = const { Cell::new(0) };
}

/// Times `iters` passes of `pass(n)` (`n`: the pass number to stamp the
/// blocks with), checks the file after each (not timed) and adds the CPU
/// time spent to the row `id`.
fn passes(b: &mut Bencher<'_>, id: &str, mut pass: impl FnMut(u64)) {
    b.iter_custom(|iters| {
        let (mut wall, mut cpu) = (Duration::ZERO, Duration::ZERO);
        for _ in 0..iters {
            let n = PASS.with(|p| {
                p.set(p.get() + 1);
                p.get()
            });
            let (c0, t0) = (cpu_time(), Instant::now());
            pass(n);
            wall += t0.elapsed();
            cpu += cpu_time().saturating_sub(c0);
            verify(n);
        }
        CPU.with(|t| {
            let mut t = t.borrow_mut();
            match t.iter_mut().find(|r| r.0 == id) {
                Some(r) => {
                    r.1 += iters * OPS as u64;
                    r.2 += cpu;
                    r.3 += wall;
                }
                None => t.push((id.to_string(), iters * OPS as u64, cpu, wall)),
            }
        });
        wall
    })
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime")
}

fn open_std() -> Arc<std::fs::File> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path())
        .expect("open");
    Arc::new(f)
}

/// One write + fsync pair with plain blocking calls.
fn pwrite_fsync(file: &std::fs::File, pass: u64, index: usize) {
    file.write_all_at(&block(pass, index), offset(index))
        .expect("pwrite");
    file.sync_all().expect("fsync");
}

async fn ringloop_pass(file: &ringloop::fs::File, pass: u64) {
    for i in 0..OPS {
        let (res, _) = file.write_all_at(block(pass, i), offset(i)).await;
        res.expect("write");
        file.sync_all().await.expect("fsync");
    }
}

async fn tokio_fs_pass(file: &mut tokio::fs::File, pass: u64) {
    for i in 0..OPS {
        file.seek(SeekFrom::Start(offset(i))).await.expect("seek");
        file.write_all(&block(pass, i)).await.expect("write");
        file.sync_all().await.expect("fsync");
    }
}

async fn tokio_pwrite_pass(file: &Arc<std::fs::File>, pass: u64) {
    for i in 0..OPS {
        let f = file.clone();
        tokio::task::spawn_blocking(move || pwrite_fsync(&f, pass, i))
            .await
            .expect("blocking task");
    }
}

fn file_write_fsync(c: &mut Criterion) {
    let mut g = c.benchmark_group("file_write_fsync");
    g.throughput(Throughput::Elements(OPS as u64));

    let lp = ringloop::EventLoop::new().expect("io_uring");
    let file = OnceCell::new();
    g.bench_function("ringloop", |b| {
        let file = file.get_or_init(|| {
            let mut options = ringloop::fs::OpenOptions::new();
            options.read(true).write(true);
            lp.run_until_complete(options.open(path()))
                .unwrap()
                .expect("open")
        });
        passes(b, "file_write_fsync/ringloop", |n| {
            lp.run_until_complete(ringloop_pass(file, n)).unwrap()
        })
    });
    drop(file);
    drop(lp);

    let rt = tokio_rt();
    let file = OnceCell::new();
    g.bench_function("tokio_fs", |b| {
        let file = file.get_or_init(|| {
            let mut options = tokio::fs::OpenOptions::new();
            options.read(true).write(true);
            RefCell::new(rt.block_on(options.open(path())).expect("open"))
        });
        passes(b, "file_write_fsync/tokio_fs", |n| {
            rt.block_on(tokio_fs_pass(&mut file.borrow_mut(), n))
        })
    });
    let file = OnceCell::new();
    g.bench_function("tokio_pwrite", |b| {
        let file = file.get_or_init(open_std);
        passes(b, "file_write_fsync/tokio_pwrite", |n| {
            rt.block_on(tokio_pwrite_pass(file, n))
        })
    });
    g.bench_function("inline_pwrite", |b| {
        let file = file.get_or_init(open_std);
        passes(b, "file_write_fsync/inline_pwrite", |n| {
            (0..OPS).for_each(|i| pwrite_fsync(file, n, i))
        })
    });
    g.bench_function("pool_pwrite_batch64", |b| {
        let file = file.get_or_init(open_std);
        passes(b, "file_write_fsync/pool_pwrite_batch64", |n| {
            let f = file.clone();
            let job = async move {
                tokio::task::spawn_blocking(move || (0..OPS).for_each(|i| pwrite_fsync(&f, n, i)))
                    .await
            };
            rt.block_on(job).expect("pool job")
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(10)
}

criterion_group! {
    name = benches;
    config = config();
    targets = file_write_fsync
}

/// Removes the file when dropped, also when a check fails and unwinds.
struct RemoveFile;

impl Drop for RemoveFile {
    fn drop(&mut self) {
        if let Some(p) = PATH.get() {
            if let Err(e) = std::fs::remove_file(p) {
                eprintln!("file_write: could not remove {}: {e}", p.display());
            }
        }
    }
}

fn main() {
    let _remove = RemoveFile;
    benches();
    Criterion::default().configure_from_args().final_summary();
    CPU.with(|t| {
        for (id, pairs, cpu, wall) in t.borrow().iter() {
            let per = |d: &Duration| d.as_nanos() as f64 / *pairs as f64;
            println!("cpu\t{id}\t{:.0}\t{:.0}\t{pairs}", per(cpu), per(wall));
        }
    });
}
