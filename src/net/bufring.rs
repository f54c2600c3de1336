//! Receiving into a shared pool of buffers: [`BufGroup`], [`RecvStream`]
//! and [`Chunk`].
//!
//! A plain `read(buf)` hands the kernel its buffer up front, so every
//! connection waiting for data holds one (4–16 KiB each, for thousands of
//! idle connections). A [`RecvStream`] instead lets the kernel pick a
//! buffer from a [`BufGroup`] only when bytes arrive (io_uring's provided
//! buffer rings, `IORING_REGISTER_PBUF_RING`, with a multishot receive:
//! one submission, a completion per arrival); an idle connection holds no
//! buffer. Each [`Chunk`] goes back to its group when dropped.
//!
//! How it works on each backend and kernel, and what is guaranteed: see
//! [`RecvStream`].

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::io;
use std::ops::Deref;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, ready};

use slab::Slab;

use super::socket::Socket;
use crate::buf::IoBuf;
use crate::buf::kept::KeepsReads;
use crate::driver::Completion;
use crate::driver::bufring::{Provided, buffer_id};
use crate::driver::op::kept_read::KeptRead;
use crate::driver::op::recv_provided::{RecvMulti, RecvSelect};
use crate::driver::op::{MultiOp, Op};

/// Buffers in the loop's default group at first ([`BufGroup::loop_default`]).
const DEFAULT_COUNT: usize = 16;
/// The most buffers the default group grows to.
const DEFAULT_MAX: usize = 4096;
/// The default group's buffer size.
const DEFAULT_SIZE: usize = 16 * 1024;

/// A pool of equal buffers that receives on this loop pick from when data
/// arrives (io_uring's provided buffer ring; see [`RecvStream`]).
///
/// Cheap to clone (a shared handle). Belongs to the loop it was made on.
///
/// # Examples
///
/// ```
/// use ringloop::net::{BufGroup, TcpListener, TcpStream};
/// ringloop::run(async {
///     let group = BufGroup::new(64, 4096)?; // 64 buffers of 4 KiB
///     let listener = TcpListener::bind("127.0.0.1:0")?;
///     let client = TcpStream::connect(listener.local_addr()?).await?;
///     let (server, _) = listener.accept().await?;
///     let (res, _) = client.write_all(b"hello".to_vec()).await;
///     res?;
///     drop(client); // end of stream after the bytes
///     let mut chunks = server.recv_stream(&group);
///     let mut got = Vec::new();
///     while let Some(chunk) = chunks.next().await {
///         got.extend_from_slice(&chunk?); // the buffer goes back here
///     }
///     assert_eq!(got, b"hello");
///     Ok::<(), std::io::Error>(())
/// })
/// .unwrap()
/// .unwrap();
/// ```
#[derive(Clone)]
pub struct BufGroup {
    group: Rc<Group>,
}

struct Group {
    provided: Rc<Provided>,
    /// Per stream: chunks it produced that are still out, and whether the
    /// stream still lives (an entry goes when both are done).
    holders: RefCell<Slab<Holder>>,
    /// Receives that found the group empty (`ENOBUFS`).
    empty: Cell<u64>,
}

struct Holder {
    /// At most the group's buffer count (a `u16`).
    out: u32,
    alive: bool,
}

impl Group {
    fn ring(&self) -> &crate::driver::bufring::BufRing {
        self.provided.ring()
    }

    fn holder_out(&self, h: u32) -> usize {
        self.holders.borrow()[h as usize].out as usize
    }

    fn holder_add(&self, h: u32, n: i32) {
        let mut hs = self.holders.borrow_mut();
        let e = &mut hs[h as usize];
        e.out = e.out.wrapping_add_signed(n);
        if e.out == 0 && !e.alive {
            hs.remove(h as usize);
        }
    }

    /// Buffer `bid` comes back from a chunk of stream `h`.
    fn give_back(&self, bid: u16, h: u32) {
        self.ring().provide(bid);
        self.holder_add(h, -1);
        self.ring().wake_waiters();
    }
}

impl BufGroup {
    /// A group of `count` buffers of `buf_size` bytes each, on the loop
    /// running on this thread. Memory is allocated at once but touched
    /// (resident) only where data lands.
    ///
    /// # Errors
    ///
    /// No running loop; `InvalidInput` for `count` 0 or over 32,768 (the
    /// kernel's limit), `buf_size` 0 or over `u32::MAX`; `OutOfMemory`;
    /// the kernel's registration failures.
    pub fn new(count: usize, buf_size: usize) -> io::Result<BufGroup> {
        BufGroup::growable(count, buf_size, count)
    }

