//! The storm's connections: [`Stream`] (a connection carrying a known
//! byte sequence, written at one end and read at the other, every byte
//! checked) and [`Listener`] (a listener whose connections are counted, so
//! none is lost or accepted twice); and the fd helpers.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;
use std::time::Duration;

use ringloop::net::{TcpListener, TcpStream, UnixAddr, UnixListener, UnixStream};
use ringloop::{Task, sleep, spawn, wait_for};

use super::counted::CountedBuf;

/// How long an op that was made ready may take before the run fails as hung.
pub const HANG: Duration = Duration::from_secs(10);

/// The buffer of the reads that drain a stream: no bigger than the ops'
/// own, so draining touches no new memory (RSS is measured after it).
const DRAIN_BUF: usize = 4096;

/// Byte `j` of every test stream: a hash of the position, so a lost,
/// duplicated or reordered byte shows.
pub fn stream_byte(j: u64) -> u8 {
    (j.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as u8
}

pub enum Conn {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Conn {
    pub async fn read(&self, buf: CountedBuf) -> (io::Result<usize>, CountedBuf) {
        match self {
            Conn::Tcp(s) => s.read(buf).await,
            Conn::Unix(s) => s.read(buf).await,
        }
    }

    pub async fn write_all(&self, buf: CountedBuf) -> (io::Result<()>, CountedBuf) {
        match self {
            Conn::Tcp(s) => s.write_all(buf).await,
            Conn::Unix(s) => s.write_all(buf).await,
        }
    }

    pub async fn shutdown_write(&self) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => s.shutdown(Shutdown::Write).await,
            Conn::Unix(s) => s.shutdown(Shutdown::Write).await,
        }
    }
}

/// A connection written at one end (`tx`) and read at the other (`rx`).
pub struct Stream {
    name: String,
    pub rx: Conn,
    tx: Conn,
    /// Bytes handed to writes (set before the write, so never behind what
    /// the reader may already have).
    sent: Cell<u64>,
    received: Cell<u64>,
    /// A delayed write racing the reads; awaited before the next write.
    writer: RefCell<Option<Task<()>>>,
}

impl Stream {
    pub async fn settle_writer(&self) {
        let w = self.writer.borrow_mut().take();
        if let Some(w) = w {
            w.await.expect("the delayed writer task");
        }
    }

    pub async fn write_now(&self, n: usize) {
        let from = self.sent.get();
        let bytes = (from..from + n as u64).map(stream_byte).collect();
        self.sent.set(from + n as u64);
        let (res, _buf) = self.tx.write_all(CountedBuf::from_vec(bytes)).await;
        res.unwrap_or_else(|e| panic!("{}: write: {e}", self.name));
    }

    pub async fn write(&self, n: usize) {
        self.settle_writer().await;
        self.write_now(n).await;
    }

    pub async fn write_later(self: &Rc<Self>, delay: Duration, n: usize) {
        self.settle_writer().await;
        let me = self.clone();
        *self.writer.borrow_mut() = Some(spawn(async move {
            sleep(delay).await;
            me.write_now(n).await;
        }));
    }

    /// Checks a read's result against the byte sequence.
    pub fn check_read(&self, res: io::Result<usize>, buf: &CountedBuf, eof_ok: bool) -> usize {
        let n = res.unwrap_or_else(|e| panic!("{}: read: {e}", self.name));
        let from = self.received.get();
        assert!(
            n > 0 || eof_ok,
            "{}: end of stream at byte {from} of {} sent",
            self.name,
            self.sent.get()
        );
        assert_eq!(buf.as_slice().len(), n, "{}: buffer length", self.name);
        assert!(
            from + n as u64 <= self.sent.get(),
            "{}: read {n} bytes at {from}, only {} were sent (duplicated bytes)",
            self.name,
            self.sent.get()
        );
        if let Some(i) = (0..n).find(|&i| buf.as_slice()[i] != stream_byte(from + i as u64)) {
            panic!(
                "{}: byte {} of the stream is {:#04x}, want {:#04x} (bytes lost, duplicated \
                 or reordered by a cancelled read)",
                self.name,
                from + i as u64,
                buf.as_slice()[i],
                stream_byte(from + i as u64)
            );
        }
        self.received.set(from + n as u64);
        n
    }

