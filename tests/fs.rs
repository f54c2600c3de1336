//! `ringloop::fs`: files and directories through the ring.
//!
//! Every test works in its own directory under the system temp dir, removed
//! by a guard even when the test fails.

use std::future::Future;
use std::io::ErrorKind;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use ringloop::fs::{self, File, OpenOptions};

/// A directory removed (with its contents) when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let path =
            std::env::temp_dir().join(format!("ringloop-test-fs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create the test directory");
        TempDir(path)
    }

    fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A deterministic xorshift64 generator.
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

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn run<F: Future>(f: F) -> F::Output {
    ringloop::run(f).expect("the event loop starts")
}

/// How many of this process's fds refer to `path`.
fn fds_open_on(path: &Path) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("list /proc/self/fd")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target == path)
        .count()
}

#[test]
fn create_write_read_round_trip() {
    let dir = TempDir::new("round-trip");
    let path = dir.join("file");
    run(async {
        let f = File::create(&path).await.unwrap();
        let (res, buf) = f.write_at(b"hello world".to_vec(), 0).await;
        assert_eq!(res.unwrap(), 11);
        assert_eq!(buf, b"hello world");
        f.close().await.unwrap();

        let f = File::open(&path).await.unwrap();
        let (res, buf) = f.read_at(Vec::with_capacity(64), 0).await;
        assert_eq!(res.unwrap(), 11);
        assert_eq!(buf, b"hello world");
        let (res, buf) = f.read_at(Vec::with_capacity(5), 6).await;
        assert_eq!(res.unwrap(), 5);
        assert_eq!(buf, b"world");
        let (res, _) = f.read_at(Vec::with_capacity(5), 11).await;
        assert_eq!(res.unwrap(), 0, "reading at the end gives 0");
        // A read-only file refuses writes.
        let (res, _) = f.write_at(b"x".to_vec(), 0).await;
        assert!(res.is_err());
        // Boxed slices and slices of buffers work too.
        let (res, buf) = f.read_at(vec![0u8; 5].into_boxed_slice(), 0).await;
        assert_eq!(res.unwrap(), 5);
        assert_eq!(&buf[..], b"hello");
    });
}

#[test]
fn open_options_modes() {
    let dir = TempDir::new("options");
    let path = dir.join("file");
    run(async {
        // No access mode, or create without write: refused before the kernel.
        let err = OpenOptions::new().open(&path).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        let err = OpenOptions::new()
            .read(true)
            .create(true)
            .open(&path)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);

        let mut new = OpenOptions::new();
        new.write(true).create_new(true).mode(0o640);
        new.open(&path).await.unwrap().close().await.unwrap();
        let err = new.open(&path).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists);
        assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");
        let mode = fs::metadata(&path).await.unwrap().permissions().mode();
        assert_eq!(mode & !0o640, 0, "no bits beyond 0o640: {mode:o}");
        assert_eq!(mode & 0o600, 0o600);

        fs::write(&path, "abc").await.unwrap();
        let f = OpenOptions::new().append(true).open(&path).await.unwrap();
        let (res, _) = f.write_all_at("def", 0).await;
        res.unwrap();
        drop(f);
        assert_eq!(fs::read(&path).await.unwrap(), b"abcdef");

        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .truncate(true)
            .open(&path)
            .await
            .unwrap();
        assert_eq!(f.metadata().await.unwrap().len(), 0);
        let (res, _) = f.write_all_at("xy", 0).await;
        res.unwrap();
        let (res, buf) = f.read_at(Vec::with_capacity(8), 0).await;
        assert_eq!((res.unwrap(), &buf[..]), (2, &b"xy"[..]));
    });
}