    /// A group of `count` buffers of `buf_size` bytes that grows (doubling)
    /// up to `max_count` buffers when a receive finds it empty. It never
    /// shrinks.
    ///
    /// # Errors
    ///
    /// As for [`BufGroup::new`]; `InvalidInput` for `max_count < count` or
    /// over 32,768.
    pub fn growable(count: usize, buf_size: usize, max_count: usize) -> io::Result<BufGroup> {
        let driver = crate::runtime::current_driver()?;
        let provided = Provided::new(&driver, count, max_count, buf_size)?;
        Ok(BufGroup {
            group: Rc::new(Group {
                provided: Rc::new(provided),
                holders: RefCell::new(Slab::new()),
                empty: Cell::new(0),
            }),
        })
    }

    /// The loop's default group, made on first use: 16 buffers of 16 KiB,
    /// growing to 4,096. The streams layer's readers receive through it.
    ///
    /// # Errors
    ///
    /// As for [`BufGroup::new`].
    pub fn loop_default() -> io::Result<BufGroup> {
        let driver = crate::runtime::current_driver()?;
        let existing = driver
            .borrow_mut()
            .default_group()
            .as_ref()
            .and_then(|g| g.clone().downcast::<Group>().ok());
        if let Some(group) = existing {
            return Ok(BufGroup { group });
        }
        let made = BufGroup::growable(DEFAULT_COUNT, DEFAULT_SIZE, DEFAULT_MAX)?;
        *driver.borrow_mut().default_group() = Some(made.group.clone());
        Ok(made)
    }

    /// Each buffer's size in bytes (the most one chunk holds).
    pub fn buf_size(&self) -> usize {
        self.group.ring().buf_size()
    }

    /// Buffers in the group now.
    pub fn len(&self) -> usize {
        self.group.ring().count()
    }

    /// Always false: a group has at least one buffer.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Buffers not out in chunks (or in completions not yet taken).
    pub fn available(&self) -> usize {
        self.group.ring().available()
    }

    /// How many times a receive found the group empty (`ENOBUFS`) and had
    /// to wait for a buffer or grow the group: a group too small for its
    /// load shows here.
    pub fn times_empty(&self) -> u64 {
        self.group.empty.get()
    }

    /// Whether receives use a kernel buffer ring (false on io_uring kernels
    /// before 5.19, where each waiting receive holds a heap buffer).
    pub fn is_provided(&self) -> bool {
        self.group.provided.bgid().is_some()
    }

    #[cfg(test)]
    fn force_fallback(&mut self, no_ring: bool) {
        let g = Rc::get_mut(&mut self.group).expect("a fresh group");
        let p = Rc::get_mut(&mut g.provided).expect("a fresh group");
        if no_ring {
            p.force_unregistered();
        } else {
            p.no_multishot();
        }
    }
}

impl fmt::Debug for BufGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufGroup")
            .field("buf_size", &self.buf_size())
            .field("len", &self.len())
            .field("available", &self.available())
            .field("provided", &self.is_provided())
            .finish()
    }
}

/// Bytes received into a buffer of a [`BufGroup`] (or, where no buffer
/// ring is used, into a heap buffer). Dereferences to the bytes; the
/// buffer goes back to its group when the chunk is dropped.
///
/// A chunk is an [`IoBuf`], so it can be written out as it is
/// (`stream.write_all(chunk)`). It is `!Send`: it belongs to its loop.
///
/// ```compile_fail
/// fn send<T: Send>(_: T) {}
/// fn chunk(c: ringloop::net::Chunk) { send(c) }
/// ```
pub struct Chunk {
    inner: ChunkInner,
}

enum ChunkInner {
    Ring {
        group: Rc<Group>,
        bid: u16,
        len: u32,
        holder: u32,
    },
    Owned(Vec<u8>),
}

impl Chunk {
    /// The bytes as a `Vec`: copied out of a group's buffer (which goes
    /// back to its group), or the heap buffer itself.
    pub fn into_vec(mut self) -> Vec<u8> {
        match &mut self.inner {
            ChunkInner::Owned(v) => std::mem::take(v),
            ChunkInner::Ring { .. } => self.to_vec(),
        }
    }
}