    /// Reads (never cancelled) until at most `keep` bytes are unread.
    pub async fn catch_up(&self, keep: u64) {
        while self.sent.get() - self.received.get() > keep {
            let read = self.rx.read(CountedBuf::with_capacity(DRAIN_BUF));
            let (res, buf) = wait_for(read, Some(HANG))
                .await
                .unwrap_or_else(|_| panic!("{}: bytes sent but not readable", self.name));
            self.check_read(res, &buf, false);
        }
    }

    /// Ends the stream and reads it to the end: everything sent arrives.
    pub async fn finish(&self) -> u64 {
        self.settle_writer().await;
        self.tx.shutdown_write().await.expect("shutdown(Write)");
        loop {
            let read = self.rx.read(CountedBuf::with_capacity(DRAIN_BUF));
            let (res, buf) = wait_for(read, Some(HANG))
                .await
                .unwrap_or_else(|_| panic!("{}: no end of stream", self.name));
            if self.check_read(res, &buf, true) == 0 {
                break;
            }
        }
        assert_eq!(
            self.received.get(),
            self.sent.get(),
            "{}: bytes received vs sent",
            self.name
        );
        self.sent.get()
    }
}

pub enum Lst {
    Tcp(TcpListener, SocketAddr),
    Unix(UnixListener, UnixAddr),
}

/// A listener and the clients connected to it, counted.
pub struct Listener {
    l: Lst,
    connected: Cell<u64>,
    accepted: Cell<u64>,
    /// Clients not yet known to be accepted, with their sequence numbers.
    clients: RefCell<VecDeque<(u64, Conn)>>,
}

impl Listener {
    pub fn queued(&self) -> u64 {
        self.connected.get() - self.accepted.get()
    }

    pub async fn connect(&self) {
        let c = match &self.l {
            Lst::Tcp(_, addr) => {
                let s = TcpStream::connect(*addr).await.expect("TCP connect");
                linger_zero(&s);
                Conn::Tcp(s)
            }
            Lst::Unix(_, addr) => {
                Conn::Unix(UnixStream::connect(addr).await.expect("Unix connect"))
            }
        };
        let seq = self.connected.get();
        self.connected.set(seq + 1);
        self.clients.borrow_mut().push_back((seq, c));
    }

    pub async fn accept(&self) {
        match &self.l {
            Lst::Tcp(l, _) => drop(l.accept().await.expect("TCP accept")),
            Lst::Unix(l, _) => drop(l.accept().await.expect("Unix accept")),
        }
        let a = self.accepted.get() + 1;
        assert!(
            a <= self.connected.get(),
            "more connections accepted ({a}) than made ({})",
            self.connected.get()
        );
        self.accepted.set(a);
    }

    /// Closes the clients whose connection was accepted (FIFO).
    pub fn prune(&self) {
        let mut c = self.clients.borrow_mut();
        while c.front().is_some_and(|(seq, _)| *seq < self.accepted.get()) {
            c.pop_front();
        }
    }

    /// Accepts (never cancelled) until at most `keep` connections wait.
    pub async fn catch_up(&self, keep: u64) {
        while self.queued() > keep {
            wait_for(self.accept(), Some(HANG))
                .await
                .expect("a connection made but never accepted");
        }
        self.prune();
    }

    /// Accepts every connection made: none lost, none twice.
    pub async fn finish(&self) -> u64 {
        self.catch_up(0).await;
        assert!(self.clients.borrow().is_empty());
        self.accepted.get()
    }
}

/// Closes with a reset, so the run leaves no TIME_WAIT sockets behind.
pub fn linger_zero(s: &TcpStream) {
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `s` owns a live socket fd; `l` is a valid `linger` for the
    // duration of the call, its size passed.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const l).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "SO_LINGER: {}", io::Error::last_os_error());
}

pub fn stream(name: String, rx: Conn, tx: Conn) -> Stream {
    Stream {
        name,
        rx,
        tx,
        sent: Cell::new(0),
        received: Cell::new(0),
        writer: RefCell::new(None),
    }
}

pub fn listener(l: Lst) -> Listener {
    Listener {
        l,
        connected: Cell::new(0),
        accepted: Cell::new(0),
        clients: RefCell::new(VecDeque::new()),
    }
}

/// A pipe: (read end, write end), close-on-exec.
pub fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two ints for the kernel to fill.
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(r, 0, "pipe2: {}", io::Error::last_os_error());
    // SAFETY: pipe2 succeeded: both fds are open and owned by nobody else.
    unsafe {
        use std::os::fd::FromRawFd;
        (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))
    }
}
