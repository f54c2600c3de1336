//! `StreamReader` against a model, over a real loop and socket.
//!
//! The bytes come through a `SOCK_SEQPACKET` socketpair, so each receive of
//! the reader gets exactly one of the input's chunks: the chunking is the
//! fuzzer's, and the model (which knows the chunks) predicts every result.
//! The peer then closes: the stream always ends, so no call can hang.
//!
//! Checked after every call (`read`, `readexactly`, `readuntil`, `readline`,
//! `read_to_end`, `at_eof`, `set_limit`): the result (bytes or error, with
//! its partial data, or asyncio's `consumed` and whether the separator was
//! found) equals the model's; the bytes buffered equal the model's, so
//! memory stays within the limit plus one chunk and a separator's length
//! (or the size a `readexactly` asked for). `at_eof` is true as soon as the
//! buffer is empty and the peer's end of stream has arrived, with no read
//! needed to see it.
#![no_main]

use std::cell::RefCell;
use std::collections::VecDeque;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use ringloop::EventLoop;
use ringloop::io::{StreamError, StreamReader};

/// At most what one receive of the reader asks for (16 KiB).
const MAX_CHUNK: usize = 4096;

#[derive(Arbitrary, Debug)]
enum Call {
    Read(u16),
    ReadExactly(u16),
    ReadUntil(Vec<u8>),
    ReadLine,
    ReadToEnd,
    AtEof,
    SetLimit(u16),
}

#[derive(Arbitrary, Debug)]
struct Input {
    limit: u16,
    chunks: Vec<Vec<u8>>,
    calls: Vec<Call>,
}

/// What a call returned, comparable across reader and model.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Bytes(Vec<u8>),
    Incomplete(Vec<u8>, Option<usize>),
    /// asyncio's `consumed`, and whether the separator was found.
    Overrun(usize, bool),
    Io(String),
    Bool(bool),
    Unit,
}

fn outcome(r: Result<Vec<u8>, StreamError>) -> Outcome {
    match r {
        Ok(b) => Outcome::Bytes(b),
        Err(StreamError::IncompleteRead(e)) => Outcome::Incomplete(e.partial, e.expected),
        Err(StreamError::LimitOverrun(e)) => Outcome::Overrun(e.consumed, e.separator_found),
        Err(e) => Outcome::Io(e.to_string()),
    }
}

/// The reference: a buffer filled one chunk at a time.
struct Model {
    chunks: VecDeque<Vec<u8>>,
    buf: Vec<u8>,
    eof: bool,
    limit: usize,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    (0..=hay.len().saturating_sub(needle.len()))
        .find(|&i| hay.len() >= needle.len() && &hay[i..i + needle.len()] == needle)
}

impl Model {
    fn fill(&mut self) -> bool {
        match self.chunks.pop_front() {
            Some(c) if !self.eof => {
                self.buf.extend_from_slice(&c);
                true
            }
            _ => {
                self.eof = true;
                false
            }
        }
    }

    fn read(&mut self, n: usize) -> Outcome {
        if n > 0 && self.buf.is_empty() {
            self.fill();
        }
        let k = n.min(self.buf.len());
        Outcome::Bytes(self.buf.drain(..k).collect())
    }

    fn readexactly(&mut self, n: usize) -> Outcome {
        while self.buf.len() < n {
            if !self.fill() {
                return Outcome::Incomplete(std::mem::take(&mut self.buf), Some(n));
            }
        }
        Outcome::Bytes(self.buf.drain(..n).collect())
    }

    /// asyncio's rule, checked after each chunk: the limit counts the bytes
    /// before the separator; with no separator yet, the bytes scanned
    /// (buffered - separator length + 1) must stay within the limit.
    fn readuntil(&mut self, sep: &[u8]) -> Outcome {
        loop {
            if let Some(pos) = find(&self.buf, sep) {
                if pos > self.limit {
                    return Outcome::Overrun(pos, true);
                }
                return Outcome::Bytes(self.buf.drain(..pos + sep.len()).collect());
            }
            let scanned = (self.buf.len() + 1).saturating_sub(sep.len());
            if scanned > self.limit {
                return Outcome::Overrun(scanned, false);
            }
            if !self.fill() {
                return Outcome::Incomplete(std::mem::take(&mut self.buf), None);
            }
        }
    }

    fn readline(&mut self) -> Outcome {
        match self.readuntil(b"\n") {
            Outcome::Incomplete(partial, _) => Outcome::Bytes(partial),
            // asyncio drops the line through its newline, or everything.
            Outcome::Overrun(n, found) => {
                if found {
                    self.buf.drain(..=n);
                } else {
                    self.buf.clear();
                }
                Outcome::Overrun(n, found)
            }
            other => other,
        }
    }