/// 1000 random writes into a 4 MiB file, mirrored in memory, then the file
/// is compared with the mirror whole and at random ranges.
#[test]
fn random_writes_and_reads_match_a_mirror() {
    const SIZE: usize = 4 << 20;
    let dir = TempDir::new("random");
    let path = dir.join("data");
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut mirror = vec![0u8; SIZE];
    run(async {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .await
            .unwrap();
        f.set_len(SIZE as u64).await.unwrap();
        for _ in 0..1000 {
            let len = 1 + rng.below(16 << 10) as usize;
            let offset = rng.below((SIZE - len) as u64 + 1) as usize;
            let data = rng.bytes(len);
            mirror[offset..offset + len].copy_from_slice(&data);
            let (res, back) = f.write_all_at(data, offset as u64).await;
            res.unwrap();
            assert_eq!(back.len(), len);
        }
        f.sync_data().await.unwrap();
        for _ in 0..500 {
            let len = 1 + rng.below(64 << 10) as usize;
            let offset = rng.below((SIZE - len) as u64 + 1) as usize;
            let (res, buf) = f
                .read_exact_at(Vec::with_capacity(len), offset as u64)
                .await;
            res.unwrap();
            assert!(buf == mirror[offset..offset + len], "range {offset}+{len}");
        }
        // 64 reads in flight at once on one file.
        let f = Rc::new(f);
        let reads = (0..64u64).map(|i| {
            let f = f.clone();
            async move {
                let (res, buf) = f.read_exact_at(vec![0u8; 64 << 10], i * (64 << 10)).await;
                res.map(|()| buf)
            }
        });
        let chunks = ringloop::gather(reads).await.unwrap();
        for (i, chunk) in chunks.into_iter().enumerate() {
            let chunk = chunk.unwrap();
            assert!(
                chunk == mirror[i * (64 << 10)..(i + 1) * (64 << 10)],
                "chunk {i}"
            );
        }
        let whole = fs::read(&path).await.unwrap();
        assert_eq!(whole.len(), SIZE);
        assert!(whole == mirror, "the file differs from the mirror");
    });
}

#[test]
fn read_exact_at_past_the_end_is_unexpected_eof() {
    let dir = TempDir::new("eof");
    let path = dir.join("short");
    run(async {
        fs::write(&path, "0123456789").await.unwrap();
        let f = File::open(&path).await.unwrap();
        let (res, buf) = f.read_exact_at(Vec::with_capacity(8), 6).await;
        let err = res.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
        assert_eq!(buf, b"6789", "the buffer keeps what was read");
        let (res, buf) = f.read_exact_at(vec![0u8; 4], 6).await;
        res.unwrap();
        assert_eq!(buf, b"6789");
        let (res, _) = f.read_exact_at(vec![0u8; 1], u64::MAX - 1).await;
        assert_eq!(res.unwrap_err().kind(), ErrorKind::InvalidInput);
    });
}