impl Deref for Chunk {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.inner {
            ChunkInner::Ring {
                group, bid, len, ..
            } => {
                // SAFETY: the chunk owns buffer `bid` (out of the ring
                // until this chunk is dropped), into which the kernel
                // wrote `len` bytes.
                unsafe { group.ring().bytes(*bid, *len as usize) }
            }
            ChunkInner::Owned(v) => v,
        }
    }
}

impl AsRef<[u8]> for Chunk {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        if let ChunkInner::Ring {
            group, bid, holder, ..
        } = &self.inner
        {
            group.give_back(*bid, *holder);
        }
    }
}

// SAFETY: the bytes live in the group's ring memory (held by the chunk's
// `Rc`, never freed or moved while the chunk lives) or in the chunk's own
// `Vec` (heap storage that does not move with it); all `len` bytes were
// written by a receive, and nobody writes them while the chunk lives.
unsafe impl IoBuf for Chunk {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
    fn bytes_total(&self) -> usize {
        self.len()
    }
}

impl fmt::Debug for Chunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.inner {
            ChunkInner::Ring { bid, .. } => format!("buffer {bid}"),
            ChunkInner::Owned(_) => "heap".to_owned(),
        };
        f.debug_struct("Chunk")
            .field("len", &self.len())
            .field("in", &kind)
            .finish()
    }
}

/// The chunks received on a stream socket, from a [`BufGroup`]'s buffers:
/// a [`Stream`](futures_util::Stream) of `io::Result<Chunk>` that ends at
/// the peer's end of stream (and after an error). Made by
/// `recv_stream` on [`TcpStream`](super::TcpStream),
/// [`UnixStream`](super::UnixStream) and
/// [`OwnedReadHalf`](super::OwnedReadHalf).
///
/// A plain `read(buf)` hands the kernel its buffer up front, so every
/// connection waiting for data holds one. A `RecvStream` lets the kernel
/// pick a buffer from the group only when bytes arrive: an idle
/// connection holds none.
///
/// While it lives its receive stays armed (one submission for many
/// chunks), and other reads of the socket wait for it to be dropped.
///
/// Backends and kernels (the behaviour is the same everywhere; only the
/// memory differs):
///
/// | where | how |
/// |---|---|
/// | io_uring, Linux 6.0+ | multishot receive from a registered buffer ring |
/// | io_uring, Linux 5.19 | one-shot receive selecting from the ring, re-armed after each chunk |
/// | io_uring before 5.19 | a one-shot receive into a heap buffer of the group's size (each waiting receive holds its buffer, as `read` does) |
/// | epoll | on readiness, the backend takes a buffer from the group and receives into it |
///
/// # Guarantees
///
/// - **No lost bytes.** Dropping a [`RecvStream`] cancels its receive;
///   what the kernel delivered meanwhile is kept on the socket and comes
///   first on its next read (or next stream).
/// - **An empty group never loses data.** When every buffer is out (in
///   chunks not yet dropped), the receive stops with `ENOBUFS` and the
///   bytes wait in the socket; the stream grows the group if it may
///   ([`BufGroup::growable`]), else waits until a chunk comes back. A
///   stream that holds *every* buffer of its group itself, and asks for
///   more, gets the next chunk in a heap buffer instead of waiting forever.
/// - **Memory.** The kernel writes only into buffers of the group, which
///   stay allocated while the kernel may pick from them (the group is
///   unregistered once nothing uses it). Chunks are `!Send`: they return
///   to their loop's group; one dropped after its loop has gone just frees
///   memory.
pub struct RecvStream {
    socket: Socket,
    group: Rc<Group>,
    holder: u32,
    /// The group's size when the receive was last armed: an `ENOBUFS`
    /// grows the group only if no other stream grew it since.
    armed_at: u16,
    state: State,
}

enum State {
    /// Nothing in flight: the next poll serves kept bytes or arms.
    Idle,
    Multi(MultiOp<RecvMulti<Socket>>),
    /// (Boxed: only kernels without the multishot receive (5.19) take this
    /// path, and the stream, in every connection's task, stays smaller.)
    Once(Box<Op<RecvSelect<Socket>>>),
    /// Into a heap buffer (no buffer ring, or this stream holds them all).
    Owned(Box<Op<KeptRead<Socket, Vec<u8>>>>),
    /// The group was empty (`ENOBUFS`): waiting for a buffer to come back.
    NoBufs,
    /// Failed before it started (a group of another loop).
    Refused(io::Error),
    /// Ended: end of stream, or an error was yielded.
    Done,
}

