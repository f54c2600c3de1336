//! `CoresListener`: one address's connections spread over the cores of a
//! `Cores` server (round-robin, shared, reuseport), on TCP and Unix
//! sockets: the shares round-robin guarantees, what a shared socket
//! guarantees, no connection lost, a core that stops or a listener that
//! fails, and no fd left behind.
//!
//! Every test takes `common::serial()`: several count the process's fds,
//! and a `Cores` run leases signal eventfds (for its Ctrl-C watch) that
//! stay open for reuse, so each fd test first runs `warm_up()`.

mod common;

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::linux::net::SocketAddrExt;
use std::pin::pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use common::{fd_list, ms, serial};
use futures_util::future::{Either, select};
use ringloop::net::{CoreListener, CoresListener, Distribution, Listener, UnixAddr};
use ringloop::sync::cross;
use ringloop::{Cores, CoresError};

const CONNS: usize = 16;

/// What one core of the test server does with its part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// Accepts and echoes until stopped.
    Accept,
    /// Takes its listener, keeps it, never accepts.
    Idle,
    /// Takes its listener and drops it at once; then waits to be stopped.
    Drop,
}

/// One core's result: connections accepted, and the error that ended its
/// accepting, if one did.
type CoreResult = (usize, Option<io::Error>);

/// What a core of the test server reports as it goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Event {
    /// Its role is in place.
    Ready,
    /// Its accept failed (it now waits to be stopped).
    Failed,
    /// It accepted a connection.
    Accepted,
}

/// A 2-core (or `roles.len()`-core) server on `listener`, on its own
/// thread. `events` gets each core's [`Event`]s.
struct Server {
    thread: Option<JoinHandle<Result<Vec<CoreResult>, CoresError>>>,
    stops: Vec<cross::Sender<()>>,
    events: mpsc::Receiver<Event>,
}

/// A stream type the test server can echo on.
trait Echo: 'static {
    async fn echo8(self);
}

impl Echo for ringloop::net::TcpStream {
    async fn echo8(self) {
        let (r, buf) = self.read_exact(Vec::with_capacity(8)).await;
        if r.is_ok() {
            let _ = self.write_all(buf).await;
        }
    }
}

impl Echo for ringloop::net::UnixStream {
    async fn echo8(self) {
        let (r, buf) = self.read_exact(Vec::with_capacity(8)).await;
        if r.is_ok() {
            let _ = self.write_all(buf).await;
        }
    }
}

fn start<L>(listener: CoresListener<L>, roles: &[Role]) -> Server
where
    L: Listener,
    CoreListener<L>: AcceptEcho,
{
    let n = roles.len();
    let roles = roles.to_vec();
    let (stops, stop_rx): (Vec<_>, Vec<_>) = (0..n).map(|_| cross::channel(1).unwrap()).unzip();
    let stop_rx = Arc::new(Mutex::new(
        stop_rx.into_iter().map(Some).collect::<Vec<_>>(),
    ));
    let (ready_tx, events) = mpsc::channel();
    let ready_tx = Mutex::new(ready_tx);
    let thread = std::thread::spawn(move || {
        Cores::new(n).run(move |core| {
            let listener = listener.clone();
            let role = roles[core.index()];
            let mut stop = stop_rx.lock().unwrap()[core.index()].take().unwrap();
            let ready = ready_tx.lock().unwrap().clone();
            async move {
                let mine = listener.for_core(&core).unwrap();
                let mine = match role {
                    Role::Drop => {
                        drop(mine);
                        None
                    }
                    Role::Accept | Role::Idle => Some(mine),
                };
                ready.send(Event::Ready).unwrap();
                let accepted = Rc::new(std::cell::Cell::new(0));
                let mut error = None;
                if let (Some(mine), Role::Accept) = (&mine, role) {
                    let serving = pin!(mine.accept_and_echo(&accepted, &ready));
                    error = match select(serving, pin!(stop.recv())).await {
                        Either::Left((e, _)) => Some(e),
                        Either::Right(_) => None,
                    };
                    if error.is_some() {
                        ready.send(Event::Failed).unwrap();
                        stop.recv().await;
                    }
                } else {
                    stop.recv().await;
                }
                (accepted.get(), error)
            }
        })
    });
    Server {
        thread: Some(thread),
        stops,
        events,
    }
}