#[test]
fn metadata_of_files_and_directories() {
    let dir = TempDir::new("metadata");
    let path = dir.join("file");
    run(async {
        let before = SystemTime::now() - Duration::from_secs(2);
        let f = OpenOptions::new()
            .write(true)
            .create(true)
            .mode(0o600)
            .open(&path)
            .await
            .unwrap();
        let (res, _) = f.write_all_at(vec![1u8; 12345], 0).await;
        res.unwrap();
        let by_fd = f.metadata().await.unwrap();
        let by_path = fs::metadata(&path).await.unwrap();
        let std_meta = std::fs::metadata(&path).unwrap();
        for m in [&by_fd, &by_path] {
            assert_eq!(m.len(), 12345);
            assert!(m.is_file() && !m.is_dir() && !m.is_symlink());
            assert_eq!(m.permissions().mode(), 0o600);
            assert_eq!(m.mode() & 0o170000, 0o100000);
            let modified = m.modified().unwrap();
            assert!(modified >= before && modified <= SystemTime::now() + Duration::from_secs(2));
            assert_eq!(modified, std_meta.modified().unwrap());
            assert_eq!(m.accessed().unwrap(), std_meta.accessed().unwrap());
            use std::os::unix::fs::MetadataExt;
            assert_eq!(m.ino(), std_meta.ino());
            assert_eq!(m.dev(), std_meta.dev());
            assert_eq!(m.nlink(), 1);
            assert_eq!((m.uid(), m.gid()), (std_meta.uid(), std_meta.gid()));
            assert!(m.blocks() > 0);
            assert_eq!(m.blksize(), std_meta.blksize());
        }
        assert!(format!("{by_fd:?}").contains("len: 12345"));

        let d = fs::metadata(&dir.0).await.unwrap();
        assert!(d.is_dir() && !d.is_file());

        std::os::unix::fs::symlink(&path, dir.join("link")).unwrap();
        assert!(fs::metadata(dir.join("link")).await.unwrap().is_file());
        assert!(
            fs::symlink_metadata(dir.join("link"))
                .await
                .unwrap()
                .is_symlink()
        );

        let err = fs::metadata(dir.join("missing")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert!(err.to_string().contains("missing"), "{err}");
    });
}

#[test]
fn set_len_grows_and_shrinks() {
    let dir = TempDir::new("set-len");
    let path = dir.join("file");
    run(async {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .open(&path)
            .await
            .unwrap();
        let (res, _) = f.write_all_at(vec![0xaa; 100], 0).await;
        res.unwrap();
        f.set_len(1 << 20).await.unwrap();
        assert_eq!(f.metadata().await.unwrap().len(), 1 << 20);
        let (res, buf) = f.read_exact_at(vec![1u8; 200], 0).await;
        res.unwrap();
        assert!(buf[..100].iter().all(|&b| b == 0xaa));
        assert!(buf[100..].iter().all(|&b| b == 0), "growth reads as zeros");
        f.set_len(50).await.unwrap();
        assert_eq!(f.metadata().await.unwrap().len(), 50);
        assert_eq!(std::fs::read(&path).unwrap(), vec![0xaa; 50]);
        f.set_len(0).await.unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);

        // fallocate: grows, never shrinks (skipped where unsupported).
        match f.allocate(0, 8192).await {
            Ok(()) => {
                assert_eq!(f.metadata().await.unwrap().len(), 8192);
                f.allocate(0, 10).await.unwrap();
                assert_eq!(f.metadata().await.unwrap().len(), 8192);
            }
            Err(e) if e.kind() == ErrorKind::Unsupported => {
                eprintln!("skipping fallocate checks: {e}");
            }
            Err(e) => panic!("fallocate: {e}"),
        }

        let ro = File::open(&path).await.unwrap();
        assert!(
            ro.set_len(1).await.is_err(),
            "read-only files cannot change length"
        );
    });
}

#[test]
fn sync_all_and_sync_data() {
    let dir = TempDir::new("sync");
    run(async {
        let f = File::create(dir.join("file")).await.unwrap();
        let (res, _) = f.write_all_at(vec![3u8; 1 << 16], 0).await;
        res.unwrap();
        f.sync_data().await.unwrap();
        f.set_len(1 << 17).await.unwrap();
        f.sync_all().await.unwrap();
        // A directory can be synced too (to persist a rename within it).
        let d = File::open(&dir.0).await.unwrap();
        d.sync_all().await.unwrap();
    });
}

#[test]
fn directories_rename_and_remove() {
    let dir = TempDir::new("dirs");
    let sub = dir.join("sub");
    run(async {
        fs::create_dir(&sub).await.unwrap();
        assert!(fs::metadata(&sub).await.unwrap().is_dir());
        let err = fs::create_dir(&sub).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists);
        assert!(err.to_string().contains("create_dir"), "{err}");
        let err = fs::create_dir(dir.join("no/parent")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);

        fs::write(sub.join("a"), "A").await.unwrap();
        fs::write(sub.join("b"), "B").await.unwrap();
        // Rename replaces an existing file atomically.
        fs::rename(sub.join("a"), sub.join("b")).await.unwrap();
        assert_eq!(fs::read(sub.join("b")).await.unwrap(), b"A");
        let err = fs::rename(sub.join("a"), sub.join("c")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        let msg = err.to_string();
        assert!(msg.contains("rename") && msg.contains("/sub/a") && msg.contains("/sub/c"));

        let err = fs::remove_dir(&sub).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::DirectoryNotEmpty);
        let err = fs::remove_file(&sub).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::IsADirectory);
        fs::remove_file(sub.join("b")).await.unwrap();
        let err = fs::remove_file(sub.join("b")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert!(err.to_string().contains("/sub/b"), "{err}");
        fs::remove_dir(&sub).await.unwrap();
        assert!(!sub.exists());
    });
}