/// What one completion means for the stream.
enum Got {
    Chunk(Chunk),
    End,
    NoBufs,
    Refused,
    Again,
    Failed(io::Error),
}

impl RecvStream {
    pub(crate) fn new(socket: Socket, group: &BufGroup) -> RecvStream {
        let group = group.group.clone();
        let state = if group.provided.belongs_to(socket.driver()) {
            State::Idle
        } else {
            State::Refused(io::Error::new(
                io::ErrorKind::InvalidInput,
                "recv_stream: the buffer group belongs to another event loop",
            ))
        };
        let holder = group.holders.borrow_mut().insert(Holder {
            out: 0,
            alive: true,
        }) as u32;
        RecvStream {
            socket,
            group,
            holder,
            armed_at: 0,
            state,
        }
    }

    /// The next chunk; `None` after the end of stream or an error.
    ///
    /// Cancel-safe: dropping the future loses nothing (the receive stays
    /// armed on the stream; dropping the stream keeps what it got).
    pub async fn next(&mut self) -> Option<io::Result<Chunk>> {
        std::future::poll_fn(|cx| self.poll_chunk(cx)).await
    }

    /// What a completion carries (see [`Got`]).
    fn got(&self, c: Completion) -> Got {
        if let Some(bid) = buffer_id(c.flags) {
            if c.result > 0 {
                self.group.holder_add(self.holder, 1);
                return Got::Chunk(Chunk {
                    inner: ChunkInner::Ring {
                        group: self.group.clone(),
                        bid,
                        len: c.result as u32,
                        holder: self.holder,
                    },
                });
            }
            // An empty or failed receive that still took a buffer.
            self.group.ring().provide(bid);
            self.group.ring().wake_waiters();
        }
        match c.result {
            0 => Got::End,
            r if r == -libc::ENOBUFS => Got::NoBufs,
            r if r == -libc::EINVAL => Got::Refused,
            r if r == -libc::EINTR => Got::Again,
            r if r < 0 => Got::Failed(io::Error::from_raw_os_error(-r)),
            r => Got::Failed(io::Error::other(format!(
                "recv_stream: the kernel reported {r} bytes without naming a buffer"
            ))),
        }
    }

    /// Bytes, an error or the end that an abandoned read kept: they come
    /// before anything the kernel still has.
    fn serve_kept(&self) -> Option<io::Result<Option<Chunk>>> {
        let kept = self.socket.kept();
        let mut buf = Vec::with_capacity(kept.len());
        match kept.serve(&mut buf)? {
            Ok(0) => Some(Ok(None)),
            Ok(_) => Some(Ok(Some(Chunk {
                inner: ChunkInner::Owned(buf),
            }))),
            Err(e) => Some(Err(e)),
        }
    }

    /// Starts a receive (the group has a buffer, or has no ring).
    fn arm(&mut self) -> io::Result<State> {
        self.armed_at = self.group.ring().count() as u16;
        let provided = &self.group.provided;
        let driver = self.socket.driver();
        if provided.bgid().is_none() {
            return self.owned();
        }
        if provided.multishot() {
            let op = RecvMulti::new(&self.socket, provided).expect("the group has a ring");
            return Ok(State::Multi(MultiOp::submit(driver, op)?));
        }
        let op = RecvSelect::new(&self.socket, provided).expect("the group has a ring");
        match Op::try_submit(driver, op) {
            Ok(op) => Ok(State::Once(Box::new(op))),
            Err((e, _)) => Err(e),
        }
    }

    /// A receive into a heap buffer of the group's size.
    fn owned(&self) -> io::Result<State> {
        let buf = Vec::with_capacity(self.group.ring().buf_size());
        match Op::try_submit(self.socket.driver(), KeptRead::new(&self.socket, buf)) {
            Ok(op) => Ok(State::Owned(Box::new(op))),
            Err((e, _)) => Err(e),
        }
    }

