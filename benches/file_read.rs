//! `file_read`: 4 KiB random reads from a 1 GiB file at queue depth 1 and
//! 64, ringloop vs tokio.
//!
//! ```text
//! cargo bench --bench file_read              # cached, then O_DIRECT
//! cargo bench --bench file_read -- cached    # one group only
//! ```
//!
//! The file (`target/file_read.bin`, made once; `RINGLOOP_FILE_READ_MIB`
//! sets another size) holds in each 4 KiB block its own block number (8
//! bytes, little-endian) followed by pseudo-random bytes; every read checks
//! its length and its block number.
//!
//! Groups (criterion's element throughput is the IOPS):
//!
//! - `file_read_cached`: the file is in the page cache (it is read once
//!   before measuring), so this measures the per-read cost of each runtime,
//!   not the disk.
//!   - `ringloop/qd1`: one task, one `File::read_at` at a time.
//!   - `ringloop/qd64`: 64 tasks sharing one `File`, each with its own
//!     buffer, so 64 reads are in the ring at once.
//!   - `tokio_fs/qd1`, `tokio_fs/qd64`: `tokio::fs::File` on a
//!     `current_thread` runtime, `start_seek` + `poll_read` per read (two
//!     trips to tokio's blocking pool); 64 tasks each with its own `File`
//!     on the same path for depth 64.
//!   - `tokio_pread/qd1`, `tokio_pread/qd64`: tokio's best case, not
//!     `tokio::fs`: `spawn_blocking` of one `pread` per read (one trip).
//! - `file_read_direct`: the same with `O_DIRECT` (page cache bypassed,
//!   4 KiB-aligned buffers), ringloop against `tokio_pread` (`tokio::fs`
//!   cannot do `O_DIRECT`: its internal buffer is not aligned).
//!
//! Every pass uses the same sequence of offsets (xorshift64, fixed seed).

use std::future::poll_fn;
use std::io::{self, SeekFrom, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ringloop::EventLoop;
use ringloop::io::IoBuf;
use tokio::io::{AsyncRead, AsyncSeek, ReadBuf};

const BLOCK: usize = 4096;
/// Reads per measured iteration, at either depth.
const READS: usize = 4096;
const DEPTH: usize = 64;

fn file_size() -> u64 {
    let mib = std::env::var("RINGLOOP_FILE_READ_MIB")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(1024);
    mib << 20
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// `READS` random block-aligned offsets within a file of `size` bytes.
fn offsets(size: u64) -> Arc<Vec<u64>> {
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    let blocks = size / BLOCK as u64;
    Arc::new(
        (0..READS)
            .map(|_| rng.next() % blocks * BLOCK as u64)
            .collect(),
    )
}

/// Checks a block read at `offset`: full length, and its block number.
fn check(offset: u64, block: &[u8]) {
    assert_eq!(block.len(), BLOCK, "short read at {offset}");
    let n = u64::from_le_bytes(block[..8].try_into().unwrap());
    assert_eq!(n, offset / BLOCK as u64, "wrong block at {offset}");
}

/// Creates the test file if it is missing or has the wrong size.
fn ensure_file(size: u64) -> io::Result<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    std::fs::create_dir_all(&target)?;
    let path = target.join("file_read.bin");
    if std::fs::metadata(&path).map(|m| m.len()).ok() == Some(size) {
        return Ok(path);
    }
    eprintln!(
        "file_read: writing {} MiB to {}",
        size >> 20,
        path.display()
    );
    let tmp = path.with_extension("tmp");
    let mut out = io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp)?);
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut block = vec![0u8; BLOCK];
    for n in 0..size / BLOCK as u64 {
        block[..8].copy_from_slice(&n.to_le_bytes());
        for chunk in block[8..].chunks_mut(8) {
            chunk.copy_from_slice(&rng.next().to_le_bytes()[..chunk.len()]);
        }
        out.write_all(&block)?;
    }
    out.into_inner()?.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// A 4 KiB-aligned 4 KiB window of an owned buffer, for `O_DIRECT`.
