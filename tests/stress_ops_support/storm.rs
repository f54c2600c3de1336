//! The cancellation storm: workers on one loop start ops of every kind
//! (recv on TCP and Unix streams, reads of a file and of an empty pipe,
//! accepts on TCP and Unix listeners, opens, sleeps) and cancel each at a
//! random stage (before its first poll, polled once, in flight, completed
//! but not collected) through a random means (drop, `wait_for`, a dropped
//! `gather`, a failing `gather` or `task_group` sibling, a cancelled task).
//! Every result that does arrive is checked; streams carry a known byte
//! sequence, so a lost, duplicated or reordered byte fails the run.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use ringloop::fs::File;
use ringloop::net::{TcpListener, TcpStream, UnixAddr, UnixListener, UnixStream};
use ringloop::{Task, TaskGroup, gather, gather_tasks, sleep, spawn, task_group, wait_for};

use super::conns::{Conn, HANG, Listener, Lst, Stream, linger_zero, listener, pipe, stream};
use super::counted::CountedBuf;
use super::{poll_once, poll_until_woken, turns};
use crate::common::XorShift;

type BoxFut = Pin<Box<dyn Future<Output = ()>>>;

fn us(n: u64) -> Duration {
    Duration::from_micros(n)
}

/// What the whole run shares: the op budget and the counters.
pub struct Shared {
    pub target: u64,
    pub started: Cell<u64>,
    /// Ops whose future ran to its end (result checked).
    pub resolved: Cell<u64>,
    /// `wait_for`s that timed out.
    pub timeouts: Cell<u64>,
    /// Ops dropped after their completion arrived (woke the task) but
    /// before their future collected it.
    pub dropped_completed: Cell<u64>,
    /// RSS and live heap bytes (KiB) each time another 10% of the ops had
    /// started.
    pub rss_deciles: RefCell<Vec<(u64, u64)>>,
    pub file: PathBuf,
    pub content: Rc<Vec<u8>>,
}

impl Shared {
    pub fn new(target: u64, file: PathBuf, content: Vec<u8>) -> Shared {
        Shared {
            target,
            started: Cell::new(0),
            resolved: Cell::new(0),
            timeouts: Cell::new(0),
            dropped_completed: Cell::new(0),
            rss_deciles: RefCell::new(Vec::new()),
            file,
            content: Rc::new(content),
        }
    }

    /// RSS when `pct`% of the ops had started.
    pub fn rss_at(&self, pct: usize) -> Option<u64> {
        let i = (pct / 10).checked_sub(1)?;
        self.rss_deciles.borrow().get(i).map(|d| d.0)
    }

    /// Takes `n` ops from the budget; false once it is spent.
    fn claim(&self, n: u64) -> bool {
        let s = self.started.get();
        if s >= self.target {
            return false;
        }
        self.started.set(s + n);
        let mut deciles = self.rss_deciles.borrow_mut();
        if (s + n) * 10 >= self.target * (deciles.len() as u64 + 1) {
            deciles.push((super::rss_kib(), super::heap::live_kib()));
        }
        true
    }

    fn resolved(&self) {
        self.resolved.set(self.resolved.get() + 1);
    }
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    RecvTcp,
    RecvUnix,
    ReadFile,
    ReadPipe,
    AcceptTcp,
    AcceptUnix,
    Open,
    Sleep,
    /// A connect to a listener whose accept queue is full, under a short
    /// linked kernel timeout (`IORING_OP_LINK_TIMEOUT`): it times out.
    ConnectTimeout,
}

const KINDS: [Kind; 13] = [
    Kind::RecvTcp,
    Kind::RecvTcp,
    Kind::RecvUnix,
    Kind::RecvUnix,
    Kind::ReadFile,
    Kind::ReadFile,
    Kind::ReadPipe,
    Kind::AcceptTcp,
    Kind::AcceptUnix,
    Kind::Open,
    Kind::Open,
    Kind::Sleep,
    Kind::ConnectTimeout,
];

/// One worker's resources.
pub struct Worker {
    shared: Rc<Shared>,
    tcp: Rc<Stream>,
    unix: Rc<Stream>,
    file: Rc<File>,
    /// The read end of a pipe nobody writes (its write end is kept open).
    pipe: Rc<File>,
    _pipe_tx: OwnedFd,
    tcp_l: Rc<Listener>,
    unix_l: Rc<Listener>,
    /// A listener (backlog 1) kept full by two connections nobody accepts.
    full: (TcpListener, [TcpStream; 2], std::net::SocketAddr),
}