#[test]
fn read_and_write_whole_files() {
    let dir = TempDir::new("whole");
    run(async {
        // Owned buffers of several kinds.
        fs::write(dir.join("vec"), b"bytes".to_vec()).await.unwrap();
        fs::write(dir.join("string"), String::from("string"))
            .await
            .unwrap();
        fs::write(dir.join("static"), "static").await.unwrap();
        assert_eq!(fs::read(dir.join("vec")).await.unwrap(), b"bytes");
        assert_eq!(
            fs::read_to_string(dir.join("string")).await.unwrap(),
            "string"
        );
        assert_eq!(fs::read(dir.join("static")).await.unwrap(), b"static");

        // Empty, large, and overwritten with something shorter.
        fs::write(dir.join("empty"), Vec::new()).await.unwrap();
        assert!(fs::read(dir.join("empty")).await.unwrap().is_empty());
        let big = XorShift(7).bytes((3 << 20) + 17);
        fs::write(dir.join("big"), big.clone()).await.unwrap();
        assert!(fs::read(dir.join("big")).await.unwrap() == big);
        fs::write(dir.join("big"), "short").await.unwrap();
        assert_eq!(fs::read(dir.join("big")).await.unwrap(), b"short");

        // /proc files report size 0 but have contents.
        let status = fs::read_to_string("/proc/self/status").await.unwrap();
        assert!(status.contains("Pid:"), "{status}");

        fs::write(dir.join("latin1"), vec![0xe9]).await.unwrap();
        let err = fs::read_to_string(dir.join("latin1")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData);
    });
}

#[test]
fn opening_a_missing_file_is_not_found_naming_the_path() {
    let dir = TempDir::new("missing");
    let path = dir.join("does-not-exist.txt");
    run(async {
        let err = File::open(&path).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        let msg = err.to_string();
        assert!(
            msg.contains("open") && msg.contains(&*path.to_string_lossy()),
            "{msg}"
        );
        let err = fs::read(&path).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert!(err.to_string().contains("does-not-exist.txt"));
    });
}

#[test]
fn paths_may_be_non_utf8_but_not_contain_nul() {
    let dir = TempDir::new("paths");
    let latin1 = dir.join(std::ffi::OsStr::from_bytes(b"caf\xe9"));
    run(async {
        fs::write(&latin1, "ok").await.unwrap();
        assert_eq!(fs::read(&latin1).await.unwrap(), b"ok");
        assert_eq!(std::fs::read(&latin1).unwrap(), b"ok");
        fs::remove_file(&latin1).await.unwrap();

        let nul = dir.join("a\0b");
        let err = File::open(&nul).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("a\\0b"), "{err}");
        for err in [
            fs::remove_file(&nul).await.unwrap_err(),
            fs::create_dir(&nul).await.unwrap_err(),
            fs::metadata(&nul).await.unwrap_err(),
            fs::rename(&nul, dir.join("x")).await.unwrap_err(),
        ] {
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
        }
    });
}