    /// The group ran dry (`ENOBUFS`): grow it if it may (the demand
    /// outran it), else re-arm if a buffer came back, else take a heap
    /// buffer if this stream holds every buffer itself, else wait for one
    /// to come back.
    ///
    /// Growth comes first: "a buffer came back" races with every other
    /// stream of the group, and a group smaller than its connections'
    /// demand re-armed into `ENOBUFS` again and again (measured: 2.3 arms
    /// per chunk, at 100 connections on a group that stayed at 32). But
    /// once per dry spell: the streams that saw the same `ENOBUFS` re-arm
    /// on the grown group (measured: growing per stream took the group
    /// to its 4,096 maximum for 100 connections).
    fn poll_buffers(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<State>> {
        let ring = self.group.ring();
        if ring.count() > usize::from(self.armed_at) {
            // Another stream grew it meanwhile: one growth per dry spell,
            // not one per stream that saw it.
            return Poll::Ready(Ok(State::Idle));
        }
        if ring.grow()? {
            ring.wake_waiters();
            return Poll::Ready(Ok(State::Idle));
        }
        if ring.available() > 0 {
            return Poll::Ready(Ok(State::Idle));
        }
        if self.group.holder_out(self.holder) >= ring.count() {
            return Poll::Ready(self.owned());
        }
        ring.wait(cx.waker());
        Poll::Pending
    }

    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Chunk>>> {
        loop {
            let got = match &mut self.state {
                State::Done => return Poll::Ready(None),
                State::Refused(_) => {
                    let State::Refused(e) = std::mem::replace(&mut self.state, State::Done) else {
                        unreachable!("matched above")
                    };
                    return Poll::Ready(Some(Err(e)));
                }
                State::Idle => {
                    ready!(self.socket.kept().poll_landed(cx));
                    match self.serve_kept() {
                        Some(Ok(Some(chunk))) => return Poll::Ready(Some(Ok(chunk))),
                        Some(Ok(None)) => {
                            self.state = State::Done;
                            return Poll::Ready(None);
                        }
                        Some(Err(e)) => {
                            self.state = State::Done;
                            return Poll::Ready(Some(Err(e)));
                        }
                        None => {}
                    }
                    if self.group.provided.bgid().is_some() && self.group.ring().available() == 0 {
                        // As if armed into `ENOBUFS` (which it would be).
                        self.armed_at = self.group.ring().count() as u16;
                        self.state = State::NoBufs;
                        continue;
                    }
                    match self.arm() {
                        Ok(s) => self.state = s,
                        Err(e) => {
                            self.state = State::Done;
                            return Poll::Ready(Some(Err(e)));
                        }
                    }
                    continue;
                }
                State::NoBufs => {
                    match ready!(self.poll_buffers(cx)) {
                        Ok(s) => self.state = s,
                        Err(e) => {
                            self.state = State::Done;
                            return Poll::Ready(Some(Err(e)));
                        }
                    }
                    continue;
                }
                State::Multi(op) => match ready!(op.poll_next(cx)) {
                    None => {
                        self.state = State::Idle;
                        continue;
                    }
                    Some(c) => {
                        let more = io_uring::cqueue::more(c.flags);
                        let got = self.got(c);
                        if matches!(got, Got::Refused) {
                            // Linux 5.19 knows buffer rings but not the
                            // multishot receive: one-shot from now on.
                            self.group.provided.no_multishot();
                            self.state = State::Idle;
                            continue;
                        }
                        if !more {
                            self.state = State::Idle;
                        }
                        got
                    }
                },
                State::Once(op) => {
                    let c = ready!(Pin::new(&mut **op).poll(cx));
                    self.state = State::Idle;
                    match self.got(c) {
                        Got::Refused => Got::Failed(io::Error::from_raw_os_error(libc::EINVAL)),
                        got => got,
                    }
                }
                State::Owned(op) => {
                    let (res, buf) = ready!(Pin::new(&mut **op).poll(cx));
                    self.state = State::Idle;
                    match res {
                        Ok(0) => Got::End,
                        Ok(_) => Got::Chunk(Chunk {
                            inner: ChunkInner::Owned(buf),
                        }),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => Got::Again,
                        Err(e) => Got::Failed(e),
                    }
                }
            };
            match got {
                Got::Chunk(chunk) => return Poll::Ready(Some(Ok(chunk))),
                Got::End => {
                    self.state = State::Done;
                    return Poll::Ready(None);
                }
                Got::NoBufs => {
                    self.group.empty.set(self.group.empty.get() + 1);
                    self.state = State::NoBufs;
                }
                Got::Refused | Got::Again => {}
                Got::Failed(e) => {
                    self.state = State::Done;
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
    }
}

impl futures_util::Stream for RecvStream {
    type Item = io::Result<Chunk>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_chunk(cx)
    }
}

impl Drop for RecvStream {
    fn drop(&mut self) {
        // The receive first (its orphan keeps what it got), then this
        // stream's count of chunks out.
        self.state = State::Done;
        let mut hs = self.group.holders.borrow_mut();
        let h = &mut hs[self.holder as usize];
        h.alive = false;
        if h.out == 0 {
            hs.remove(self.holder as usize);
        }
    }
}

impl fmt::Debug for RecvStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Idle => "idle",
            State::Multi(_) => "multishot",
            State::Once(_) => "one-shot",
            State::Owned(_) => "heap buffer",
            State::NoBufs => "waiting for a buffer",
            State::Refused(_) => "refused",
            State::Done => "done",
        };
        f.debug_struct("RecvStream")
            .field("socket", &self.socket)
            .field("state", &state)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::UnixStream;

    /// Byte `i` of the test stream.
    fn byte(i: usize) -> u8 {
        (i % 251) as u8
    }

    /// 256 KiB through `group` with a stream dropped every few chunks and
    /// a plain read now and then: exact, and every buffer back.
    async fn transfer_with_drops(group: BufGroup) {
        const TOTAL: usize = 256 << 10;
        let (a, b) = UnixStream::pair().unwrap();
        let writer = crate::spawn(async move {
            let data: Vec<u8> = (0..TOTAL).map(byte).collect();
            let (res, _) = a.write_all(data).await;
            res.unwrap();
        });
        let mut got = Vec::with_capacity(TOTAL);
        let mut round = 0usize;
        'outer: while got.len() < TOTAL {
            round += 1;
            if round % 5 == 0 {
                let (res, buf) = b.read(Vec::with_capacity(700)).await;
                assert!(res.unwrap() > 0);
                got.extend_from_slice(&buf);
                continue;
            }
            let mut chunks = b.recv_stream(&group);
            for _ in 0..(round % 4 + 1) {
                match chunks.next().await {
                    Some(c) => got.extend_from_slice(&c.unwrap()),
                    None => break 'outer,
                }
            }
        }
        assert_eq!(got.len(), TOTAL);
        assert!(
            got.iter().enumerate().all(|(i, &x)| x == byte(i)),
            "bytes differ"
        );
        writer.await.unwrap();
        crate::sleep(std::time::Duration::from_millis(5)).await;
        assert_eq!(group.available(), group.len());
    }

