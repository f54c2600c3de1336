//! Spreading one listening address's connections over the cores of a
//! [`Cores`](crate::Cores) server: [`CoresListener`] (made once, before the
//! cores start) and the [`CoreListener`] each core takes from it.
//!
//! Three ways, chosen by [`Distribution`] (the measurements that chose the
//! default are in `docs/design/cores-distribution.md`):
//!
//! - [`RoundRobin`](Distribution::RoundRobin) (the default): one listening
//!   socket, accepted by core 0 alone, which hands connection `k` to core
//!   `k mod N` (its fd, through a [`cross`](crate::sync::cross) channel per
//!   core; core 0's own share takes the same path). Exact shares.
//! - [`Shared`](Distribution::Shared): one listening socket, each core
//!   accepting from its own duplicate of it with single-shot accepts; the
//!   kernel gives each connection to one core waiting in `accept`. No
//!   hand-off, but which core gets a connection is the kernel's choice.
//! - [`ReusePort`](Distribution::ReusePort): one `SO_REUSEPORT` socket per
//!   core on the same address; the kernel picks the socket by a hash of the
//!   client's address and port. TCP only.
//!
//! # Invariants
//!
//! - The sockets are bound when the [`CoresListener`] is made (no loop
//!   needed), so the address, and a bind failure, are known before any
//!   core starts. Each core's part is taken once, by
//!   [`CoresListener::for_core`] on that core's loop; parts never taken
//!   are closed with the last clone of the [`CoresListener`].
//! - Round-robin: an accepted fd is owned by exactly one place at any time
//!   (the accepting task, a channel, the receiving core's stream), so a
//!   connection is never lost while its core listens, and its fd is closed
//!   whatever is dropped when.
//! - Round-robin: the accepting task runs on core 0's loop from core 0's
//!   [`for_core`](CoresListener::for_core) until no core listens any more
//!   (every inbox is gone), its socket fails, or core 0's loop closes. It
//!   does not end with core 0's [`CoreListener`]: under
//!   [`Cores`](crate::Cores), a core whose entry future finished keeps its
//!   loop running for the others, so the others keep getting connections.
//!   When it ends for any other reason, the reason is recorded *before*
//!   the inboxes close, and every core's `accept` returns it as an error.
//! - A connection handed to a core whose [`CoreListener`] is gone goes to
//!   the next core that still listens.

mod listener;
mod round_robin;

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::OwnedFd;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};

use super::tcp::{ListenOptions, TcpListener, bind_fd, inet_addr, resolve};
use super::unix::{IntoUnixAddr, UnixListener};
use crate::runtime::Core;
use crate::sys;

pub use listener::Listener;

/// How the connections of one [`CoresListener`] reach the cores (the
/// measurements behind the default: `docs/design/cores-distribution.md`).
///
/// Parsed from, and shown as, `round-robin`, `shared` and `reuseport`.
///
/// # Examples
///
/// ```
/// use ringloop::net::Distribution;
/// let how: Distribution = "shared".parse()?;
/// assert_eq!(how, Distribution::Shared);
/// assert_eq!(Distribution::default().to_string(), "round-robin");
/// assert!("random".parse::<Distribution>().is_err());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Distribution {
    /// Core 0 accepts every connection and hands connection `k` to core
    /// `k mod N`: the shares differ by at most one connection (a core
    /// whose listener is gone is skipped). Core 0 does every accept, and
    /// the turns count connections, not how busy each core is. The
    /// hand-out to another core cost 4–8 % of the accept rate when every
    /// connection carried only 8 bytes; established connections cost
    /// nothing more.
    #[default]
    RoundRobin,
    /// Every core accepts from the one listening socket (single-shot
    /// accepts: a core waits for a connection only while it is in
    /// `accept`); the kernel wakes one waiting core per connection.
    /// Nothing is handed over and a busy core takes fewer connections, but
    /// the shares are whatever the kernel's wake-ups make them (one core
    /// got all 16 of 16 connections in some runs). As on a kernel without
    /// multishot accept, an `accept` future dropped just as the kernel
    /// completed it closes that connection (the client sees a reset): keep
    /// the accept loop running rather than racing `accept` against a
    /// timeout.
    Shared,
    /// One `SO_REUSEPORT` socket per core; the kernel picks one by a hash of
    /// the client's address and port (even on average, uneven for a few
    /// connections: 16 split 10/6 or 9/7 at the median). The cheapest: for many
    /// short connections at a high rate. TCP only.
    ReusePort,
}