/// Opens whose futures are dropped (before or after the SQE reached the
/// kernel) leave no fd behind: an open that completes anyway is closed.
#[test]
fn cancelled_opens_leave_no_fd_behind() {
    let dir = TempDir::new("cancel-open");
    let path = dir.join("target");
    std::fs::write(&path, b"x").unwrap();
    let path = path.canonicalize().unwrap();
    assert_eq!(fds_open_on(&path), 0);
    run(async {
        let mut timeouts = 0;
        for i in 0..500 {
            match ringloop::wait_for(File::open(&path), Some(Duration::ZERO)).await {
                Ok(f) => drop(f.unwrap()),
                Err(_) => timeouts += 1,
            }
            if i % 2 == 0 {
                // Let the cancelled open reach the kernel before the next.
                ringloop::yield_now().await;
            }
        }
        assert!(timeouts > 0, "no open was cancelled");
        // Opens cancelled after a turn in the kernel.
        for _ in 0..100 {
            let _ = ringloop::wait_for(File::open(&path), Some(Duration::from_micros(1))).await;
        }
        // Ring closes of orphaned fds finish within a few turns.
        ringloop::sleep(Duration::from_millis(50)).await;
    });
    assert_eq!(fds_open_on(&path), 0, "cancelled opens leaked fds");
}

#[test]
fn dropping_a_file_closes_its_fd() {
    let dir = TempDir::new("drop-close");
    let path = dir.join("file");
    std::fs::write(&path, b"x").unwrap();
    let path = path.canonicalize().unwrap();
    run(async {
        let opens = (0..10).map(|_| {
            let path = path.clone();
            async move { File::open(&path).await }
        });
        let files: Vec<File> = ringloop::gather(opens)
            .await
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(fds_open_on(&path), 10);
        drop(files);
        ringloop::sleep(Duration::from_millis(20)).await;
        assert_eq!(fds_open_on(&path), 0);
    });
}

/// An abandoned read keeps the fd open until its completion; `close` waits
/// for it, then closes.
#[test]
fn close_waits_for_abandoned_reads() {
    let dir = TempDir::new("fifo");
    let fifo = dir.join("fifo");
    match std::process::Command::new("mkfifo").arg(&fifo).status() {
        Ok(s) if s.success() => {}
        _ => {
            eprintln!("skipping: mkfifo is unavailable");
            return;
        }
    }
    let fifo = fifo.canonicalize().unwrap();
    run(async {
        // O_RDWR on a FIFO never blocks on open; a read waits for data.
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&fifo)
            .await
            .unwrap();
        let read = f.read_at(Vec::with_capacity(8), 0);
        let r = ringloop::wait_for(read, Some(Duration::from_millis(10))).await;
        assert!(r.is_err(), "nothing was written: the read must time out");
        f.close().await.unwrap();
        assert_eq!(fds_open_on(&fifo), 0);

        // Dropping instead of closing: the fd goes once the read is reaped.
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&fifo)
            .await
            .unwrap();
        let read = f.read_at(Vec::with_capacity(8), 0);
        let _ = ringloop::wait_for(read, Some(Duration::from_millis(10))).await;
        drop(f);
        ringloop::sleep(Duration::from_millis(20)).await;
        assert_eq!(fds_open_on(&fifo), 0);
    });
}

#[test]
fn from_std_and_debug() {
    let dir = TempDir::new("from-std");
    let path = dir.join("file");
    std::fs::write(&path, b"adopted").unwrap();
    run(async {
        let f = File::from_std(std::fs::File::open(&path).unwrap()).unwrap();
        let (res, buf) = f.read_at(Vec::with_capacity(16), 0).await;
        assert_eq!((res.unwrap(), &buf[..]), (7, &b"adopted"[..]));
        f.close().await.unwrap();
        let f = File::open(&path).await.unwrap();
        let dbg = format!("{f:?}");
        assert!(dbg.contains("File") && dbg.contains("from-std"), "{dbg}");
    });
    // Outside a loop there is no ring to use.
    let err = File::from_std(std::fs::File::open(&path).unwrap()).unwrap_err();
    assert!(
        err.to_string().contains("running ringloop event loop"),
        "{err}"
    );
}