    /// The peer closed right after sending: its end of stream has arrived
    /// once every chunk was received.
    fn at_eof(&mut self) -> Outcome {
        let eof = self.buf.is_empty() && (self.eof || self.chunks.is_empty());
        self.eof |= eof;
        Outcome::Bool(eof)
    }

    fn read_to_end(&mut self) -> Outcome {
        while self.fill() {}
        Outcome::Bytes(std::mem::take(&mut self.buf))
    }
}

/// Bytes the reader holds, from its `Debug` output.
fn buffered(r: &StreamReader) -> usize {
    let s = format!("{r:?}");
    let at = s.find("buffered: ").expect("Debug shows buffered") + "buffered: ".len();
    let digits: String = s[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().expect("a byte count")
}

/// A seqpacket socketpair: (reader's end, peer's end, non-blocking).
fn seqpacket_pair() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two ints for the kernel to fill.
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    assert_eq!(rc, 0, "socketpair: {}", std::io::Error::last_os_error());
    // SAFETY: both fds were just created and are owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// Sends each chunk as one message until the socket buffer is full; returns
/// the chunks sent.
fn send_chunks(peer: &OwnedFd, chunks: Vec<Vec<u8>>) -> VecDeque<Vec<u8>> {
    let mut sent = VecDeque::new();
    for c in chunks {
        // SAFETY: `c` is a valid buffer of `c.len()` bytes.
        let n = unsafe {
            libc::send(
                peer.as_raw_fd(),
                c.as_ptr().cast(),
                c.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if n < 0 {
            break; // Full: the stream is what was sent.
        }
        assert_eq!(n as usize, c.len(), "a seqpacket send is all or nothing");
        sent.push_back(c);
    }
    sent
}

thread_local! {
    static LOOP: RefCell<Option<EventLoop>> = const { RefCell::new(None) };
}

fuzz_target!(|input: Input| {
    let chunks: Vec<Vec<u8>> = input
        .chunks
        .into_iter()
        .filter(|c| !c.is_empty())
        .take(128)
        .map(|mut c| {
            c.truncate(MAX_CHUNK);
            c
        })
        .collect();
    let (ours, peer) = seqpacket_pair();
    let sent = send_chunks(&peer, chunks);
    drop(peer); // EOF after the last chunk.
    let limit = usize::from(input.limit);
    let mut model = Model {
        chunks: sent,
        buf: Vec::new(),
        eof: false,
        limit,
    };
    LOOP.with(|l| {
        let mut l = l.borrow_mut();
        let ev = l.get_or_insert_with(|| EventLoop::new().expect("an io_uring loop"));
        ev.run_until_complete(async {
            let mut r = ringloop::__fuzz::stream_reader(ours, Some(limit)).expect("a reader");
            for call in input.calls.into_iter().take(256) {
                let mut most = model.limit;
                let (got, want) = match &call {
                    Call::Read(n) => {
                        let n = usize::from(*n);
                        let got = r.read(n).await.map_err(StreamError::Io);
                        (outcome(got), model.read(n))
                    }
                    Call::ReadExactly(n) => {
                        let n = usize::from(*n);
                        most = most.max(n);
                        (outcome(r.readexactly(n).await), model.readexactly(n))
                    }
                    Call::ReadUntil(sep) => {
                        let mut sep = sep.clone();
                        sep.truncate(4);
                        if sep.is_empty() {
                            continue; // Documented to panic.
                        }
                        (outcome(r.readuntil(&sep).await), model.readuntil(&sep))
                    }
                    Call::ReadLine => (outcome(r.readline().await), model.readline()),
                    Call::ReadToEnd => {
                        let got = r.read_to_end().await.map_err(StreamError::Io);
                        most = usize::MAX;
                        (outcome(got), model.read_to_end())
                    }
                    Call::AtEof => (Outcome::Bool(r.at_eof()), model.at_eof()),
                    Call::SetLimit(n) => {
                        r.set_limit(usize::from(*n));
                        model.limit = usize::from(*n);
                        assert_eq!(r.limit(), model.limit);
                        (Outcome::Unit, Outcome::Unit)
                    }
                };
                assert_eq!(got, want, "{call:?}");
                let held = buffered(&r);
                assert_eq!(held, model.buf.len(), "bytes buffered after {call:?}");
                assert!(
                    // A separator (up to 4 bytes) may straddle the limit.
                    held <= most.saturating_add(MAX_CHUNK + 3),
                    "{held} bytes buffered, limit {}",
                    model.limit
                );
            }
        })
        .expect("the loop runs the reader");
    });
});
