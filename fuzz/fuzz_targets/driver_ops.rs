//! Reads and writes on a Unix socketpair or a pipe (the input picks) in a
//! real loop (a new one per input, on io_uring or on epoll: the input's
//! first bit picks, see `common/backend.rs`): a writer task and a reader task, each
//! running its own list of steps, with reads *and* writes dropped at random
//! stages: before their first poll (never submitted), in flight (polled
//! once), or after the loop turned a few times (their completion may have
//! arrived, not yet polled). Writes are single `write`s or `write_all`s of
//! up to 16 KiB and the pipe's capacity and the socket's send buffer are
//! shrunk to 4 KiB, so writes fill them, wait for the reader (in the
//! kernel, poll-armed), are sent in parts, and may be dropped while
//! waiting. Every buffer is a drop-counting [`Buf`].
//!
//! # The stream model
//!
//! A write dropped in flight may have sent any prefix of its bytes (all,
//! some, none: a `write_all` stops between two sends, a waiting send is
//! cancelled before or after part of it went), and the harness cannot know
//! which. So the bytes of write `i` are made self-describing: byte `j` is
//! `i` (the write's tag, < 128) when `j` is even, and `128 | (j / 2 % 128)`
//! when odd. A byte of write `i` never equals the first byte of another
//! write (its tag differs, and odd bytes are >= 128), so the received
//! stream parses greedily and exactly into runs: each write contributes, in
//! write order, a prefix of its bytes, which must be all of them for a
//! write known to have completed (awaited, or seen ready while staged: its
//! count is exact) and may be any prefix (possibly empty) for a dropped
//! one; no byte may follow a write still in progress. Bytes lost,
//! duplicated, reordered or corrupted all break the parse, checked as each
//! read returns; after end-of-file (the writer task ends and drops its
//! end) every completed write must have arrived in full.
//!
//! # Other invariants
//!
//! - Each buffer is dropped exactly once: allocations equal drops once the
//!   loop is dropped (a second drop of one fails at once).
//! - No buffer is freed while the kernel may still write it: a dropped
//!   buffer's storage is not freed but filled with a canary and kept; once
//!   the loop is gone (every op reaped), every kept buffer must still hold
//!   only the canary. (ASan cannot see kernel writes into freed memory.)
//! - The fd count returns to its baseline, before and after the loop.
//! - Nothing hangs: the program runs under a 10 s `wait_for`.
//!
//! On epoll the same ops run as on io_uring (the backend carries out their
//! SQEs in user space), so the checks are the same: a dropped op waiting
//! for readiness must have sent or received nothing it does not report,
//! and a buffer it owned must not be written after the drop.
#![no_main]

#[path = "common/backend.rs"]
mod backend;
#[path = "driver_ops/buf.rs"]
mod buf;
#[path = "common/watchdog.rs"]
mod watchdog;

use std::cell::RefCell;
use std::future::{Future, poll_fn};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use buf::Buf;
use libfuzzer_sys::fuzz_target;
use ringloop::net::UnixStream;
use ringloop::process::{ChildStdin, ChildStdout};

/// Write tags are < 128.
const MAX_WRITES: usize = 127;
/// The largest write, and read.
const MAX_WRITE: usize = 16 * 1024;
const MAX_READ: usize = 8 * 1024;
/// Bytes written per input, at most (keeps an input fast).
const MAX_TOTAL: usize = 64 * 1024;
/// The pipe's capacity, and the socket's send buffer (the kernel doubles
/// it, and counts each buffer's overhead): small, so writes fill them.
const KERNEL_BUF: i32 = 4096;

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Stage {
    /// Dropped before its first poll (never submitted).
    Unpolled,
    /// Polled once (submitted), then dropped.
    InFlight,
    /// Polled once, then the loop turns `n % 8` times, then dropped.
    AfterTurns(u8),
}

#[derive(Arbitrary, Debug)]
enum WriteStep {
    /// `1 + len % MAX_WRITE` bytes with `write_all` or one `write`;
    /// awaited, or dropped at `stage`.
    Write {
        len: u16,
        all: bool,
        stage: Option<Stage>,
    },
    Yield(u8),
}

#[derive(Arbitrary, Debug)]
enum ReadStep {
    /// A read of up to `1 + n % MAX_READ` bytes, awaited.
    Read(u16),
    DroppedRead(u16, Stage),
    Yield(u8),
}

