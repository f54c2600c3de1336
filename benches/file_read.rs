//! `file_read`: 4 KiB random reads at queue depth 1 and 64, ringloop beside
//! tokio and beside plain threads.
//!
//! ```text
//! cargo bench --bench file_read              # every group
//! cargo bench --bench file_read -- direct    # one group only
//! ```
//!
//! The file (`$CARGO_TARGET_DIR/file_read.bin`, default `target/`; 256 MiB,
//! `RINGLOOP_FILE_READ_MIB` sets another size) is written on first use and
//! removed when the bench ends. Each 4 KiB block holds its own block number
//! (8 bytes, little-endian) followed by pseudo-random bytes; every read
//! checks its length and its block number. Every pass reads the same 4,096
//! offsets (xorshift64, fixed seed); criterion's element throughput is the
//! IOPS.
//!
//! Groups, by where the data comes from:
//!
//! - `file_read_cached`: the file is in the page cache (read once before the
//!   group), so this is the per-read cost of each runtime, not the disk.
//! - `file_read_dontneed`: buffered reads, the file's pages dropped with
//!   `posix_fadvise(POSIX_FADV_DONTNEED)` before every pass (outside the
//!   timing) and `POSIX_FADV_RANDOM` on every descriptor (no read-ahead):
//!   the disk through the page cache. The only uncached group `tokio::fs`
//!   can take part in.
//! - `file_read_direct`: `O_DIRECT` with 4 KiB-aligned buffers, the page
//!   cache bypassed. `tokio::fs` cannot do this (its internal buffer is not
//!   aligned). If the filesystem refuses `O_DIRECT` (tmpfs), the group runs
//!   buffered reads after `POSIX_FADV_DONTNEED` instead and says so on
//!   stderr.
//!
//! Rows in each group (`<row>/qd1`, `<row>/qd64`):
//!
//! - `ringloop`: `File::read_at`; depth 64 = 64 tasks sharing one `File`,
//!   so 64 reads are in flight at once.
//! - `tokio_fs`: `tokio::fs::File`, `start_seek` + `poll_read` per read, two
//!   trips to tokio's blocking pool (tokio has no positional read); depth 64
//!   = 64 tasks each with its own `File`. Not in `file_read_direct`.
//! - `tokio_pread`: `spawn_blocking` of one `pread` per read (one trip).
//! - `inline_pread/qd1`: `pread` (`FileExt::read_at`) on the calling thread,
//!   no runtime: the floor for depth 1 when the data is cached.
//! - `pool_pread_batch64`: `spawn_blocking` jobs of 64 `pread`s each, the
//!   best plain thread-pool form; depth 1 = one job at a time, depth 64 = all
//!   64 jobs at once (up to 64 pool threads, each with one read in flight).
//!
//! Every row also counts the process's CPU time (`getrusage`, all threads:
//! tokio's pool, io_uring's io-wq workers) over its timed passes (warm-up
//! passes included; the cache drops between passes excluded), and the
//! bench prints at the end one line per row:
//! `cpu<TAB><id><TAB><cpu ns per read><TAB><wall ns per read><TAB><reads>`.

use std::cell::{OnceCell, RefCell};
use std::future::poll_fn;
use std::io::{self, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use criterion::{Bencher, BenchmarkId, Criterion, Throughput, criterion_group};
use ringloop::EventLoop;
use ringloop::io::IoBuf;
use tokio::io::{AsyncRead, AsyncSeek, ReadBuf};

const BLOCK: usize = 4096;
/// Reads per measured pass, at either depth.
const READS: usize = 4096;
const DEPTH: usize = 64;
/// `pread`s per job in the `pool_pread_batch64` rows.
const BATCH: usize = 64;

/// Where each group's data comes from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    /// In the page cache.
    Cached,
    /// Buffered reads after `POSIX_FADV_DONTNEED` before every pass.
    Dropped,
    /// `O_DIRECT`.
    Direct,
}

impl Source {
    /// `Direct` if the filesystem takes `O_DIRECT`, else `Dropped` (said
    /// once on stderr). Asked only when a row runs: it needs the file.
    fn resolved(self) -> Source {
        static DIRECT_OK: OnceLock<bool> = OnceLock::new();
        if self != Source::Direct {
            return self;
        }
        let ok = *DIRECT_OK.get_or_init(|| {
            let ok = direct_supported(&fixture().path);
            if !ok {
                eprintln!(
                    "file_read_direct: O_DIRECT refused by the filesystem (EINVAL): \
                     these rows are buffered reads after POSIX_FADV_DONTNEED instead"
                );
            }
            ok
        });
        if ok { Source::Direct } else { Source::Dropped }
    }

