//! Driver tests with no executor: ops are polled by hand with a counting
//! waker and the driver is turned explicitly.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use super::op::nop::Nop;
use super::op::read::Read;
use super::op::timeout::Timeout;
use super::op::write::Write;
use super::op::{Op, OpCode};
use super::*;
use crate::buf::{IoBuf, IoBufMut};

fn driver(entries: u32, cq: Option<u32>) -> Rc<RefCell<Driver>> {
    let cfg = RingConfig {
        entries,
        cq_entries: cq,
        ..RingConfig::default()
    };
    Rc::new(RefCell::new(
        Driver::new(&cfg).expect("a backend available"),
    ))
}

/// Whether `d` runs on epoll, where a test about io_uring itself (the SQ,
/// the CQ, the backlog) has nothing to test: it says so and skips.
fn skip_on_epoll(d: &Rc<RefCell<Driver>>, why: &str) -> bool {
    let epoll = d.borrow().backend() == super::Backend::Epoll;
    if epoll {
        eprintln!("skipped on the epoll backend: {why}");
    }
    epoll
}

#[derive(Default)]
struct CountWaker(AtomicUsize);

impl Wake for CountWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn poll<F: Future + Unpin>(f: &mut F, w: &Waker) -> Poll<F::Output> {
    Pin::new(f).poll(&mut Context::from_waker(w))
}

/// Turns the driver, then wakes and drops what it collected.
fn turn(d: &Rc<RefCell<Driver>>, wait: Wait) {
    let (mut wakers, mut garbage) = (Vec::new(), Vec::new());
    {
        let mut d = d.borrow_mut();
        d.turn(wait).expect("turn");
        d.take_ready(&mut wakers, &mut garbage);
    }
    wakers.into_iter().for_each(Waker::wake);
    for (orphan, c) in garbage {
        orphan.complete(c);
    }
}

/// A buffer that counts its drops; the kernel reads or writes its Vec.
struct DropBuf {
    data: Vec<u8>,
    drops: Rc<Cell<usize>>,
}

impl DropBuf {
    fn new(len: usize, drops: &Rc<Cell<usize>>) -> DropBuf {
        DropBuf {
            data: Vec::with_capacity(len),
            drops: drops.clone(),
        }
    }
}

impl Drop for DropBuf {
    fn drop(&mut self) {
        self.drops.set(self.drops.get() + 1);
    }
}

// SAFETY: delegates to the Vec, whose heap storage is stable across moves.
unsafe impl IoBuf for DropBuf {
    fn stable_ptr(&self) -> *const u8 {
        self.data.stable_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.data.bytes_init()
    }
    fn bytes_total(&self) -> usize {
        self.data.bytes_total()
    }
}

// SAFETY: delegates to the Vec.
unsafe impl IoBufMut for DropBuf {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.data.stable_mut_ptr()
    }
    unsafe fn set_init(&mut self, pos: usize) {
        // SAFETY: forwarded contract.
        unsafe { self.data.set_init(pos) }
    }
}

fn pipe() -> (Rc<OwnedFd>, Rc<OwnedFd>) {
    let (r, w) = crate::sys::pipe().expect("pipe");
    (Rc::new(r), Rc::new(w))
}

fn wait_until_idle(d: &Rc<RefCell<Driver>>) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while d.borrow().live_ops() > 0 || d.borrow().has_ready() {
        assert!(Instant::now() < deadline, "ops never drained");
        turn(d, Wait::For(Duration::from_millis(10)));
    }
}

#[test]
fn nop_completes() {
    let d = driver(8, None);
    let w = Waker::from(Arc::new(CountWaker::default()));
    let mut op = Op::submit(&d, Nop).unwrap();
    let mut first = poll(&mut op, &w);
    if d.borrow().backend() == super::Backend::IoUring {
        // The ring submits at the next turn.
        assert!(first.is_pending());
        turn(&d, Wait::Forever);
        first = poll(&mut op, &w);
    }
    // epoll carries a NOP out as it is pushed: ready at the first poll.
    assert_eq!(first.map(|r| r.unwrap()), Poll::Ready(0));
    assert_eq!(d.borrow().live_ops(), 0);
}