/// The accept loop of the test server, for TCP and Unix alike.
trait AcceptEcho {
    /// Accepts and echoes, counting in `accepted` and reporting each on
    /// `events`, until accept fails.
    async fn accept_and_echo(
        &self,
        accepted: &std::cell::Cell<usize>,
        events: &mpsc::Sender<Event>,
    ) -> io::Error;
}

impl<L: Listener> AcceptEcho for CoreListener<L>
where
    L::Stream: Echo,
{
    async fn accept_and_echo(
        &self,
        accepted: &std::cell::Cell<usize>,
        events: &mpsc::Sender<Event>,
    ) -> io::Error {
        loop {
            match self.accept().await {
                Ok((s, _)) => {
                    accepted.set(accepted.get() + 1);
                    let _ = events.send(Event::Accepted);
                    ringloop::spawn(s.echo8()).detach();
                }
                Err(e) => return e,
            }
        }
    }
}

impl Server {
    /// Waits for `n` events `what` (10 s at most).
    fn wait_for(&self, what: Event, n: usize) {
        let mut seen = 0;
        while seen < n {
            let e = self
                .events
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("{seen} of {n} {what:?} within 10 s"));
            seen += usize::from(e == what);
        }
    }

    /// Waits until every one of `n` cores has its role in place.
    fn wait_ready(&self, n: usize) {
        self.wait_for(Event::Ready, n);
    }

    /// Stops every core; returns each core's result.
    fn stop(mut self) -> Vec<CoreResult> {
        for s in &self.stops {
            s.send_blocking(()).unwrap();
        }
        self.thread.take().unwrap().join().unwrap().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A failed test still stops its cores (their `stop` ends).
        for s in &self.stops {
            let _ = s.try_send(());
        }
    }
}

/// `CONNS` clients one after another, each echoing 8 bytes (checked).
fn tcp_clients(addr: SocketAddr, n: usize) {
    for i in 0..n as u64 {
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(&i.to_le_bytes()).unwrap();
        let mut back = [0u8; 8];
        c.read_exact(&mut back).unwrap();
        assert_eq!(u64::from_le_bytes(back), i, "connection {i}");
    }
}

fn counts(results: &[CoreResult]) -> Vec<usize> {
    results.iter().map(|r| r.0).collect()
}

fn no_errors(results: &[CoreResult]) {
    for (i, (_, e)) in results.iter().enumerate() {
        assert!(e.is_none(), "core {i} stopped accepting: {e:?}");
    }
}

/// One `Cores` run, so that its lasting fds (the leased signal eventfds)
/// exist before a test takes its baseline.
fn warm_up() {
    Cores::new(2).run(|_| async {}).unwrap();
}

/// Runs `test`, then checks that the process has the fds it had before.
fn no_fd_left(test: impl FnOnce()) {
    warm_up();
    let before = fd_list();
    test();
    let after = fd_list();
    assert_eq!(before, after, "fds before and after differ");
}

#[test]
fn round_robin_gives_each_of_two_cores_exactly_half_of_16_connections() {
    let _g = serial();
    no_fd_left(|| {
        let listener = CoresListener::bind("127.0.0.1:0", 2, Distribution::RoundRobin).unwrap();
        let addr = listener.local_addr();
        let server = start(listener, &[Role::Accept, Role::Accept]);
        tcp_clients(addr, CONNS);
        let results = server.stop();
        no_errors(&results);
        assert_eq!(counts(&results), vec![8, 8]);
    });
}

#[test]
fn round_robin_over_three_cores_differs_by_at_most_one() {
    let _g = serial();
    let listener = CoresListener::bind("127.0.0.1:0", 3, Distribution::RoundRobin).unwrap();
    let addr = listener.local_addr();
    let server = start(listener, &[Role::Accept; 3]);
    tcp_clients(addr, CONNS);
    let results = server.stop();
    no_errors(&results);
    // Connection k goes to core k mod 3: 6, 5, 5.
    assert_eq!(counts(&results), vec![6, 5, 5]);
}

