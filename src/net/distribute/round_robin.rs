//! Round-robin distribution: core 0's task accepts every connection and
//! sends its fd to core `k mod N`'s inbox (a [`cross`] channel per core);
//! each core's [`Inbox`] turns the fds back into streams.
//!
//! Invariants (see also the parent module's):
//!
//! - An accepted fd is owned by exactly one place at any time: the
//!   [`HandOut`] task, a channel, or the receiving core's stream.
//! - [`Live`] counts the inbox receivers still alive (taken or not); the
//!   hand-out ends when it reaches 0, so it outlives core 0's own
//!   `CoreListener` while another core listens.
//! - The reason the hand-out ended is stored in `stopped` in
//!   `HandOut::drop`, before its senders drop (fields drop after `drop`
//!   runs), so a receiver that sees its channel closed finds it.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};

use futures_util::future::{Either, select};

use super::listener::Listener;
use super::lock;
use crate::sync::cross::{self, TrySendError};

/// How many handed connections may wait in one core's inbox before core 0
/// tries the next core (and, when every inbox is full, waits).
const INBOX: usize = 256;

/// Why the hand-out ended, shared by every core's [`Inbox`].
pub(super) type Stopped = Arc<Mutex<Option<io::Error>>>;

/// Core 0's part before it is taken: every inbox's sender, and its own
/// inbox.
pub(super) struct Accepting {
    inboxes: Vec<cross::Sender<OwnedFd>>,
    inbox: InboxRx,
    stopped: Stopped,
}

/// The channels for `cores` cores: core 0's part, and the other cores'
/// inbox receivers (cores `1..`).
pub(super) fn plan(cores: usize, stopped: &Stopped) -> (Accepting, Vec<InboxRx>) {
    let live = Arc::new(Live::default());
    lock(&live.receivers).0 = cores;
    let (inboxes, mut receivers): (Vec<_>, Vec<_>) = (0..cores)
        .map(|_| {
            let (tx, rx) = cross::channel(INBOX).expect("INBOX is not 0");
            let rx = InboxRx {
                rx,
                live: live.clone(),
            };
            (tx, rx)
        })
        .unzip();
    let inbox = receivers.remove(0);
    let accepting = Accepting {
        inboxes,
        inbox,
        stopped: stopped.clone(),
    };
    (accepting, receivers)
}

impl Accepting {
    /// On core 0's loop: adopts the listening socket and starts the
    /// hand-out task (detached: it ends by itself, see the invariants);
    /// returns core 0's own inbox.
    ///
    /// # Errors
    ///
    /// The socket cannot be adopted (no running loop, ...); the inboxes
    /// are closed then, with that error as the reason.
    pub(super) fn start<L: Listener>(self, listener: OwnedFd) -> io::Result<Inbox> {
        let hand_out = HandOut {
            inboxes: self.inboxes.into_iter().map(Some).collect(),
            next: 0,
            stopped: self.stopped.clone(),
            live: self.inbox.live.clone(),
            why: None,
        };
        let listener = match L::adopt(listener) {
            Ok(l) => l,
            Err(e) => return Err(hand_out.fail(e)),
        };
        // `adopt` found a running loop: spawning cannot panic.
        crate::spawn_named("ringloop-round-robin", hand_out.run(listener)).detach();
        Ok(Inbox::new(self.inbox, self.stopped))
    }
}

/// Round-robin: how many inboxes still have their receiver, and the
/// accepting task to wake when that reaches 0.
#[derive(Default)]
struct Live {
    receivers: Mutex<(usize, Option<Waker>)>,
}