    fn open_flags(self) -> i32 {
        if self.resolved() == Source::Direct {
            libc::O_DIRECT
        } else {
            0
        }
    }
}

/// Reads the whole file once, so that it is in the page cache (once per
/// process: only `file_read_dontneed`, which runs after, drops it).
fn warm_cache() {
    static WARM: OnceLock<u64> = OnceLock::new();
    WARM.get_or_init(|| {
        let mut f = std::fs::File::open(&fixture().path).expect("open to warm the cache");
        io::copy(&mut f, &mut io::sink()).expect("read to warm the cache")
    });
}

// ------------------------------------------------------------ the file

struct Fixture {
    path: PathBuf,
    offsets: Arc<Vec<u64>>,
}

static FIXTURE: OnceLock<Fixture> = OnceLock::new();

/// The test file and offsets, made on first use (not for `--list`).
fn fixture() -> &'static Fixture {
    FIXTURE.get_or_init(|| {
        let size = file_size();
        let path = ensure_file(size).expect("create the benchmark file");
        Fixture {
            path,
            offsets: offsets(size),
        }
    })
}

fn file_size() -> u64 {
    let mib = std::env::var("RINGLOOP_FILE_READ_MIB")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(256);
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

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// Creates the test file if it is missing or has the wrong size.
fn ensure_file(size: u64) -> io::Result<PathBuf> {
    let target = target_dir();
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

/// `posix_fadvise(fd, 0, 0, advice)`: the whole file.
fn fadvise(fd: &impl AsRawFd, advice: i32) {
    // SAFETY: posix_fadvise only reads its integer arguments; the
    // descriptor is borrowed from a live file for the length of the call.
    let rc = unsafe { libc::posix_fadvise(fd.as_raw_fd(), 0, 0, advice) };
    assert_eq!(
        rc,
        0,
        "posix_fadvise({advice}): {}",
        io::Error::from_raw_os_error(rc)
    );
}

/// Drops the file's pages from the page cache.
fn drop_cache(path: &Path) {
    let f = std::fs::File::open(path).expect("open to drop the cache");
    fadvise(&f, libc::POSIX_FADV_DONTNEED);
}

/// Whether the filesystem holding `path` takes `O_DIRECT` reads.
fn direct_supported(path: &Path) -> bool {
    let f = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return false,
        Err(e) => panic!("open {} with O_DIRECT: {e}", path.display()),
    };
    let (pad, mut v) = aligned_vec();
    match f.read_at(&mut v[pad..pad + BLOCK], 0) {
        Ok(_) => true,
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => false,
        Err(e) => panic!("O_DIRECT read of {}: {e}", path.display()),
    }
}

/// A buffer and the offset of a 4 KiB-aligned block inside it.
fn aligned_vec() -> (usize, Vec<u8>) {
    let v = vec![0u8; 2 * BLOCK];
    let pad = (BLOCK - v.as_ptr() as usize % BLOCK) % BLOCK;
    (pad, v)
}

/// A 4 KiB-aligned 4 KiB window of an owned buffer, for `O_DIRECT`.
fn aligned_block() -> ringloop::io::Slice<Vec<u8>> {
    let (pad, v) = aligned_vec();
    v.slice(pad..pad + BLOCK)
}

// --------------------------------------------------------- measurement

#[path = "common/cpu.rs"]
mod cpu;
use cpu::cpu_time;

/// Per row: (reads, CPU time, wall time) over every timed pass.
type CpuTable = Vec<(String, u64, Duration, Duration)>;

thread_local! {
    static CPU: RefCell<CpuTable> = const { RefCell::new(Vec::new()) };
}

/// Times `iters` passes of `pass` (each `READS` reads), dropping the page
/// cache before each one when `source` asks for it (not timed), and adds
/// the CPU time spent to the row `id`.
fn passes(b: &mut Bencher<'_>, id: &str, source: Source, mut pass: impl FnMut()) {
    let source = source.resolved();
    if source == Source::Cached {
        warm_cache();
    }
    b.iter_custom(|iters| {
        let (mut wall, mut cpu) = (Duration::ZERO, Duration::ZERO);
        for _ in 0..iters {
            if source == Source::Dropped {
                drop_cache(&fixture().path);
            }
            let (c0, t0) = (cpu_time(), Instant::now());
            pass();
            wall += t0.elapsed();
            cpu += cpu_time().saturating_sub(c0);
        }
        CPU.with(|t| {
            let mut t = t.borrow_mut();
            match t.iter_mut().find(|r| r.0 == id) {
                Some(r) => {
                    r.1 += iters * READS as u64;
                    r.2 += cpu;
                    r.3 += wall;
                }
                None => t.push((id.to_string(), iters * READS as u64, cpu, wall)),
            }
        });
        wall
    })
}

/// Prints the CPU table (see the module docs).
fn print_cpu() {
    CPU.with(|t| {
        for (id, reads, cpu, wall) in t.borrow().iter() {
            let per = |d: &Duration| d.as_nanos() as f64 / *reads as f64;
            println!("cpu\t{id}\t{:.0}\t{:.0}\t{reads}", per(cpu), per(wall));
        }
    })
}

// ------------------------------------------------------------ ringloop

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

fn bench_ringloop(c: &mut Criterion, group: &str, source: Source) {
    let lp = EventLoop::new().expect("io_uring");
    let file: OnceCell<Rc<ringloop::fs::File>> = OnceCell::new();
    let open = || {
        let f = lp
            .run_until_complete(
                ringloop::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(source.open_flags())
                    .open(&fixture().path),
            )
            .unwrap()
            .expect("open");
        fadvise(&f, libc::POSIX_FADV_RANDOM);
        Rc::new(f)
    };
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(READS as u64));
    g.bench_function(BenchmarkId::new("ringloop", "qd1"), |b| {
        let file = file.get_or_init(open);
        let direct = source.resolved() == Source::Direct;
        let offsets = &fixture().offsets;
        passes(b, &format!("{group}/ringloop/qd1"), source, || {
            lp.run_until_complete(ringloop_qd1(file, offsets, direct))
                .unwrap()
        })
    });
    g.bench_function(BenchmarkId::new("ringloop", "qd64"), |b| {
        let file = file.get_or_init(open);
        let direct = source.resolved() == Source::Direct;
        let offsets = &fixture().offsets;
        passes(b, &format!("{group}/ringloop/qd64"), source, || {
            lp.run_until_complete(ringloop_qd64(file, offsets, direct))
                .unwrap()
        })
    });
    g.finish();
}