impl Distribution {
    /// Every mode, in the order the docs list them.
    pub const ALL: [Distribution; 3] = [
        Distribution::RoundRobin,
        Distribution::Shared,
        Distribution::ReusePort,
    ];

    /// The mode's name: `round-robin`, `shared` or `reuseport`.
    pub fn name(self) -> &'static str {
        match self {
            Distribution::RoundRobin => "round-robin",
            Distribution::Shared => "shared",
            Distribution::ReusePort => "reuseport",
        }
    }
}

impl fmt::Display for Distribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Distribution {
    type Err = io::Error;

    fn from_str(s: &str) -> io::Result<Distribution> {
        Distribution::ALL
            .into_iter()
            .find(|d| d.name() == s)
            .ok_or_else(|| {
                invalid(format!(
                    "unknown distribution {s:?}: expected round-robin, shared or reuseport"
                ))
            })
    }
}

/// One core's part, until that core takes it.
enum Part {
    /// Its own listening socket (reuseport) or its duplicate (shared).
    Own(OwnedFd),
    /// Core 0 of round-robin: the listening socket and every inbox.
    Accepting {
        listener: OwnedFd,
        accepting: round_robin::Accepting,
    },
    /// Another core of round-robin: its inbox.
    Inbox(round_robin::InboxRx),
}

struct Shared {
    how: Distribution,
    parts: Mutex<Vec<Option<Part>>>,
    /// Round-robin: why the hand-out ended, once it has.
    stopped: round_robin::Stopped,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// One listening address served by every core of a [`Cores`](crate::Cores)
/// server, with the connections spread as its [`Distribution`] says.
///
/// Made (and bound) before the cores start, cloned into the entry closure;
/// each core then takes its [`CoreListener`] with
/// [`for_core`](CoresListener::for_core) and accepts from it as from a
/// [`TcpListener`]. `Send`, `Sync`, and cheap to clone.
///
/// # Examples
///
/// ```
/// use ringloop::Cores;
/// use ringloop::net::{CoresListener, Distribution, TcpStream};
///
/// let listener = CoresListener::bind("127.0.0.1:0", 2, Distribution::RoundRobin)?;
/// let addr = listener.local_addr();
/// let served = Cores::new(2).run(move |core| {
///     let listener = listener.clone();
///     async move {
///         let mine = listener.for_core(&core)?;
///         if core.index() == 0 {
///             // Two clients; round-robin gives one to each core.
///             for _ in 0..2 {
///                 let s = TcpStream::connect(addr).await?;
///                 ringloop::spawn(async move { s.write_all(b"hi".to_vec()).await }).detach();
///             }
///         }
///         let (stream, _peer) = mine.accept().await?;
///         let (res, buf) = stream.read_exact(Vec::with_capacity(2)).await;
///         res?;
///         Ok::<_, std::io::Error>(buf)
///     }
/// })?;
/// assert_eq!(served.len(), 2);
/// assert!(served.iter().all(|r| r.as_ref().is_ok_and(|b| b == b"hi")));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct CoresListener<L: Listener = TcpListener> {
    shared: Arc<Shared>,
    local: L::Addr,
    _listener: PhantomData<fn() -> L>,
}

impl<L: Listener> Clone for CoresListener<L> {
    fn clone(&self) -> Self {
        CoresListener {
            shared: self.shared.clone(),
            local: self.local.clone(),
            _listener: PhantomData,
        }
    }
}

impl<L: Listener> fmt::Debug for CoresListener<L>
where
    L::Addr: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CoresListener")
            .field("listener", &L::NAME)
            .field("local_addr", &self.local)
            .field("distribution", &self.shared.how)
            .field("cores", &lock(&self.shared.parts).len())
            .finish()
    }
}

impl CoresListener<TcpListener> {
    /// Binds `addr` for `cores` cores, with the default [`ListenOptions`].
    ///
    /// # Errors
    ///
    /// As [`CoresListener::bind_with`].
    pub fn bind(
        addr: impl ToSocketAddrs,
        cores: usize,
        how: Distribution,
    ) -> io::Result<CoresListener<TcpListener>> {
        CoresListener::bind_with(addr, cores, how, ListenOptions::default())
    }