fn aligned_block() -> ringloop::io::Slice<Vec<u8>> {
    let v = vec![0u8; 2 * BLOCK];
    let pad = (BLOCK - v.as_ptr() as usize % BLOCK) % BLOCK;
    v.slice(pad..pad + BLOCK)
}

// ---------------------------------------------------------------- ringloop

async fn ringloop_qd1(file: &ringloop::fs::File, offsets: &[u64], direct: bool) {
    let mut buf = aligned_block();
    let mut plain = Vec::with_capacity(BLOCK);
    for &off in offsets {
        if direct {
            let (res, b) = file.read_at(buf, off).await;
            assert_eq!(res.expect("read"), BLOCK);
            check(off, &b.get_ref()[b.begin()..b.end()]);
            buf = b;
        } else {
            plain.clear();
            let (res, b) = file.read_at(plain, off).await;
            res.expect("read");
            check(off, &b);
            plain = b;
        }
    }
}

async fn ringloop_qd64(file: &Rc<ringloop::fs::File>, offsets: &Arc<Vec<u64>>, direct: bool) {
    let per_task = offsets.len() / DEPTH;
    let tasks = (0..DEPTH).map(|t| {
        let (file, offsets) = (file.clone(), offsets.clone());
        async move {
            let mine = &offsets[t * per_task..(t + 1) * per_task];
            ringloop_qd1(&file, mine, direct).await;
        }
    });
    ringloop::gather(tasks).await.expect("reader tasks");
}

fn bench_ringloop(
    c: &mut Criterion,
    group: &str,
    path: &Path,
    offsets: &Arc<Vec<u64>>,
    direct: bool,
) {
    let lp = EventLoop::new().expect("io_uring");
    let flags = if direct { libc::O_DIRECT } else { 0 };
    let file = lp
        .run_until_complete(
            ringloop::fs::OpenOptions::new()
                .read(true)
                .custom_flags(flags)
                .open(path),
        )
        .unwrap()
        .expect("open");
    let file = Rc::new(file);
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(READS as u64));
    g.bench_function(BenchmarkId::new("ringloop", "qd1"), |b| {
        b.iter(|| {
            lp.run_until_complete(ringloop_qd1(&file, offsets, direct))
                .unwrap()
        })
    });
    g.bench_function(BenchmarkId::new("ringloop", "qd64"), |b| {
        b.iter(|| {
            lp.run_until_complete(ringloop_qd64(&file, offsets, direct))
                .unwrap()
        })
    });
    g.finish();
}

// ------------------------------------------------------------------- tokio

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime")
}

/// Positional read with `tokio::fs::File`: seek, then read (tokio has no
/// `read_at`). Each step is a trip to the blocking pool.
async fn tokio_fs_read(file: &mut tokio::fs::File, off: u64, buf: &mut [u8]) -> io::Result<usize> {
    Pin::new(&mut *file).start_seek(SeekFrom::Start(off))?;
    poll_fn(|cx| Pin::new(&mut *file).poll_complete(cx)).await?;
    let mut rb = ReadBuf::new(buf);
    poll_fn(|cx| Pin::new(&mut *file).poll_read(cx, &mut rb)).await?;
    Ok(rb.filled().len())
}

async fn tokio_fs_reads(
    mut file: tokio::fs::File,
    offsets: Arc<Vec<u64>>,
    range: std::ops::Range<usize>,
) -> tokio::fs::File {
    let mut buf = vec![0u8; BLOCK];
    for &off in &offsets[range] {
        let n = tokio_fs_read(&mut file, off, &mut buf).await.expect("read");
        check(off, &buf[..n]);
    }
    file
}

/// Positional read through `spawn_blocking` + `pread` (not `tokio::fs`).
async fn tokio_pread_reads(
    file: Arc<std::fs::File>,
    offsets: Arc<Vec<u64>>,
    range: std::ops::Range<usize>,
) {
    let mut buf = aligned_vec();
    for i in range {
        let off = offsets[i];
        let f = file.clone();
        buf = tokio::task::spawn_blocking(move || {
            let (pad, mut v) = buf;
            let n = f.read_at(&mut v[pad..pad + BLOCK], off).expect("pread");
            check(off, &v[pad..pad + n]);
            (pad, v)
        })
        .await
        .expect("blocking task");
    }
}