/// A shared socket guarantees that every connection goes to exactly one
/// core (none lost, none twice), and that a core gets connections only
/// while it asks for them: here core 1 never accepts, so core 0 gets all.
/// How an even load splits between two accepting cores is the kernel's
/// choice (`docs/design/cores-distribution.md` has the measurements).
#[test]
fn shared_socket_loses_nothing_and_a_core_that_does_not_accept_gets_nothing() {
    let _g = serial();
    no_fd_left(|| {
        let listener = CoresListener::bind("127.0.0.1:0", 2, Distribution::Shared).unwrap();
        let addr = listener.local_addr();
        let server = start(listener, &[Role::Accept, Role::Idle]);
        server.wait_ready(2);
        tcp_clients(addr, CONNS);
        let results = server.stop();
        no_errors(&results);
        assert_eq!(counts(&results), vec![CONNS, 0]);

        let listener = CoresListener::bind("127.0.0.1:0", 2, Distribution::Shared).unwrap();
        let addr = listener.local_addr();
        let server = start(listener, &[Role::Accept, Role::Accept]);
        tcp_clients(addr, CONNS);
        let results = server.stop();
        no_errors(&results);
        assert_eq!(counts(&results).iter().sum::<usize>(), CONNS);
    });
}

/// Reuseport: the kernel hashes; every connection reaches one core.
#[test]
fn reuseport_serves_every_connection_on_one_port() {
    let _g = serial();
    no_fd_left(|| {
        let listener = CoresListener::bind("127.0.0.1:0", 2, Distribution::ReusePort).unwrap();
        let addr = listener.local_addr();
        assert_ne!(addr.port(), 0);
        let server = start(listener, &[Role::Accept, Role::Accept]);
        tcp_clients(addr, CONNS);
        let results = server.stop();
        no_errors(&results);
        assert_eq!(counts(&results).iter().sum::<usize>(), CONNS);
    });
}

#[test]
fn unix_round_robin_splits_evenly_and_shared_loses_nothing() {
    let _g = serial();
    for how in [Distribution::RoundRobin, Distribution::Shared] {
        let name = UnixAddr::from_abstract_name(format!(
            "ringloop-cores-dist-{}-{how}",
            std::process::id()
        ));
        let listener = CoresListener::bind_unix(&name, 2, how).unwrap();
        assert_eq!(listener.local_addr(), name);
        let server = start(listener, &[Role::Accept, Role::Accept]);
        server.wait_ready(2);
        let path = format!("ringloop-cores-dist-{}-{how}", std::process::id());
        for i in 0..CONNS as u64 {
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(path.as_bytes()).unwrap();
            let mut c = std::os::unix::net::UnixStream::connect_addr(&addr).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            c.write_all(&i.to_le_bytes()).unwrap();
            let mut back = [0u8; 8];
            c.read_exact(&mut back).unwrap();
            assert_eq!(u64::from_le_bytes(back), i, "{how}: connection {i}");
        }
        let results = server.stop();
        no_errors(&results);
        let c = counts(&results);
        if how == Distribution::RoundRobin {
            assert_eq!(c, vec![8, 8]);
        } else {
            assert_eq!(c.iter().sum::<usize>(), CONNS, "{how}: {c:?}");
        }
    }
    // Unix sockets cannot spread with SO_REUSEPORT: a clear error.
    let e = CoresListener::bind_unix(
        UnixAddr::from_abstract_name("ringloop-cores-dist-reuseport"),
        2,
        Distribution::ReusePort,
    )
    .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    assert!(e.to_string().contains("SO_REUSEPORT"), "{e}");
}