    /// Binds `addr` for `cores` cores with `options` (`reuse_port` is set
    /// by [`Distribution::ReusePort`] itself; the other modes bind one
    /// socket, with `options` as given). Port 0 picks one port for all.
    /// No loop is needed.
    ///
    /// # Errors
    ///
    /// `cores` is 0 (`InvalidInput`); resolution, `socket`, `bind` or
    /// `listen` failures, as [`TcpListener::bind_with`]; `dup` failures.
    pub fn bind_with(
        addr: impl ToSocketAddrs,
        cores: usize,
        how: Distribution,
        options: ListenOptions,
    ) -> io::Result<CoresListener<TcpListener>> {
        check_cores(cores)?;
        let mut last = None;
        for a in resolve(addr)? {
            match bind_tcp(a, cores, how, options) {
                Ok(fds) => {
                    let local = inet_addr(&sys::local_addr(&fds[0])?)?;
                    return CoresListener::with_fds(fds, cores, how, local);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("resolve returns at least one address"))
    }

    /// Spreads a listening std socket (from systemd socket activation, a
    /// `socket2` builder, a parent process) over `cores` cores, with
    /// [`Distribution::RoundRobin`] or [`Distribution::Shared`].
    ///
    /// # Errors
    ///
    /// [`Distribution::ReusePort`] (it needs one socket per core:
    /// `InvalidInput`); `cores` is 0; `getsockname` or `dup` failures. The
    /// socket is checked when a core adopts it ([`TcpListener::from_std`]).
    pub fn from_std(
        listener: std::net::TcpListener,
        cores: usize,
        how: Distribution,
    ) -> io::Result<CoresListener<TcpListener>> {
        check_cores(cores)?;
        if how == Distribution::ReusePort {
            return Err(invalid(
                "CoresListener::from_std: reuseport needs one socket per core; \
                 use round-robin or shared with one socket"
                    .into(),
            ));
        }
        let local = listener.local_addr()?;
        let fds = vec![OwnedFd::from(listener)];
        CoresListener::with_fds(fds, cores, how, local)
    }
}

/// The sockets for `how`: one per core for reuseport, else one.
fn bind_tcp(
    addr: SocketAddr,
    cores: usize,
    how: Distribution,
    mut options: ListenOptions,
) -> io::Result<Vec<OwnedFd>> {
    if how != Distribution::ReusePort {
        return Ok(vec![bind_fd(&addr, options)?]);
    }
    options.reuse_port = true;
    let first = bind_fd(&addr, options)?;
    // Port 0 became one port: the others bind that one.
    let bound = inet_addr(&sys::local_addr(&first)?)?;
    let mut fds = vec![first];
    for _ in 1..cores {
        fds.push(bind_fd(&bound, options)?);
    }
    Ok(fds)
}

impl CoresListener<UnixListener> {
    /// Binds the Unix address `addr` for `cores` cores (a name of its
    /// own, as [`CoresListener::bind`] is TCP's), with
    /// [`Distribution::RoundRobin`] or [`Distribution::Shared`] (Unix
    /// sockets have no `SO_REUSEPORT` spreading). No loop is needed.
    ///
    /// # Errors
    ///
    /// [`Distribution::ReusePort`] or 0 cores (`InvalidInput`); `socket`,
    /// `bind` (e.g. the path exists) or `listen` failures; `dup` failures.
    pub fn bind_unix(
        addr: impl IntoUnixAddr,
        cores: usize,
        how: Distribution,
    ) -> io::Result<CoresListener<UnixListener>> {
        check_cores(cores)?;
        if how == Distribution::ReusePort {
            return Err(invalid(
                "CoresListener: Unix sockets cannot spread connections with SO_REUSEPORT; \
                 use round-robin or shared"
                    .into(),
            ));
        }
        let addr = addr.into_unix_addr();
        let fd = super::unix::bind_fd(libc::SOCK_STREAM, &addr)?;
        sys::listen(&fd, ListenOptions::default().backlog)?;
        CoresListener::with_fds(vec![fd], cores, how, addr)
    }
}

fn check_cores(cores: usize) -> io::Result<()> {
    if cores == 0 {
        return Err(invalid("CoresListener: at least one core is needed".into()));
    }
    Ok(())
}

impl<L: Listener> CoresListener<L> {
    /// Splits the bound sockets into the cores' parts.
    fn with_fds(
        mut fds: Vec<OwnedFd>,
        cores: usize,
        how: Distribution,
        local: L::Addr,
    ) -> io::Result<CoresListener<L>> {
        let stopped = round_robin::Stopped::default();
        let parts = match how {
            Distribution::ReusePort => fds.into_iter().map(Part::Own).collect(),
            Distribution::Shared => {
                let fd = fds.pop().expect("one socket");
                let mut parts = Vec::with_capacity(cores);
                for _ in 1..cores {
                    parts.push(Part::Own(fd.try_clone()?));
                }
                parts.insert(0, Part::Own(fd));
                parts
            }
            Distribution::RoundRobin => {
                let listener = fds.pop().expect("one socket");
                let (accepting, others) = round_robin::plan(cores, &stopped);
                let mut parts = vec![Part::Accepting {
                    listener,
                    accepting,
                }];
                parts.extend(others.into_iter().map(Part::Inbox));
                parts
            }
        };
        Ok(CoresListener {
            shared: Arc::new(Shared {
                how,
                parts: Mutex::new(parts.into_iter().map(Some).collect()),
                stopped,
            }),
            local,
            _listener: PhantomData,
        })
    }

    /// The address every core listens on (port 0 resolved).
    pub fn local_addr(&self) -> L::Addr {
        self.local.clone()
    }

    /// How connections are spread.
    pub fn distribution(&self) -> Distribution {
        self.shared.how
    }

    /// Takes core `core.index()`'s part, for the loop running on this
    /// thread. Every core should take its part when it starts: with
    /// round-robin, connections handed to a part not taken yet wait there.
    ///
    /// Round-robin: core 0's part starts, on core 0's loop, the task that
    /// accepts for every core; it runs while any core's [`CoreListener`]
    /// lives (or until the socket fails, or core 0's loop closes), so core
    /// 0 may stop listening before the others.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `core.count()` is not the count this listener was
    /// made for; `AlreadyExists` if the part was taken already; no running
    /// loop, or a socket the loop cannot adopt.
    pub fn for_core(&self, core: &Core) -> io::Result<CoreListener<L>> {
        let index = core.index();
        let part = {
            let mut parts = lock(&self.shared.parts);
            if parts.len() != core.count() {
                return Err(invalid(format!(
                    "CoresListener made for {} cores, used by {} cores",
                    parts.len(),
                    core.count()
                )));
            }
            parts[index].take().ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("CoresListener: core {index} took its listener already"),
                )
            })?
        };
        let inner = match part {
            Part::Own(fd) => {
                let l = L::adopt(fd)?;
                if self.shared.how == Distribution::Shared {
                    l.single_shot();
                }
                Inner::Own(l)
            }
            Part::Inbox(rx) => Inner::Inbox(rx.into_inbox(self.shared.stopped.clone())),
            Part::Accepting {
                listener,
                accepting,
            } => Inner::Inbox(accepting.start::<L>(listener)?),
        };
        Ok(CoreListener {
            index,
            shared: self.shared.clone(),
            inner,
        })
    }
}