/// A buffer and the offset of a 4 KiB-aligned block inside it.
fn aligned_vec() -> (usize, Vec<u8>) {
    let v = vec![0u8; 2 * BLOCK];
    let pad = (BLOCK - v.as_ptr() as usize % BLOCK) % BLOCK;
    (pad, v)
}

fn bench_tokio_fs(c: &mut Criterion, group: &str, path: &Path, offsets: &Arc<Vec<u64>>) {
    let rt = tokio_rt();
    let mut files: Vec<Option<tokio::fs::File>> = rt.block_on(async {
        let mut v = Vec::new();
        for _ in 0..DEPTH {
            v.push(Some(tokio::fs::File::open(path).await.expect("open")));
        }
        v
    });
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(READS as u64));
    g.bench_function(BenchmarkId::new("tokio_fs", "qd1"), |b| {
        b.iter(|| {
            let f = files[0].take().unwrap();
            files[0] = Some(rt.block_on(tokio_fs_reads(f, offsets.clone(), 0..READS)));
        })
    });
    g.bench_function(BenchmarkId::new("tokio_fs", "qd64"), |b| {
        b.iter(|| {
            rt.block_on(async {
                let per_task = READS / DEPTH;
                let handles: Vec<_> = (0..DEPTH)
                    .map(|t| {
                        let f = files[t].take().unwrap();
                        tokio::spawn(tokio_fs_reads(
                            f,
                            offsets.clone(),
                            t * per_task..(t + 1) * per_task,
                        ))
                    })
                    .collect();
                for (t, h) in handles.into_iter().enumerate() {
                    files[t] = Some(h.await.expect("reader task"));
                }
            })
        })
    });
    g.finish();
}

fn bench_tokio_pread(
    c: &mut Criterion,
    group: &str,
    path: &Path,
    offsets: &Arc<Vec<u64>>,
    direct: bool,
) {
    let rt = tokio_rt();
    let flags = if direct { libc::O_DIRECT } else { 0 };
    let file = Arc::new(
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(flags)
            .open(path)
            .expect("open"),
    );
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(READS as u64));
    g.bench_function(BenchmarkId::new("tokio_pread", "qd1"), |b| {
        b.iter(|| rt.block_on(tokio_pread_reads(file.clone(), offsets.clone(), 0..READS)))
    });
    g.bench_function(BenchmarkId::new("tokio_pread", "qd64"), |b| {
        b.iter(|| {
            rt.block_on(async {
                let per_task = READS / DEPTH;
                let handles: Vec<_> = (0..DEPTH)
                    .map(|t| {
                        tokio::spawn(tokio_pread_reads(
                            file.clone(),
                            offsets.clone(),
                            t * per_task..(t + 1) * per_task,
                        ))
                    })
                    .collect();
                for h in handles {
                    h.await.expect("reader task");
                }
            })
        })
    });
    g.finish();
}

// ------------------------------------------------------------------ groups

fn setup() -> (PathBuf, Arc<Vec<u64>>) {
    let size = file_size();
    let path = ensure_file(size).expect("create the benchmark file");
    (path, offsets(size))
}

fn cached(c: &mut Criterion) {
    let (path, offsets) = setup();
    // Pull the whole file into the page cache.
    io::copy(&mut std::fs::File::open(&path).unwrap(), &mut io::sink()).unwrap();
    bench_ringloop(c, "file_read_cached", &path, &offsets, false);
    bench_tokio_fs(c, "file_read_cached", &path, &offsets);
    bench_tokio_pread(c, "file_read_cached", &path, &offsets, false);
}

fn direct(c: &mut Criterion) {
    let (path, offsets) = setup();
    bench_ringloop(c, "file_read_direct", &path, &offsets, true);
    bench_tokio_pread(c, "file_read_direct", &path, &offsets, true);
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = cached, direct
}
criterion_main!(benches);
