//! Ops for `stress_loop_drop_with_ops_in_flight`: tasks that each hold one
//! ring op that will not finish by itself, for the loop to be dropped under.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use ringloop::fs::File;
use ringloop::net::{ListenOptions, TcpListener, TcpStream, UnixAddr, UnixListener, UnixStream};
use ringloop::{sleep, spawn};

use super::conns::pipe;
use super::counted::CountedBuf;
use crate::common::XorShift;

const HOUR: Duration = Duration::from_secs(3600);

#[derive(Clone, Copy, Debug)]
enum Held {
    /// A read on a socketpair nobody writes.
    SocketRead,
    /// A read on a pipe nobody writes.
    PipeRead,
    /// A write of 1 MiB to a socketpair nobody reads (blocks once the
    /// socket buffer is full).
    BlockedWrite,
    /// A multishot accept on a listener nobody connects to.
    Accept,
    /// A connect to a listener whose accept queue is full, under a linked
    /// 1-hour timeout (two ring ops).
    ConnectTimeout,
}

/// Shares (in tenths) of the ops of each kind.
const MIX: [(Held, usize); 5] = [
    (Held::SocketRead, 4),
    (Held::PipeRead, 2),
    (Held::BlockedWrite, 2),
    (Held::Accept, 1),
    (Held::ConnectTimeout, 1),
];

/// Spawns tasks holding at least `ops` ring ops in flight, plus a few
/// sleepers and completed writes, and returns once the driver tracks them
/// all: the ops in flight then.
///
/// # Panics
///
/// If the ops are not all in flight within 10 s.
pub async fn start_ops(ops: usize, seed: u64) -> usize {
    let mut rng = XorShift::new(seed);
    let mut kinds = Vec::with_capacity(ops);
    for (kind, tenths) in MIX {
        let n = if matches!(kind, Held::ConnectTimeout) {
            // Two ring ops each.
            ops * tenths / 20
        } else {
            ops * tenths / 10
        };
        kinds.extend(std::iter::repeat_n(kind, n));
    }
    while kinds.len() < ops {
        kinds.push(Held::SocketRead);
    }
    // A seeded shuffle: the spawn order varies between loops.
    for i in (1..kinds.len()).rev() {
        kinds.swap(i, rng.range_usize(0, i));
    }
    let full = full_listener().await;
    let expected: usize = kinds
        .iter()
        .map(|k| {
            if matches!(k, Held::ConnectTimeout) {
                2
            } else {
                1
            }
        })
        .sum();
    let pid = std::process::id();
    for (i, kind) in kinds.into_iter().enumerate() {
        match kind {
            Held::SocketRead => {
                let (a, b) = UnixStream::pair().expect("socketpair");
                spawn(async move {
                    let _keep = a;
                    let (res, _) = b.read(CountedBuf::with_capacity(4096)).await;
                    panic!("a read nobody feeds completed: {res:?}");
                })
                .detach();
            }
            Held::PipeRead => {
                let (rx, tx) = pipe();
                let f = File::from_std(std::fs::File::from(rx)).expect("pipe as File");
                spawn(async move {
                    let _keep = tx;
                    let (res, _) = f.read_at(CountedBuf::with_capacity(4096), 0).await;
                    panic!("a pipe read nobody feeds completed: {res:?}");
                })
                .detach();
            }
            Held::BlockedWrite => {
                let (a, b) = UnixStream::pair().expect("socketpair");
                let data = CountedBuf::from_vec(vec![0xa5; 1 << 20]);
                spawn(async move {
                    let _keep = b;
                    let (res, _) = a.write_all(data).await;
                    panic!("a write nobody reads completed: {res:?}");
                })
                .detach();
            }
            Held::Accept => {
                let name = format!("ringloop-drop-{pid}-{seed}-{i}");
                let l = UnixListener::bind(UnixAddr::from_abstract_name(name)).expect("bind");
                spawn(async move {
                    let r = l.accept().await;
                    panic!("an accept nobody connects to completed: {:?}", r.err());
                })
                .detach();
            }
            Held::ConnectTimeout => {
                let (_, addr) = full.clone();
                spawn(async move {
                    let r = TcpStream::connect_timeout(addr, HOUR).await;
                    panic!("a connect to a full listener finished: {:?}", r.err());
                })
                .detach();
            }
        }
    }
    // Some ops that finish before the drop, and timers that never fire.
    for _ in 0..16 {
        let (a, b) = UnixStream::pair().expect("socketpair");
        spawn(async move {
            let (res, _) = a.write_all(CountedBuf::from_vec(vec![1; 100])).await;
            res.expect("a small write");
            let (res, buf) = b.read(CountedBuf::with_capacity(100)).await;
            assert_eq!(res.expect("read"), 100);
            drop(buf);
            sleep(HOUR).await;
        })
        .detach();
    }
    // The listener stays open (with its queue full) until the loop drops.
    spawn(async move {
        let _keep = full;
        sleep(HOUR).await;
    })
    .detach();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n = ringloop::ring_stats().expect("ring_stats").ops_in_flight;
        if n >= expected {
            return n;
        }
        assert!(
            Instant::now() < deadline,
            "only {n} of {expected} ops in flight after 10 s"
        );
        sleep(Duration::from_millis(1)).await;
    }
}

/// A TCP listener (backlog 1) whose accept queue is full: connects to it
/// stay pending (their SYNs are dropped). Returns it with the clients
/// filling its queue, and its address.
async fn full_listener() -> (Rc<(TcpListener, Vec<TcpStream>)>, SocketAddr) {
    let options = ListenOptions {
        backlog: 1,
        ..ListenOptions::default()
    };
    let l = TcpListener::bind_with("127.0.0.1:0", options).expect("bind");
    let addr = l.local_addr().expect("local_addr");
    // Backlog 1 holds two connections; a third would hang.
    let mut clients = Vec::new();
    for _ in 0..2 {
        clients.push(TcpStream::connect(addr).await.expect("fill the queue"));
    }
    (Rc::new((l, clients)), addr)
}