#[test]
fn read_returns_written_bytes_and_buffer() {
    let d = driver(8, None);
    let w = Waker::from(Arc::new(CountWaker::default()));
    let (r, wr) = pipe();
    let mut write = Op::submit(&d, Write::new(wr, b"hello".to_vec(), u64::MAX)).unwrap();
    let mut read = Op::submit(&d, Read::new(r, Vec::with_capacity(16), u64::MAX)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let (mut wrote, mut got) = (None, None);
    while wrote.is_none() || got.is_none() {
        assert!(Instant::now() < deadline);
        turn(&d, Wait::For(Duration::from_millis(50)));
        if wrote.is_none() {
            if let Poll::Ready((res, _buf)) = poll(&mut write, &w) {
                wrote = Some(res.unwrap());
            }
        }
        if got.is_none() {
            if let Poll::Ready((res, buf)) = poll(&mut read, &w) {
                assert_eq!(&buf[..res.unwrap()], b"hello");
                got = Some(buf);
            }
        }
    }
    assert_eq!(wrote, Some(5));
}

/// Cancelled before its SQE reached the ring: freed at once, no CQE awaited.
#[test]
fn cancel_before_submit_drops_buffer_once() {
    let d = driver(2, Some(4));
    if skip_on_epoll(
        &d,
        "no submission queue to fill, nothing waits in the backlog",
    ) {
        return;
    }
    let drops = Rc::new(Cell::new(0));
    let (r, _w) = pipe();
    // Four reads that never finish are in the kernel; then the SQ acts
    // full, so the next op waits in the backlog.
    let blockers: Vec<_> = (0..4)
        .map(|_| Op::submit(&d, Read::new(r.clone(), DropBuf::new(8, &drops), u64::MAX)).unwrap())
        .collect();
    turn(&d, Wait::No);
    d.borrow_mut().test_hold_sq = true;
    let queued = Op::submit(&d, Read::new(r.clone(), DropBuf::new(8, &drops), u64::MAX)).unwrap();
    assert!(!d.borrow().ops[queued.key_for_test().index as usize].pushed);
    drop(queued);
    assert_eq!(
        drops.get(),
        1,
        "an op the kernel never saw is freed at once"
    );
    d.borrow_mut().test_hold_sq = false;
    drop(blockers);
    assert_eq!(drops.get(), 1, "in-flight buffers stay with the driver");
    wait_until_idle(&d);
    assert_eq!(drops.get(), 5, "every buffer dropped exactly once");
}

/// Cancelled while in the kernel: the buffer lives until the CQE.
#[test]
fn cancel_in_flight_keeps_buffer_until_cqe() {
    let d = driver(8, None);
    let drops = Rc::new(Cell::new(0));
    let (r, _w) = pipe();
    let w = Waker::from(Arc::new(CountWaker::default()));
    let mut op = Op::submit(&d, Read::new(r, DropBuf::new(8, &drops), u64::MAX)).unwrap();
    turn(&d, Wait::No);
    assert!(poll(&mut op, &w).is_pending());
    drop(op);
    assert_eq!(drops.get(), 0, "the kernel still owns the buffer");
    wait_until_idle(&d);
    assert_eq!(drops.get(), 1);
}

/// Completed but not yet polled: dropping frees it at once, exactly once.
#[test]
fn cancel_after_completion_drops_buffer_once() {
    let d = driver(8, None);
    let drops = Rc::new(Cell::new(0));
    let (r, wr) = pipe();
    // SAFETY-free write through the fd so the read completes.
    let mut write = Op::submit(&d, Write::new(wr, b"x".to_vec(), u64::MAX)).unwrap();
    let op = Op::submit(&d, Read::new(r, DropBuf::new(8, &drops), u64::MAX)).unwrap();
    // On epoll the byte is there already: the read is done as it is
    // submitted, with no slot (its drop below is the same test).
    if !op.done_at_submit() {
        let key = op.key_for_test();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !matches!(
            d.borrow().ops[key.index as usize].life,
            Lifecycle::Completed(_)
        ) {
            assert!(Instant::now() < deadline);
            turn(&d, Wait::For(Duration::from_millis(10)));
        }
    }
    drop(op);
    assert_eq!(drops.get(), 1);
    let w = Waker::from(Arc::new(CountWaker::default()));
    assert!(poll(&mut write, &w).is_ready());
    assert_eq!(d.borrow().live_ops(), 0);
}

#[test]
fn dropping_driver_with_1024_ops_in_flight_is_bounded() {
    let d = driver(256, Some(2048));
    let drops = Rc::new(Cell::new(0));
    let (r, _w) = pipe();
    let mut ops = Vec::new();
    for i in 0..1024 {
        if i % 2 == 0 {
            ops.push(Box::new(
                Op::submit(&d, Read::new(r.clone(), DropBuf::new(8, &drops), u64::MAX)).unwrap(),
            ) as Box<dyn std::any::Any>);
        } else {
            ops.push(Box::new(
                Op::submit(&d, Timeout::new(Duration::from_secs(3600))).unwrap(),
            ));
        }
    }
    turn(&d, Wait::No);
    drop(ops);
    assert_eq!(drops.get(), 0);
    let t0 = Instant::now();
    drop(Rc::try_unwrap(d).ok().expect("sole owner"));
    assert!(
        t0.elapsed() < SHUTDOWN_GRACE,
        "shutdown took {:?}",
        t0.elapsed()
    );
    assert_eq!(
        drops.get(),
        512,
        "every abandoned buffer freed after its CQE"
    );
}

#[test]
fn small_ring_completes_50_concurrent_and_600_queued() {
    let d = driver(2, Some(4));
    if skip_on_epoll(&d, "no ring, so no small ring to overflow") {
        return;
    }
    assert_eq!(d.borrow_mut().ring_stats().cq_entries, 4);
    let w = Waker::from(Arc::new(CountWaker::default()));
    // 50 concurrent timeouts of 1 ms, then 600 NOPs, all queued at once:
    // far more completions than the CQ holds, which the kernel keeps on its
    // overflow list (IORING_FEAT_NODROP) until they are flushed.
    let mut timeouts: Vec<_> = (0..50)
        .map(|_| Some(Op::submit(&d, Timeout::new(Duration::from_millis(1))).unwrap()))
        .collect();
    let mut nops: Vec<_> = (0..600)
        .map(|_| Some(Op::submit(&d, Nop).unwrap()))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut done = 0;
    while done < 650 {
        assert!(Instant::now() < deadline, "only {done} of 650 completed");
        turn(&d, Wait::For(Duration::from_millis(5)));
        for slot in timeouts.iter_mut().chain(std::iter::empty()) {
            if let Some(op) = slot {
                if let Poll::Ready(r) = poll(op, &w) {
                    r.unwrap();
                    *slot = None;
                    done += 1;
                }
            }
        }
        for slot in nops.iter_mut() {
            if let Some(op) = slot {
                if let Poll::Ready(r) = poll(op, &w) {
                    assert_eq!(r.unwrap(), 0);
                    *slot = None;
                    done += 1;
                }
            }
        }
    }
    assert_eq!(d.borrow().stats().stale_cqes, 0);
    assert_eq!(d.borrow().live_ops(), 0);
    assert_eq!(d.borrow_mut().ring_stats().cq_overflow, 0, "no CQE dropped");
}

#[test]
fn late_or_duplicate_cqe_never_completes_a_new_op() {
    let d = driver(8, None);
    let w = Waker::from(Arc::new(CountWaker::default()));
    // An op completes and its slot is freed...
    let mut old = Op::submit(&d, Nop).unwrap();
    let old_key = old.key_for_test();
    while poll(&mut old, &w).is_pending() {
        turn(&d, Wait::For(Duration::from_millis(10)));
    }
    // ...then a new op reuses the slot with a new generation.
    let (r, _w) = pipe();
    let mut new = Op::submit(&d, Read::new(r, Vec::with_capacity(4), u64::MAX)).unwrap();
    let new_key = new.key_for_test();
    assert_eq!(old_key.index, new_key.index, "slab reuses the freed slot");
    assert_ne!(old_key.generation, new_key.generation);
    turn(&d, Wait::No);
    // A duplicate of the old CQE arrives late.
    d.borrow_mut().complete(old_key.user_data(), 0, 0);
    assert_eq!(d.borrow().stats().stale_cqes, 1);
    assert!(
        poll(&mut new, &w).is_pending(),
        "the new op was completed by a stale CQE"
    );
    drop(new);
    wait_until_idle(&d);
}

#[test]
fn unsupported_opcode_is_a_clear_error() {
    struct Bogus;
    // SAFETY: never submitted (the probe rejects it); carries no pointer.
    unsafe impl OpCode for Bogus {
        type Output = ();
        const CODE: u8 = 250;
        const NAME: &'static str = "IORING_OP_BOGUS";
        fn sqe(&mut self) -> io_uring::squeue::Entry {
            io_uring::opcode::Nop::new().build()
        }
        fn complete(self, _: Completion) {}
    }
    let d = driver(8, None);
    let e = Op::submit(&d, Bogus).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::Unsupported);
    assert!(e.to_string().contains("IORING_OP_BOGUS"), "{e}");
}