/// One core's end of a [`CoresListener`]: accept from it as from a
/// [`TcpListener`] (or [`UnixListener`]). `!Send`: it belongs to the loop
/// it was taken on.
///
/// Several tasks of the core may accept at once.
pub struct CoreListener<L: Listener = TcpListener> {
    index: usize,
    shared: Arc<Shared>,
    inner: Inner<L>,
}

enum Inner<L> {
    Own(L),
    Inbox(round_robin::Inbox),
}

impl<L: Listener> CoreListener<L> {
    /// Accepts this core's next connection.
    ///
    /// # Errors
    ///
    /// As the listener's own `accept` ([`TcpListener::accept`]): failures of
    /// the listening socket, not of one connection. Round-robin: core 0's
    /// listener failed (its error), or core 0's loop closed (`BrokenPipe`);
    /// either way no connection will come.
    pub async fn accept(&self) -> io::Result<(L::Stream, L::Addr)> {
        match &self.inner {
            Inner::Own(l) => l.accept().await,
            Inner::Inbox(inbox) => inbox.accept::<L>(self.index).await,
        }
    }

    /// This core's index.
    pub fn core(&self) -> usize {
        self.index
    }

    /// How connections are spread.
    pub fn distribution(&self) -> Distribution {
        self.shared.how
    }
}

impl<L: Listener> fmt::Debug for CoreListener<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CoreListener")
            .field("listener", &L::NAME)
            .field("core", &self.index)
            .field("distribution", &self.shared.how)
            .finish()
    }
}
