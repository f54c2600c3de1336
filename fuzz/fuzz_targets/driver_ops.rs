//! Reads and writes on a Unix socketpair in a real loop, with reads dropped
//! at random stages: before they are polled, in flight (polled once), or
//! after their completion arrived but before it was polled (the loop turned
//! a few times first).
//!
//! Invariants: the bytes the reader gets (from completed reads, then a read
//! to end after the writer closes) are exactly the bytes written, in order:
//! a dropped read never loses or duplicates any; every fd is closed again
//! (the fd count returns to its baseline); and, under AddressSanitizer, no
//! buffer the kernel may still write is freed early or twice.
#![no_main]

use std::cell::RefCell;
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use ringloop::EventLoop;
use ringloop::net::UnixStream;

/// Total bytes written per input: far below the socket buffer, so a write
/// never waits for the reader.
const MAX_WRITTEN: usize = 64 * 1024;

#[derive(Arbitrary, Debug)]
enum Stage {
    /// Dropped before its first poll (never submitted).
    Unpolled,
    /// Polled once (submitted), then dropped.
    InFlight,
    /// Polled once, then the loop turns `n` times, then dropped.
    AfterTurns(u8),
}

#[derive(Arbitrary, Debug)]
enum Step {
    Write(Vec<u8>),
    /// A read awaited to completion (only when bytes are known to wait).
    Read(u16),
    DroppedRead(u16, Stage),
    Yield(u8),
}

fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

thread_local! {
    static LOOP: RefCell<Option<EventLoop>> = const { RefCell::new(None) };
}

async fn turns(n: u8) {
    for _ in 0..n {
        ringloop::yield_now().await;
    }
}

fuzz_target!(|steps: Vec<Step>| {
    LOOP.with(|l| {
        let mut l = l.borrow_mut();
        let ev = l.get_or_insert_with(|| EventLoop::new().expect("an io_uring loop"));
        let baseline = fd_count();
        ev.run_until_complete(async {
            let (a, b) = UnixStream::pair().expect("a socketpair");
            let mut written: Vec<u8> = Vec::new();
            let mut got: Vec<u8> = Vec::new();
            for step in steps.into_iter().take(256) {
                match step {
                    Step::Write(mut bytes) => {
                        bytes.truncate(MAX_WRITTEN - written.len());
                        if bytes.is_empty() {
                            continue;
                        }
                        let (res, bytes) = a.write_all(bytes).await;
                        res.expect("write_all on a socketpair");
                        written.extend_from_slice(&bytes);
                    }
                    Step::Read(n) => {
                        if got.len() == written.len() || n == 0 {
                            continue; // It would wait forever.
                        }
                        let (res, buf) = b.read(Vec::with_capacity(usize::from(n))).await;
                        let k = res.expect("read on a socketpair");
                        assert!(k > 0, "read returned 0 with bytes waiting");
                        got.extend_from_slice(&buf[..k]);
                    }
                    Step::DroppedRead(n, stage) => {
                        let mut read = pin!(b.read(Vec::with_capacity(usize::from(n).max(1))));
                        let polls = match stage {
                            Stage::Unpolled => None,
                            Stage::InFlight => Some(0),
                            Stage::AfterTurns(t) => Some(t % 8),
                        };
                        if let Some(t) = polls {
                            let done = poll_fn(|cx| Poll::Ready(read.as_mut().poll(cx))).await;
                            if let Poll::Ready((res, buf)) = done {
                                let k = res.expect("read on a socketpair");
                                got.extend_from_slice(&buf[..k]);
                            } else {
                                turns(t).await;
                            }
                        }
                    }
                    Step::Yield(n) => turns(n % 8).await,
                }
                assert!(got.len() <= written.len(), "more bytes read than written");
                assert_eq!(
                    got[..],
                    written[..got.len()],
                    "bytes read differ from written"
                );
            }
            drop(a); // EOF once the writes are out.
            loop {
                let (res, buf) = b.read(Vec::with_capacity(16 * 1024)).await;
                let k = res.expect("read on a socketpair");
                if k == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..k]);
                assert!(got.len() <= written.len(), "more bytes read than written");
            }
            assert!(
                got == written,
                "{} bytes read, {} written",
                got.len(),
                written.len()
            );
            drop(b);
            // Sockets close through the ring: let the loop run the closes.
            let until = Instant::now() + Duration::from_secs(2);
            while fd_count() > baseline && Instant::now() < until {
                ringloop::sleep(Duration::from_micros(50)).await;
            }
            assert_eq!(fd_count(), baseline, "fds left open");
        })
        .expect("the loop runs the program");
    });
});