#[test]
fn idle_turn_makes_no_syscall() {
    let d = driver(8, None);
    if skip_on_epoll(
        &d,
        "readiness is only known by asking the kernel (epoll_wait)",
    ) {
        return;
    }
    let before = d.borrow().stats().enters;
    for _ in 0..1000 {
        turn(&d, Wait::No);
    }
    assert_eq!(
        d.borrow().stats().enters,
        before,
        "a turn with nothing to do entered the kernel"
    );
}

#[test]
fn wake_eventfd_ends_a_wait() {
    let d = driver(8, None);
    let fd = Arc::new(crate::sys::eventfd().unwrap());
    d.borrow_mut().enable_wake(fd.clone());
    turn(&d, Wait::No);
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        crate::sys::eventfd_signal(&fd);
    });
    let t0 = Instant::now();
    while !d.borrow_mut().take_woken() {
        assert!(t0.elapsed() < Duration::from_secs(5));
        turn(&d, Wait::For(Duration::from_secs(5)));
    }
    t.join().unwrap();
}

/// Several wake-ups in a row, in each wake mode: the multishot poll stays
/// armed (no re-submission), the read fallback re-arms itself; each write
/// ends exactly one wait, and an idle turn afterwards blocks again (no
/// spurious wake-up storm from the never-read counter).
fn repeated_wakes(d: &Rc<RefCell<Driver>>, fd: &Arc<OwnedFd>) {
    turn(d, Wait::No);
    d.borrow_mut().take_woken();
    for round in 0..5 {
        let fd2 = fd.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(5));
            crate::sys::eventfd_signal(&fd2);
        });
        let t0 = Instant::now();
        while !d.borrow_mut().take_woken() {
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "round {round}: no wake-up"
            );
            turn(d, Wait::For(Duration::from_secs(5)));
        }
        t.join().unwrap();
    }
    // Nothing written since: a bounded wait times out without a wake-up.
    let t0 = Instant::now();
    turn(d, Wait::For(Duration::from_millis(30)));
    assert!(!d.borrow_mut().take_woken(), "spurious wake-up");
    assert!(t0.elapsed() >= Duration::from_millis(30));
}