// --------------------------------------------------------------- tokio

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

/// `tokio::fs` rows (buffered sources only: see the module docs).
fn bench_tokio_fs(c: &mut Criterion, group: &str, source: Source) {
    let rt = tokio_rt();
    let files: OnceCell<RefCell<Vec<Option<tokio::fs::File>>>> = OnceCell::new();
    let open = || {
        RefCell::new(rt.block_on(async {
            let mut v = Vec::new();
            for _ in 0..DEPTH {
                let f = tokio::fs::File::open(&fixture().path).await.expect("open");
                fadvise(&f, libc::POSIX_FADV_RANDOM);
                v.push(Some(f));
            }
            v
        }))
    };
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(READS as u64));
    g.bench_function(BenchmarkId::new("tokio_fs", "qd1"), |b| {
        let files = files.get_or_init(open);
        passes(b, &format!("{group}/tokio_fs/qd1"), source, || {
            let mut files = files.borrow_mut();
            let f = files[0].take().unwrap();
            let offsets = fixture().offsets.clone();
            files[0] = Some(rt.block_on(tokio_fs_reads(f, offsets, 0..READS)));
        })
    });
    g.bench_function(BenchmarkId::new("tokio_fs", "qd64"), |b| {
        let files = files.get_or_init(open);
        passes(b, &format!("{group}/tokio_fs/qd64"), source, || {
            let mut files = files.borrow_mut();
            rt.block_on(async {
                let per_task = READS / DEPTH;
                let handles: Vec<_> = (0..DEPTH)
                    .map(|t| {
                        let f = files[t].take().unwrap();
                        let range = t * per_task..(t + 1) * per_task;
                        tokio::spawn(tokio_fs_reads(f, fixture().offsets.clone(), range))
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

/// Positional reads through `spawn_blocking` + `pread`, one trip each.
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

/// One pool job: `BATCH` `pread`s, from `offsets[first..]`.
fn pread_batch(file: &std::fs::File, offsets: &[u64], first: usize) {
    let (pad, mut v) = aligned_vec();
    for &off in &offsets[first..first + BATCH] {
        let n = file.read_at(&mut v[pad..pad + BLOCK], off).expect("pread");
        check(off, &v[pad..pad + n]);
    }
}

/// Every read in jobs of `BATCH` `pread`s on tokio's blocking pool: one
/// job at a time, or all at once.
async fn pool_batches(file: &Arc<std::fs::File>, offsets: &Arc<Vec<u64>>, all_at_once: bool) {
    let mut handles = Vec::new();
    for first in (0..READS).step_by(BATCH) {
        let (f, o) = (file.clone(), offsets.clone());
        let h = tokio::task::spawn_blocking(move || pread_batch(&f, &o, first));
        if all_at_once {
            handles.push(h);
        } else {
            h.await.expect("pool job");
        }
    }
    for h in handles {
        h.await.expect("pool job");
    }
}

/// Every read with `pread` on the calling thread.
fn inline_preads(file: &std::fs::File, offsets: &[u64]) {
    let (pad, mut v) = aligned_vec();
    for &off in offsets {
        let n = file.read_at(&mut v[pad..pad + BLOCK], off).expect("pread");
        check(off, &v[pad..pad + n]);
    }
}

/// The `tokio_pread`, `inline_pread` and `pool_pread_batch64` rows.
fn bench_preads(c: &mut Criterion, group: &str, source: Source) {
    let rt = tokio_rt();
    let file: OnceCell<Arc<std::fs::File>> = OnceCell::new();
    let open = || {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(source.open_flags())
            .open(&fixture().path)
            .expect("open");
        fadvise(&f, libc::POSIX_FADV_RANDOM);
        Arc::new(f)
    };
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(READS as u64));
    g.bench_function(BenchmarkId::new("tokio_pread", "qd1"), |b| {
        let file = file.get_or_init(open);
        passes(b, &format!("{group}/tokio_pread/qd1"), source, || {
            let offsets = fixture().offsets.clone();
            rt.block_on(tokio_pread_reads(file.clone(), offsets, 0..READS))
        })
    });
    g.bench_function(BenchmarkId::new("tokio_pread", "qd64"), |b| {
        let file = file.get_or_init(open);
        passes(b, &format!("{group}/tokio_pread/qd64"), source, || {
            rt.block_on(async {
                let per_task = READS / DEPTH;
                let handles: Vec<_> = (0..DEPTH)
                    .map(|t| {
                        let range = t * per_task..(t + 1) * per_task;
                        let offsets = fixture().offsets.clone();
                        tokio::spawn(tokio_pread_reads(file.clone(), offsets, range))
                    })
                    .collect();
                for h in handles {
                    h.await.expect("reader task");
                }
            })
        })
    });
    g.bench_function(BenchmarkId::new("inline_pread", "qd1"), |b| {
        let file = file.get_or_init(open);
        passes(b, &format!("{group}/inline_pread/qd1"), source, || {
            inline_preads(file, &fixture().offsets)
        })
    });
    for (qd, all_at_once) in [("qd1", false), ("qd64", true)] {
        g.bench_function(BenchmarkId::new("pool_pread_batch64", qd), |b| {
            let file = file.get_or_init(open);
            let id = format!("{group}/pool_pread_batch64/{qd}");
            passes(b, &id, source, || {
                rt.block_on(pool_batches(file, &fixture().offsets, all_at_once))
            })
        });
    }
    g.finish();
}

// -------------------------------------------------------------- groups

fn cached(c: &mut Criterion) {
    let group = "file_read_cached";
    bench_ringloop(c, group, Source::Cached);
    bench_tokio_fs(c, group, Source::Cached);
    bench_preads(c, group, Source::Cached);
}

fn dontneed(c: &mut Criterion) {
    let group = "file_read_dontneed";
    bench_ringloop(c, group, Source::Dropped);
    bench_tokio_fs(c, group, Source::Dropped);
    bench_preads(c, group, Source::Dropped);
}

fn direct(c: &mut Criterion) {
    let group = "file_read_direct";
    bench_ringloop(c, group, Source::Direct);
    bench_preads(c, group, Source::Direct);
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
    targets = cached, dontneed, direct
}

/// Removes the file when dropped, also when a check fails and unwinds.
struct RemoveFile;

impl Drop for RemoveFile {
    fn drop(&mut self) {
        if let Some(fx) = FIXTURE.get() {
            if let Err(e) = std::fs::remove_file(&fx.path) {
                eprintln!("file_read: could not remove {}: {e}", fx.path.display());
            }
        }
    }
}

fn main() {
    let _remove = RemoveFile;
    benches();
    Criterion::default().configure_from_args().final_summary();
    print_cpu();
}