impl Live {
    /// Resolves once every receiver is gone.
    async fn none_left(&self) {
        poll_fn(|cx| {
            let mut g = lock(&self.receivers);
            if g.0 == 0 {
                Poll::Ready(())
            } else {
                g.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
    }
}

/// A core's inbox receiver; its drop is counted in [`Live`].
pub(super) struct InboxRx {
    rx: cross::Receiver<OwnedFd>,
    live: Arc<Live>,
}

impl InboxRx {
    /// The inbox of the core that took this part.
    pub(super) fn into_inbox(self, stopped: Stopped) -> Inbox {
        Inbox::new(self, stopped)
    }
}

impl Drop for InboxRx {
    fn drop(&mut self) {
        let waker = {
            let mut g = lock(&self.live.receivers);
            g.0 -= 1;
            if g.0 == 0 { g.1.take() } else { None }
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// A core's inbox of handed connections, shared by its accepting tasks.
pub(super) struct Inbox {
    rx: RefCell<InboxRx>,
    stopped: Stopped,
    /// Tasks waiting in `accept`: the channel remembers one waker, so
    /// whoever takes a connection (or gives up) wakes the others.
    waiters: RefCell<Vec<Waker>>,
}

/// Wakes every waiting acceptor when dropped (a connection taken, or a
/// waiting accept dropped): one of them registers with the channel again.
struct PassOn<'a>(&'a Inbox);

impl Drop for PassOn<'_> {
    fn drop(&mut self) {
        let waiters = std::mem::take(&mut *self.0.waiters.borrow_mut());
        waiters.into_iter().for_each(Waker::wake);
    }
}

impl Inbox {
    fn new(rx: InboxRx, stopped: Stopped) -> Inbox {
        Inbox {
            rx: RefCell::new(rx),
            stopped,
            waiters: RefCell::new(Vec::new()),
        }
    }

    /// The next connection handed to core `core`, as a stream of this
    /// thread's loop.
    ///
    /// # Errors
    ///
    /// The hand-out ended (why, naming `core`); no running loop.
    pub(super) async fn accept<L: Listener>(
        &self,
        core: usize,
    ) -> io::Result<(L::Stream, L::Addr)> {
        loop {
            let Some(fd) = self.recv().await else {
                return Err(self.stopped(core));
            };
            // The number may have had an earlier life on this loop's
            // driver (closed elsewhere): that state is stale.
            crate::runtime::current_driver()?
                .borrow_mut()
                .forget_fd(fd.as_raw_fd());
            if let Some(conn) = L::handed(fd)? {
                return Ok(conn);
            }
        }
    }

    fn stopped(&self, core: usize) -> io::Error {
        match &*lock(&self.stopped) {
            Some(e) => io::Error::new(e.kind(), format!("core {core}: {e}")),
            None => io::Error::new(
                io::ErrorKind::BrokenPipe,
                format!("core {core}: the round-robin hand-out ended"),
            ),
        }
    }

    async fn recv(&self) -> Option<OwnedFd> {
        let _pass_on = PassOn(self);
        poll_fn(|cx| match self.rx.borrow_mut().rx.poll_recv(cx) {
            Poll::Ready(v) => Poll::Ready(v),
            Poll::Pending => {
                let mut waiters = self.waiters.borrow_mut();
                if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
                    waiters.push(cx.waker().clone());
                }
                Poll::Pending
            }
        })
        .await
    }
}

/// Round-robin: core 0's task that accepts and hands connection `k` to
/// core `k mod N`.
struct HandOut {
    /// `None` once that core's inbox is closed (its listener gone).
    inboxes: Vec<Option<cross::Sender<OwnedFd>>>,
    next: usize,
    stopped: Stopped,
    live: Arc<Live>,
    /// Why the hand-out ended, recorded on drop.
    why: Option<io::Error>,
}

impl HandOut {
    /// Records `e` as why it ended (before the inboxes close) and returns it.
    fn fail(mut self, e: io::Error) -> io::Error {
        let copy = io::Error::new(e.kind(), e.to_string());
        self.why = Some(e);
        drop(self);
        copy
    }

    async fn run<L: Listener>(mut self, listener: L) {
        let live = self.live.clone();
        loop {
            let accepted = {
                let accept = pin!(listener.accept_fd());
                let none_left = pin!(live.none_left());
                match select(accept, none_left).await {
                    Either::Left((accepted, _)) => accepted,
                    // Nobody listens: close the socket (dropping the accept
                    // loses nothing; the backlog goes with the socket).
                    Either::Right(((), _)) => {
                        self.why = Some(gone());
                        return;
                    }
                }
            };
            let fd = match accepted {
                Ok(fd) => fd,
                Err(e) => {
                    self.why = Some(io::Error::new(
                        e.kind(),
                        format!("core 0's listener failed (round-robin): {e}"),
                    ));
                    return;
                }
            };
            if !self.give(fd).await {
                self.why = Some(gone());
                return;
            }
        }
    }

    /// Gives `fd` to the next core whose inbox has room (waiting for the
    /// next core in turn when none has); false once no core listens (the
    /// connection is closed).
    async fn give(&mut self, fd: OwnedFd) -> bool {
        let n = self.inboxes.len();
        let mut fd = fd;
        loop {
            for k in 0..n {
                let i = (self.next + k) % n;
                let Some(tx) = &self.inboxes[i] else { continue };
                match tx.try_send(fd) {
                    Ok(()) => {
                        self.next = (i + 1) % n;
                        return true;
                    }
                    Err(TrySendError::Full(back)) => fd = back,
                    Err(TrySendError::Closed(back)) => {
                        self.inboxes[i] = None;
                        fd = back;
                    }
                }
            }
            // Every live inbox is full: wait for the next core in turn.
            let Some(i) = (0..n)
                .map(|k| (self.next + k) % n)
                .find(|&i| self.inboxes[i].is_some())
            else {
                return false;
            };
            let tx = self.inboxes[i].clone().expect("found live above");
            match tx.send(fd).await {
                Ok(()) => {
                    self.next = (i + 1) % n;
                    return true;
                }
                Err(back) => {
                    self.inboxes[i] = None;
                    fd = back.0;
                }
            }
        }
    }
}

fn gone() -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        "every core's listener is gone (round-robin)",
    )
}

impl Drop for HandOut {
    fn drop(&mut self) {
        let why = self.why.take().unwrap_or_else(|| {
            io::Error::new(
                io::ErrorKind::BrokenPipe,
                "core 0, which accepts for every core (round-robin), stopped accepting \
                 (its loop closed)",
            )
        });
        lock(&self.stopped).get_or_insert(why);
        // The inboxes close after this: their receivers find the reason.
    }
}