impl Worker {
    pub async fn new(shared: Rc<Shared>, id: usize) -> Worker {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("local_addr");
        let c = TcpStream::connect(addr).await.expect("connect");
        let (s, _) = l.accept().await.expect("accept");
        linger_zero(&c);
        let tcp = Rc::new(stream(
            format!("worker {id} tcp"),
            Conn::Tcp(s),
            Conn::Tcp(c),
        ));
        let (a, b) = UnixStream::pair().expect("socketpair");
        let unix = Rc::new(stream(
            format!("worker {id} unix"),
            Conn::Unix(a),
            Conn::Unix(b),
        ));
        let file = Rc::new(File::open(&shared.file).await.expect("open the data file"));
        let (rx, tx) = pipe();
        let pipe = Rc::new(File::from_std(std::fs::File::from(rx)).expect("pipe as File"));
        let name = format!("ringloop-stress-{}-{id}", std::process::id());
        let ul = UnixListener::bind(UnixAddr::from_abstract_name(&name)).expect("bind unix");
        let uaddr = ul.local_addr().expect("unix local_addr");
        let options = ringloop::net::ListenOptions {
            backlog: 1,
            ..Default::default()
        };
        let fl = TcpListener::bind_with("127.0.0.1:0", options).expect("bind");
        let faddr = fl.local_addr().expect("local_addr");
        let f1 = TcpStream::connect(faddr).await.expect("fill the queue");
        let f2 = TcpStream::connect(faddr).await.expect("fill the queue");
        linger_zero(&f1);
        linger_zero(&f2);
        Worker {
            full: (fl, [f1, f2], faddr),
            tcp,
            unix,
            file,
            pipe,
            _pipe_tx: tx,
            tcp_l: Rc::new(listener(Lst::Tcp(l, addr))),
            unix_l: Rc::new(listener(Lst::Unix(ul, uaddr))),
            shared,
        }
    }

    /// Runs rounds until the budget is spent, then checks every stream and
    /// listener; returns the bytes that went through the streams and the
    /// connections accepted (each exactly once).
    pub async fn run(self, seed: u64) -> (u64, u64) {
        let mut rng = XorShift::new(seed);
        while self.shared.claim(1) {
            self.round(&mut rng).await;
            self.tcp_l.prune();
            self.unix_l.prune();
        }
        let bytes = self.tcp.finish().await + self.unix.finish().await;
        let accepted = self.tcp_l.finish().await + self.unix_l.finish().await;
        (bytes, accepted)
    }

    fn stream_of(&self, kind: Kind) -> Option<&Rc<Stream>> {
        match kind {
            Kind::RecvTcp => Some(&self.tcp),
            Kind::RecvUnix => Some(&self.unix),
            _ => None,
        }
    }

    fn listener_of(&self, kind: Kind) -> Option<&Rc<Listener>> {
        match kind {
            Kind::AcceptTcp => Some(&self.tcp_l),
            Kind::AcceptUnix => Some(&self.unix_l),
            _ => None,
        }
    }

    /// Bounds what waits unread or unaccepted (keeps memory and fds flat).
    async fn bound(&self, kind: Kind) {
        if let Some(s) = self.stream_of(kind) {
            s.catch_up(4 * 1024).await;
        }
        if let Some(l) = self.listener_of(kind) {
            l.catch_up(4).await;
        }
    }

    /// Makes the op able to complete: bytes to read, a connection to accept.
    /// Files, opens and sleeps complete anyway; the pipe never does.
    async fn make_ready(&self, kind: Kind, rng: &mut XorShift) {
        if let Some(s) = self.stream_of(kind) {
            s.write(rng.range_usize(1, 512)).await;
        }
        if let Some(l) = self.listener_of(kind) {
            l.connect().await;
        }
    }

    /// Ready now, later (racing the op), or not at all.
    async fn maybe_ready(&self, kind: Kind, rng: &mut XorShift) {
        match rng.range(0, 2) {
            0 => self.make_ready(kind, rng).await,
            1 => match self.stream_of(kind) {
                Some(s) => {
                    s.write_later(us(rng.range(0, 300)), rng.range_usize(1, 512))
                        .await
                }
                None => self.make_ready(kind, rng).await,
            },
            _ => {}
        }
    }