#[derive(Arbitrary, Debug)]
struct Input {
    /// The loop's backend: epoll, or io_uring (unless `RINGLOOP_BACKEND`
    /// is set). First, so it is the first byte's lowest bit.
    epoll: bool,
    pipe: bool,
    writes: Vec<WriteStep>,
    reads: Vec<ReadStep>,
}

enum Reader {
    Sock(UnixStream),
    Pipe(ChildStdout),
}

impl Reader {
    async fn read(&self, b: Buf) -> (io::Result<usize>, Buf) {
        match self {
            Reader::Sock(s) => s.read(b).await,
            Reader::Pipe(p) => p.read(b).await,
        }
    }
}

enum Writer {
    Sock(UnixStream),
    Pipe(ChildStdin),
}

impl Writer {
    /// Bytes written: all of them (`write_all`) or one `write`'s count.
    async fn write(&self, b: Buf, all: bool) -> usize {
        let len = b.len();
        let res = match (self, all) {
            (Writer::Sock(s), true) => s.write_all(b).await.0.map(|()| len),
            (Writer::Sock(s), false) => s.write(b).await.0,
            (Writer::Pipe(p), true) => p.write_all(b).await.0.map(|()| len),
            (Writer::Pipe(p), false) => p.write(b).await.0,
        };
        res.expect("a write to a live peer")
    }
}

/// Byte `j` of write `i` (see the module docs).
fn expected(i: usize, j: usize) -> u8 {
    if j.is_multiple_of(2) {
        i as u8
    } else {
        128 | (j / 2 % 128) as u8
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    /// Not finished yet.
    Pending,
    /// Exactly `len` bytes.
    Exact,
    /// Dropped: some prefix of the `len` bytes.
    Prefix,
}

#[derive(Debug)]
struct WriteRec {
    len: usize,
    sent: Sent,
}

/// The writes made, and where the bytes received so far end: in write
/// `w`, after its first `k` bytes.
#[derive(Debug, Default)]
struct Model {
    writes: Vec<WriteRec>,
    w: usize,
    k: usize,
}

impl Model {
    fn receive(&mut self, bytes: &[u8]) {
        for &b in bytes {
            loop {
                let Some(rec) = self.writes.get(self.w) else {
                    panic!(
                        "byte {b:#x} received beyond every write ({} made)",
                        self.writes.len()
                    );
                };
                if self.k < rec.len && b == expected(self.w, self.k) {
                    self.k += 1;
                    break;
                }
                match rec.sent {
                    Sent::Pending => panic!(
                        "byte {b:#x} after {} bytes of write {} ({} bytes), still in progress",
                        self.k, self.w, rec.len
                    ),
                    Sent::Exact => assert_eq!(
                        self.k, rec.len,
                        "write {} completed, but the stream moves on (byte {b:#x}) after {} of its {} bytes",
                        self.w, self.k, rec.len
                    ),
                    Sent::Prefix => {}
                }
                self.w += 1;
                self.k = 0;
            }
        }
    }

    /// At end-of-file: every completed write was received in full.
    fn check_complete(&self) {
        for (i, r) in self.writes.iter().enumerate().skip(self.w) {
            let got = if i == self.w { self.k } else { 0 };
            assert_ne!(
                r.sent,
                Sent::Pending,
                "end-of-file with write {i} in progress"
            );
            assert!(
                r.sent == Sent::Prefix || got == r.len,
                "write {i}: {got} of its {} bytes arrived before end-of-file",
                r.len
            );
        }
    }
}

fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

async fn turns(n: u8) {
    for _ in 0..n % 8 {
        ringloop::yield_now().await;
    }
}

/// Polls `fut` once (unless `Unpolled`), turns the loop as `stage` says,
/// then drops it; its output if the poll found it ready.
async fn staged<F: Future>(fut: F, stage: Stage) -> Option<F::Output> {
    let mut fut = pin!(fut);
    let turns_after = match stage {
        Stage::Unpolled => return None,
        Stage::InFlight => 0,
        Stage::AfterTurns(t) => t,
    };
    let polled = poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await;
    if let Poll::Ready(out) = polled {
        return Some(out);
    }
    turns(turns_after).await;
    None
}

async fn write_side(writer: Writer, steps: Vec<WriteStep>, m: Rc<RefCell<Model>>) {
    let mut total = 0;
    for step in steps {
        match step {
            WriteStep::Write { len, all, stage } => {
                let i = m.borrow().writes.len();
                let len = 1 + usize::from(len) % MAX_WRITE;
                if i == MAX_WRITES || total + len > MAX_TOTAL {
                    break;
                }
                total += len;
                let buf = Buf::from_vec((0..len).map(|j| expected(i, j)).collect());
                m.borrow_mut().writes.push(WriteRec {
                    len,
                    sent: Sent::Pending,
                });
                let written = match stage {
                    None => Some(writer.write(buf, all).await),
                    Some(stage) => staged(writer.write(buf, all), stage).await,
                };
                m.borrow_mut().writes[i] = match written {
                    Some(n) => WriteRec {
                        len: n,
                        sent: Sent::Exact,
                    },
                    None => WriteRec {
                        len,
                        sent: Sent::Prefix,
                    },
                };
            }
            WriteStep::Yield(n) => turns(n).await,
        }
    }
    drop(writer); // end-of-file once the writes are out
}

async fn read_side(reader: Reader, steps: Vec<ReadStep>, m: Rc<RefCell<Model>>) {
    for step in steps.into_iter().take(512) {
        match step {
            ReadStep::Read(n) => {
                let (res, buf) = reader.read(read_buf(n)).await;
                let k = res.expect("a read from a live peer");
                if k == 0 {
                    break; // end-of-file
                }
                m.borrow_mut().receive(&buf[..k]);
            }
            ReadStep::DroppedRead(n, stage) => {
                let read = reader.read(read_buf(n));
                if let Some((res, buf)) = staged(read, stage).await {
                    let k = res.expect("a read from a live peer");
                    m.borrow_mut().receive(&buf[..k]);
                }
            }
            ReadStep::Yield(n) => turns(n).await,
        }
    }
    loop {
        let (res, buf) = reader.read(Buf::with_capacity(MAX_READ)).await;
        let k = res.expect("a read from a live peer");
        if k == 0 {
            break;
        }
        m.borrow_mut().receive(&buf[..k]);
    }
    m.borrow().check_complete();
}

fn read_buf(n: u16) -> Buf {
    Buf::with_capacity(1 + usize::from(n) % MAX_READ)
}

/// Shrinks the kernel's buffer between writer and reader to [`KERNEL_BUF`].
fn shrink(fd: RawFd, pipe: bool) {
    let size = KERNEL_BUF;
    // SAFETY: `fd` is an open fd owned by the writer, alive for the call;
    // F_SETPIPE_SZ takes an int, SO_SNDBUF a pointer to one of `len` bytes.
    let r = unsafe {
        if pipe {
            libc::fcntl(fd, libc::F_SETPIPE_SZ, size)
        } else {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_SNDBUF,
                (&raw const size).cast(),
                std::mem::size_of::<i32>() as libc::socklen_t,
            )
        }
    };
    assert!(
        r >= 0,
        "shrinking the buffer: {}",
        io::Error::last_os_error()
    );
}