    /// Linux 5.19's path: one-shot receives selecting from the ring.
    #[test]
    fn one_shot_selecting_receives_lose_nothing() {
        crate::run(async {
            let mut group = BufGroup::new(4, 512).unwrap();
            group.force_fallback(false);
            assert!(!group.group.provided.multishot());
            transfer_with_drops(group).await;
        })
        .unwrap();
    }

    /// The path of kernels without buffer rings: heap buffers.
    #[test]
    fn heap_buffer_receives_lose_nothing() {
        crate::run(async {
            let mut group = BufGroup::new(4, 512).unwrap();
            group.force_fallback(true);
            assert!(!group.is_provided());
            transfer_with_drops(group).await;
        })
        .unwrap();
    }

    #[test]
    fn multishot_receives_lose_nothing() {
        crate::run(async {
            let group = BufGroup::new(4, 512).unwrap();
            assert!(group.is_provided());
            transfer_with_drops(group).await;
        })
        .unwrap();
    }

    #[test]
    fn the_loop_default_group_is_made_once_per_loop() {
        crate::run(async {
            let a = BufGroup::loop_default().unwrap();
            let b = BufGroup::loop_default().unwrap();
            assert!(Rc::ptr_eq(&a.group, &b.group));
            assert_eq!((a.len(), a.buf_size()), (DEFAULT_COUNT, DEFAULT_SIZE));
        })
        .unwrap();
        crate::run(async {
            let c = BufGroup::loop_default().unwrap();
            let (x, y) = UnixStream::pair().unwrap();
            let mut s = y.recv_stream(&c);
            let (res, _) = x.write_all(b"new loop".to_vec()).await;
            res.unwrap();
            assert_eq!(&s.next().await.unwrap().unwrap()[..], b"new loop");
        })
        .unwrap();
    }
}