    fn op(&self, kind: Kind, rng: &mut XorShift) -> BoxFut {
        let shared = self.shared.clone();
        let cap = rng.range_usize(1, 4096);
        match kind {
            Kind::RecvTcp | Kind::RecvUnix => {
                let s = self.stream_of(kind).expect("a stream kind").clone();
                Box::pin(async move {
                    let (res, buf) = s.rx.read(CountedBuf::with_capacity(cap)).await;
                    s.check_read(res, &buf, false);
                    shared.resolved();
                })
            }
            Kind::ReadFile => {
                let f = self.file.clone();
                let off = rng.range_usize(0, shared.content.len());
                Box::pin(async move {
                    let (res, buf) = f.read_at(CountedBuf::with_capacity(cap), off as u64).await;
                    let n = res.expect("file read");
                    let want = &shared.content[off..(off + cap).min(shared.content.len())];
                    assert!(n > 0 || want.is_empty(), "short file read at {off}");
                    assert_eq!(buf.as_slice(), &want[..n], "file bytes at {off}");
                    shared.resolved();
                })
            }
            Kind::ReadPipe => {
                let p = self.pipe.clone();
                Box::pin(async move {
                    let (res, buf) = p.read_at(CountedBuf::with_capacity(cap), 0).await;
                    panic!(
                        "a read of a pipe nobody writes completed: {res:?}, {} bytes",
                        buf.as_slice().len()
                    );
                })
            }
            Kind::AcceptTcp | Kind::AcceptUnix => {
                let l = self.listener_of(kind).expect("an accept kind").clone();
                Box::pin(async move {
                    l.accept().await;
                    shared.resolved();
                })
            }
            Kind::Open => Box::pin(async move {
                let f = File::open(&shared.file).await.expect("open");
                drop(f);
                shared.resolved();
            }),
            Kind::ConnectTimeout => {
                let (addr, t) = (self.full.2, us(rng.range(1, 2000)));
                Box::pin(async move {
                    let e = TcpStream::connect_timeout(addr, t)
                        .await
                        .expect_err("a connect to a full listener succeeded");
                    assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
                    shared.resolved();
                })
            }
            Kind::Sleep => {
                let d = us(rng.range(0, 500));
                Box::pin(async move {
                    sleep(d).await;
                    shared.resolved();
                })
            }
        }
    }

    /// One op (with its siblings, for the gather rounds), cancelled at a
    /// random stage through a random means.
    async fn round(&self, rng: &mut XorShift) {
        let kind = KINDS[rng.range_usize(0, KINDS.len() - 1)];
        self.bound(kind).await;
        let never = matches!(kind, Kind::ReadPipe);
        match rng.range(0, 9) {
            // Dropped before its first poll (data may wait for it).
            0 => {
                self.maybe_ready(kind, rng).await;
                drop(self.op(kind, rng));
            }
            // Polled once (queued for the ring), dropped.
            1 => {
                self.maybe_ready(kind, rng).await;
                let mut f = self.op(kind, rng);
                let _ = poll_once(&mut f).await;
            }
            // In flight: in the kernel for a few turns, dropped.
            2 => {
                let mut f = self.op(kind, rng);
                if poll_once(&mut f).await.is_none() {
                    turns(rng.range_usize(1, 4)).await;
                }
            }
            // Completed but not collected: the completion arrived (the op
            // woke its task), the future is dropped without seeing it.
            3 if !never => {
                self.make_ready(kind, rng).await;
                let mut f = self.op(kind, rng);
                if poll_until_woken(&mut f, Duration::from_millis(20)).await == Err(true) {
                    let n = &self.shared.dropped_completed;
                    n.set(n.get() + 1);
                }
            }
            // Runs to the end (its result checked).
            4 if !never => {
                self.make_ready(kind, rng).await;
                wait_for(self.op(kind, rng), Some(HANG))
                    .await
                    .unwrap_or_else(|_| panic!("{kind:?}: ready but not done in {HANG:?}"));
            }
            // wait_for with a zero or short timeout, racing the data.
            5 => {
                self.maybe_ready(kind, rng).await;
                let t = self.timeout(rng);
                let f = self.op(kind, rng);
                if wait_for(f, Some(t)).await.is_err() {
                    self.shared.timeouts.set(self.shared.timeouts.get() + 1);
                }
            }
            // A gather dropped before its children ran, or timed out.
            6 => self.gather_dropped(kind, rng).await,
            // A gather whose sibling is cancelled from outside (G6): the
            // gather fails, then the op's task is cancelled.
            7 => self.gather_sibling_cancelled(kind, rng).await,
            // A task group whose sibling fails (TG2) cancels the op.
            8 => self.group_sibling_fails(kind, rng).await,
            // The op's task is cancelled after a few turns.
            _ => {
                self.maybe_ready(kind, rng).await;
                let t = spawn(self.op(kind, rng));
                turns(rng.range_usize(0, 3)).await;
                if rng.range(0, 1) == 0 {
                    drop(t);
                } else {
                    t.cancel();
                    if let Err(e) = t.await {
                        assert!(e.is_cancelled(), "{kind:?}: {e}");
                    }
                }
            }
        }
    }