#[test]
fn wake_multishot_poll_ends_one_wait_per_write() {
    let d = driver(8, None);
    let fd = Arc::new(crate::sys::eventfd().unwrap());
    d.borrow_mut().enable_wake(fd.clone());
    repeated_wakes(&d, &fd);
    assert!(matches!(
        d.borrow().wake.as_ref().unwrap().mode,
        WakeMode::MultishotPoll
    ));
}

#[test]
fn wake_read_fallback_ends_one_wait_per_write() {
    let d = driver(8, None);
    if skip_on_epoll(&d, "the READ fallback is for rings without multishot poll") {
        return;
    }
    let fd = Arc::new(crate::sys::eventfd().unwrap());
    {
        // As on a kernel that refused the multishot poll.
        let mut dr = d.borrow_mut();
        dr.wake = Some(WakeRead {
            fd: fd.clone(),
            armed: false,
            mode: WakeMode::Read(Box::new(0)),
        });
        dr.arm_wake();
    }
    repeated_wakes(&d, &fd);
}

#[test]
fn send_zc_completes_twice_and_hands_the_buffer_back() {
    use super::op::MultiOp;
    use super::op::send_zc::{SendZc, SendZcOp};
    use std::io::Read as _;

    let d = driver(8, None);
    if skip_on_epoll(&d, "SEND_ZC is an io_uring opcode") {
        return;
    }
    if !d.borrow().supports(io_uring::opcode::SendZc::CODE) {
        eprintln!("skipped: the kernel lacks IORING_OP_SEND_ZC (Linux 6.0+)");
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).expect("connect");
    let (mut peer, _) = listener.accept().expect("accept");
    let data: Vec<u8> = (0..4096u32).map(|i| (i % 251) as u8).collect();
    let op = MultiOp::submit(&d, SendZc::new(Rc::new(client), data.clone())).unwrap();
    let mut fut = SendZcOp::new(op);
    let w = Waker::from(Arc::new(CountWaker::default()));
    let deadline = Instant::now() + Duration::from_secs(5);
    let done = loop {
        if let Poll::Ready(done) = poll(&mut fut, &w) {
            break done;
        }
        assert!(Instant::now() < deadline, "SEND_ZC never completed");
        turn(&d, Wait::For(Duration::from_millis(10)));
    };
    assert_eq!(done.res.unwrap(), data.len());
    assert_eq!(done.buf, data, "the buffer comes back unchanged");
    // Loopback delivers a copy (the kernel's msg_zerocopy.rst, "Loopback"),
    // and the notification says so.
    assert!(done.copied, "loopback SEND_ZC not reported as copied");
    assert_eq!(
        d.borrow().live_ops(),
        0,
        "the slot outlived the notification"
    );
    let mut got = vec![0; data.len()];
    peer.read_exact(&mut got).expect("read");
    assert_eq!(got, data);
}