async fn program(input: Input) {
    let (reader, writer) = if input.pipe {
        let (r, w) = ringloop::__fuzz::pipe().expect("a pipe");
        shrink(w.as_raw_fd(), true);
        (Reader::Pipe(r), Writer::Pipe(w))
    } else {
        let (a, b) = UnixStream::pair().expect("a socketpair");
        shrink(a.as_raw_fd(), false);
        (Reader::Sock(b), Writer::Sock(a))
    };
    let m = Rc::new(RefCell::new(Model::default()));
    let w = ringloop::spawn(write_side(writer, input.writes, m.clone()));
    read_side(reader, input.reads, m).await;
    w.await.expect("the writer task");
}

fuzz_target!(|input: Input| {
    let _armed = watchdog::arm();
    buf::reset();
    let baseline = fd_count();
    let ev = backend::new_loop("driver_ops", input.epoll);
    let loop_fds = fd_count();
    ev.run_until_complete(async {
        if ringloop::wait_for(program(input), Some(Duration::from_secs(10)))
            .await
            .is_err()
        {
            panic!("hang: the program did not finish in 10 s");
        }
        // The fds close through the driver: let the loop run the closes.
        let until = Instant::now() + Duration::from_secs(2);
        while fd_count() > loop_fds && Instant::now() < until {
            ringloop::sleep(Duration::from_micros(50)).await;
        }
        assert_eq!(fd_count(), loop_fds, "fds left open");
    })
    .expect("the loop runs the program");
    ev.close().expect("close");
    drop(ev);
    assert_eq!(
        fd_count(),
        baseline,
        "fds left open after the loop was dropped"
    );
    buf::check();
});