    fn timeout(&self, rng: &mut XorShift) -> Duration {
        if rng.range(0, 3) == 0 {
            Duration::ZERO
        } else {
            us(rng.range(1, 300))
        }
    }

    /// The op and up to two siblings of random kinds.
    async fn children(&self, kind: Kind, rng: &mut XorShift) -> Vec<BoxFut> {
        self.maybe_ready(kind, rng).await;
        let mut v = vec![self.op(kind, rng)];
        for _ in 0..rng.range(0, 2) {
            if !self.shared.claim(1) {
                break;
            }
            let k = KINDS[rng.range_usize(0, KINDS.len() - 1)];
            // Another read of the op's own stream would wait behind it.
            if self.stream_of(k).is_some() {
                continue;
            }
            self.bound(k).await;
            self.maybe_ready(k, rng).await;
            v.push(self.op(k, rng));
        }
        v
    }

    async fn gather_dropped(&self, kind: Kind, rng: &mut XorShift) {
        let children = self.children(kind, rng).await;
        if rng.range(0, 2) == 0 {
            // Spawned, never run (T1), cancelled with the gather (G5).
            drop(gather(children));
            return;
        }
        let t = self.timeout(rng);
        match wait_for(gather(children), Some(t)).await {
            Ok(r) => {
                r.unwrap_or_else(|e| panic!("{kind:?}: a gather child failed: {e}"));
            }
            Err(_) => self.shared.timeouts.set(self.shared.timeouts.get() + 1),
        }
    }

    async fn gather_sibling_cancelled(&self, kind: Kind, rng: &mut XorShift) {
        let children = self.children(kind, rng).await;
        let tasks: Vec<Task<()>> = children.into_iter().map(spawn).collect();
        let handles: Vec<_> = tasks.iter().map(Task::handle).collect();
        let sibling = spawn(std::future::pending::<()>());
        let sh = sibling.handle();
        let k = rng.range_usize(0, 3);
        let canceller = spawn(async move {
            turns(k).await;
            sh.cancel();
        });
        let r = gather_tasks(tasks.into_iter().chain([sibling])).await;
        match r {
            Err(e) if e.is_cancelled() => {}
            Err(e) => panic!("{kind:?}: a gather child failed: {e}"),
            Ok(_) => panic!("{kind:?}: a gather with a never-ending child finished"),
        }
        // The others keep running (G3): cancel them.
        for h in handles {
            h.cancel();
        }
        canceller.await.expect("canceller");
    }

    async fn group_sibling_fails(&self, kind: Kind, rng: &mut XorShift) {
        let children = self.children(kind, rng).await;
        let k = rng.range_usize(0, 3);
        let r = task_group(|tg: TaskGroup<&'static str>| async move {
            for c in children {
                tg.spawn(async move {
                    c.await;
                    Ok(())
                })
                .expect("spawn a child");
            }
            tg.spawn(async move {
                turns(k).await;
                Err::<(), _>("sibling failed")
            })
            .expect("spawn the failing sibling");
            Ok(())
        })
        .await;
        let e = r.expect_err("the failing sibling fails the group");
        for err in e.errors() {
            if let ringloop::ChildError::Panicked(p) = err {
                panic!("{kind:?}: a task group child panicked: {p}");
            }
        }
    }
}