/// Round-robin: a core whose listener is gone gets no more connections;
/// the ones its turn would have given it go to the next core, none lost.
/// Clients that connect and reset at once (SO_LINGER 0), between good
/// ones, in every mode: no core stops accepting (a reset connection is
/// skipped wherever it is noticed: at core 0's accept, at the hand-off, or
/// by the core it reaches), and every good client is echoed.
#[test]
fn reset_clients_stop_no_core_in_any_mode() {
    let _g = serial();
    for how in [
        Distribution::RoundRobin,
        Distribution::Shared,
        Distribution::ReusePort,
    ] {
        no_fd_left(|| {
            let listener = CoresListener::bind("127.0.0.1:0", 2, how).unwrap();
            let addr = listener.local_addr();
            let server = start(listener, &[Role::Accept, Role::Accept]);
            server.wait_for(Event::Ready, 2);
            for _ in 0..20 {
                for _ in 0..10 {
                    let c = std::net::TcpStream::connect(addr).unwrap();
                    common::set_linger_zero(std::os::fd::AsRawFd::as_raw_fd(&c));
                    drop(c);
                }
                // A good client after every ten resets is served.
                tcp_clients(addr, 1);
            }
            let results = server.stop();
            no_errors(&results);
            let served: usize = counts(&results).iter().sum();
            assert!(served >= 20, "{how:?}: {:?}", counts(&results));
        });
    }
}

#[test]
fn round_robin_skips_a_core_whose_listener_was_dropped() {
    let _g = serial();
    no_fd_left(|| {
        let listener = CoresListener::bind("127.0.0.1:0", 2, Distribution::RoundRobin).unwrap();
        let addr = listener.local_addr();
        let server = start(listener, &[Role::Accept, Role::Drop]);
        server.wait_ready(2);
        tcp_clients(addr, CONNS);
        let results = server.stop();
        no_errors(&results);
        assert_eq!(counts(&results), vec![CONNS, 0]);
    });
}

/// Round-robin: a core whose inbox is full (it takes connections more
/// slowly than its turns come: here, never) is skipped; its turns go to
/// the next core, none lost. An inbox holds 256 connections.
#[test]
fn round_robin_skips_a_core_whose_inbox_is_full() {
    let _g = serial();
    common::ensure_nofile(4096);
    no_fd_left(|| {
        let listener = CoresListener::bind("127.0.0.1:0", 2, Distribution::RoundRobin).unwrap();
        let addr = listener.local_addr();
        let server = start(listener, &[Role::Accept, Role::Idle]);
        server.wait_ready(2);
        // Connections 1, 3, ..., 511 fill core 1's inbox; from then on
        // every connection goes to core 0: 256 + (600 - 512) = 344.
        let clients: Vec<_> = (0..600)
            .map(|_| std::net::TcpStream::connect(addr).unwrap())
            .collect();
        server.wait_for(Event::Accepted, 344);
        // Core 0 echoes its connections (they are the ones that answer).
        let mut answered = 0;
        for (i, mut c) in clients.into_iter().enumerate() {
            if i % 2 == 0 || i >= 512 {
                c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                c.write_all(&(i as u64).to_le_bytes()).unwrap();
                let mut back = [0u8; 8];
                c.read_exact(&mut back).unwrap();
                assert_eq!(u64::from_le_bytes(back), i as u64);
                answered += 1;
            }
        }
        assert_eq!(answered, 344);
        let results = server.stop();
        no_errors(&results);
        assert_eq!(counts(&results), vec![344, 0]);
    });
}

/// Round-robin: core 0 accepts for everyone, yet its own listener going
/// away does not stop the others' connections: the hand-out runs on core
/// 0's loop while any core listens.
#[test]
fn round_robin_goes_on_for_the_others_after_core_0_stops_listening() {
    let _g = serial();
    no_fd_left(|| {
        let listener = CoresListener::bind("127.0.0.1:0", 2, Distribution::RoundRobin).unwrap();
        let addr = listener.local_addr();
        let server = start(listener, &[Role::Drop, Role::Accept]);
        server.wait_ready(2);
        tcp_clients(addr, CONNS);
        let results = server.stop();
        no_errors(&results);
        assert_eq!(counts(&results), vec![0, CONNS]);
    });
}

