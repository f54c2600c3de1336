//! Ops for `stress_small_ring`: batches of socket reads and writes, file
//! reads, opens, stats and sleeps, far more than the ring's 2 SQ and 4 CQ
//! entries, all outstanding at once, each checked when it resolves.

use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use ringloop::fs::File;
use ringloop::net::UnixStream;
use ringloop::{Task, gather_tasks, sleep, spawn};

use super::counted::CountedBuf;
use crate::common::XorShift;

/// Byte `i` of the message on connection `conn`.
fn msg(conn: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| (conn * 31 + i * 7) as u8).collect()
}

/// Runs `total` ops in batches of `batch` (each batch spawned at once, in
/// a seeded random order, then gathered); returns the ops that resolved.
pub async fn run(total: usize, batch: usize) -> usize {
    let dir = super::TempDir::new("small-ring");
    let path = dir.0.join("data");
    let content = XorShift::new(1).bytes(16 * 1024);
    std::fs::write(&path, &content).expect("write the data file");
    let content = Rc::new(content);
    let file = Rc::new(File::open(&path).await.expect("open the data file"));
    let mut rng = XorShift::new(2);
    let mut done = 0;
    while done < total {
        let n = batch.min(total - done);
        let mut ops: Vec<Box<dyn FnOnce() -> Task<()>>> = Vec::with_capacity(n);
        while ops.len() < n {
            let c = ops.len();
            match rng.range(0, 4) {
                // A read and the write feeding it: two ops, spawned apart.
                0 if n - ops.len() >= 2 => {
                    let (a, b) = UnixStream::pair().expect("socketpair");
                    let len = rng.range_usize(1, 4096);
                    ops.push(Box::new(move || {
                        spawn(async move {
                            let (res, buf) = b.read_exact(CountedBuf::with_capacity(len)).await;
                            res.expect("read_exact");
                            assert_eq!(buf.as_slice(), &msg(c, len)[..], "connection {c}");
                        })
                    }));
                    ops.push(Box::new(move || {
                        spawn(async move {
                            let (res, _) = a.write_all(CountedBuf::from_vec(msg(c, len))).await;
                            res.expect("write_all");
                        })
                    }));
                }
                1 => {
                    let (f, content) = (file.clone(), content.clone());
                    let off = rng.range_usize(0, content.len() - 1);
                    let cap = rng.range_usize(1, 4096);
                    ops.push(Box::new(move || {
                        spawn(async move {
                            let (res, buf) =
                                f.read_at(CountedBuf::with_capacity(cap), off as u64).await;
                            let n = res.expect("file read");
                            let want = &content[off..(off + cap).min(content.len())];
                            assert_eq!(buf.as_slice(), want, "file bytes at {off} ({n} read)");
                        })
                    }));
                }
                2 => {
                    let p: PathBuf = path.clone();
                    let len = content.len() as u64;
                    let stat = rng.range(0, 1) == 0;
                    ops.push(Box::new(move || {
                        spawn(async move {
                            if stat {
                                let m = ringloop::fs::metadata(&p).await.expect("statx");
                                assert_eq!(m.len(), len);
                            } else {
                                drop(File::open(&p).await.expect("open"));
                            }
                        })
                    }));
                }
                _ => {
                    let d = Duration::from_micros(rng.range(0, 2000));
                    ops.push(Box::new(move || spawn(sleep(d))));
                }
            }
        }
        // Spawned in a random order: reads often before their writes.
        for i in (1..ops.len()).rev() {
            ops.swap(i, rng.range_usize(0, i));
        }
        let tasks: Vec<Task<()>> = ops.into_iter().map(|f| f()).collect();
        gather_tasks(tasks).await.expect("an op failed");
        done += n;
    }
    drop(file);
    drop(dir);
    done
}