/// Round-robin: when core 0's listening socket fails, every core's
/// `accept` returns that failure (not a hang).
#[test]
fn round_robin_listener_failure_reaches_every_core() {
    let _g = serial();
    no_fd_left(|| {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let spare = std_listener.try_clone().unwrap();
        let listener = CoresListener::from_std(std_listener, 2, Distribution::RoundRobin).unwrap();
        let addr = listener.local_addr();
        let server = start(listener, &[Role::Accept, Role::Accept]);
        server.wait_ready(2);
        tcp_clients(addr, 4);
        // Break the listening socket under core 0's feet.
        // SAFETY: shutdown(2) on an fd this test owns (`spare`, a dup of
        // the listener); no memory is involved.
        let r = unsafe { libc::shutdown(std::os::fd::AsRawFd::as_raw_fd(&spare), libc::SHUT_RDWR) };
        assert_eq!(r, 0, "{}", io::Error::last_os_error());
        // Every core's accept ends with the listener's error.
        server.wait_for(Event::Failed, 2);
        let results = server.stop();
        assert_eq!(counts(&results), vec![2, 2]);
        for (i, (_, e)) in results.iter().enumerate() {
            let e = e
                .as_ref()
                .unwrap_or_else(|| panic!("core {i} saw no failure"));
            assert!(
                e.to_string().contains("core 0's listener failed"),
                "core {i}: {e}"
            );
        }
        drop(spare);
    });
}

/// Dropping the server (every core's entry future is dropped mid-accept,
/// with connections still waiting in the backlog and in the inboxes)
/// leaves no fd behind, in every mode.
#[test]
fn dropping_the_server_mid_accept_leaves_no_fd_behind() {
    let _g = serial();
    for how in Distribution::ALL {
        no_fd_left(|| {
            let listener = CoresListener::bind("127.0.0.1:0", 2, how).unwrap();
            let addr = listener.local_addr();
            // Clients whose connections nobody will serve.
            let clients: Vec<_> = (0..8)
                .map(|_| std::net::TcpStream::connect(addr).unwrap())
                .collect();
            let out = Cores::new(2)
                .run(move |core| {
                    let listener = listener.clone();
                    async move {
                        let mine = listener.for_core(&core).unwrap();
                        // Core 1 takes one connection (if any comes), then
                        // both give up within 50 ms, dropping everything.
                        let first = if core.index() == 1 {
                            ringloop::wait_for(mine.accept(), Some(ms(50))).await.ok()
                        } else {
                            ringloop::sleep(ms(50)).await;
                            None
                        };
                        first.is_some()
                    }
                })
                .unwrap();
            assert_eq!(out.len(), 2);
            drop(clients);
        });
    }
}

/// Parts never taken, and a `CoresListener` dropped before any core
/// started, close their sockets.
#[test]
fn an_unused_cores_listener_closes_its_sockets() {
    let _g = serial();
    no_fd_left(|| {
        for how in Distribution::ALL {
            let listener = CoresListener::bind("127.0.0.1:0", 4, how).unwrap();
            let copy = listener.clone();
            drop(listener);
            drop(copy);
        }
    });
}

#[test]
fn bad_uses_are_clear_errors() {
    let _g = serial();
    let e = CoresListener::bind("127.0.0.1:0", 0, Distribution::RoundRobin).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    let e = CoresListener::from_std(
        std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
        2,
        Distribution::ReusePort,
    )
    .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    let e = "least-loaded".parse::<Distribution>().unwrap_err();
    assert!(e.to_string().contains("round-robin"), "{e}");
    for how in Distribution::ALL {
        assert_eq!(how.name().parse::<Distribution>().unwrap(), how);
    }

    // Made for 3 cores, used by 2; a part taken twice.
    let listener = CoresListener::bind("127.0.0.1:0", 3, Distribution::Shared).unwrap();
    let out = Cores::new(2)
        .run(move |core| {
            let listener = listener.clone();
            async move { listener.for_core(&core).map(drop).unwrap_err().kind() }
        })
        .unwrap();
    assert_eq!(out, vec![io::ErrorKind::InvalidInput; 2]);
    let listener = CoresListener::bind("127.0.0.1:0", 1, Distribution::RoundRobin).unwrap();
    let out = Cores::new(1)
        .run(move |core| {
            let listener = listener.clone();
            async move {
                let _mine = listener.for_core(&core).unwrap();
                listener.for_core(&core).map(drop).unwrap_err().kind()
            }
        })
        .unwrap();
    assert_eq!(out, vec![io::ErrorKind::AlreadyExists]);
}
