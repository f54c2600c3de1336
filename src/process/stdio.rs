//! [`ChildStdin`], [`ChildStdout`], [`ChildStderr`]: a child's piped stdio
//! as ringloop streams.
//!
//! Reads and writes go through the ring with owned buffers
//! (`let (res, buf) = stdout.read(buf).await;`); each type also implements
//! `futures_io`'s `AsyncRead` or `AsyncWrite` (one copy through an internal
//! buffer) for `futures-util` code. Do not mix the two styles on one handle
//! while an `AsyncWrite` write is unflushed or an `AsyncRead` read pending.
//! Dropping a handle closes its fd through the ring.

use std::fmt;
use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_util::io::{AsyncRead, AsyncWrite};

use super::pipe::Pipe;
use crate::io::{IoBuf, IoBufMut};

type PendingRead = Pin<Box<dyn Future<Output = (io::Result<usize>, Vec<u8>)>>>;
type PendingWrite = Pin<Box<dyn Future<Output = (io::Result<()>, Vec<u8>)>>>;
type PendingClose = Pin<Box<dyn Future<Output = io::Result<()>>>>;

/// The most one `AsyncRead`/`AsyncWrite` call moves through the ring.
const CHUNK: usize = 64 * 1024;

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the child's stdin was closed")
}

/// The write end of a child's stdin pipe ([`super::Child::stdin`]).
///
/// The child sees end-of-file once this is closed ([`ChildStdin::close`],
/// `AsyncWriteExt::close`) or dropped. Writing after the child closed its
/// end fails with `BrokenPipe` (Rust programs ignore `SIGPIPE`, so the
/// process is not killed by it; a non-Rust host must ignore it too).
///
/// # Examples
///
/// ```
/// use ringloop::process::{Command, Stdio};
/// ringloop::run(async {
///     let mut child = Command::new("cat")
///         .stdin(Stdio::piped())
///         .stdout(Stdio::piped())
///         .spawn()?;
///     let stdin = child.stdin.take().unwrap();
///     let (res, _) = stdin.write_all(b"meow".to_vec()).await;
///     res?;
///     stdin.close().await?;
///     let out = child.wait_with_output().await?;
///     assert_eq!(out.stdout, b"meow");
///     Ok::<(), std::io::Error>(())
/// })
/// .unwrap()
/// .unwrap();
/// ```
pub struct ChildStdin {
    /// `None` once `AsyncWrite::poll_close` closed it.
    pipe: Option<Pipe>,
    /// An `AsyncWrite` write in flight, and a buffer to reuse.
    writing: Option<PendingWrite>,
    spare: Vec<u8>,
    closing: Option<PendingClose>,
}

impl ChildStdin {
    pub(crate) fn new(pipe: Pipe) -> ChildStdin {
        ChildStdin {
            pipe: Some(pipe),
            writing: None,
            spare: Vec::new(),
            closing: None,
        }
    }

    /// Writes `buf`'s initialised bytes once (may write fewer) and gives
    /// the buffer back.
    ///
    /// # Errors
    ///
    /// What `write(2)` reports: `BrokenPipe` once the child closed its end.
    pub async fn write<B: IoBuf>(&self, buf: B) -> (io::Result<usize>, B) {
        match &self.pipe {
            Some(p) => p.write(buf).await,
            None => (Err(closed()), buf),
        }
    }

    /// Writes all of `buf`'s initialised bytes and gives the buffer back.
    ///
    /// # Errors
    ///
    /// As for [`ChildStdin::write`].
    pub async fn write_all<B: IoBuf>(&self, buf: B) -> (io::Result<()>, B) {
        match &self.pipe {
            Some(p) => p.write_all(buf).await,
            None => (Err(closed()), buf),
        }
    }

    /// Finishes an `AsyncWrite` write still in flight, then closes the pipe
    /// through the ring (the child reads end-of-file) and reports
    /// `close(2)`'s result.
    ///
    /// # Errors
    ///
    /// The pending write's error, or `close(2)`'s.
    pub async fn close(mut self) -> io::Result<()> {
        if let Some(w) = self.writing.take() {
            w.await.0?;
        }
        match self.pipe.take() {
            Some(p) => p.close().await,
            None => Ok(()),
        }
    }

    /// Polls the `AsyncWrite` write in flight, keeping its buffer.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(w) = self.writing.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let (res, buf) = ready!(w.as_mut().poll(cx));
        self.writing = None;
        self.spare = buf;
        Poll::Ready(res)
    }
}

impl AsyncWrite for ChildStdin {
    /// Accepts up to 64 KiB of `src` and writes it through the ring in the
    /// background; the next write, flush or close waits for it first.
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        src: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        ready!(this.poll_pending(cx))?;
        let Some(pipe) = this.pipe.clone() else {
            return Poll::Ready(Err(closed()));
        };
        if src.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let k = src.len().min(CHUNK);
        let mut buf = std::mem::take(&mut this.spare);
        buf.clear();
        buf.extend_from_slice(&src[..k]);
        this.writing = Some(Box::pin(async move { pipe.write_all(buf).await }));
        // Start it now (the SQE is submitted at the first poll); an error
        // that is already known is reported right away.
        match this.poll_pending(cx) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            _ => Poll::Ready(Ok(k)),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_pending(cx)
    }

    /// Flushes, then closes the pipe (the child reads end-of-file).
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_pending(cx))?;
        if this.closing.is_none() {
            let Some(pipe) = this.pipe.take() else {
                return Poll::Ready(Ok(()));
            };
            this.closing = Some(Box::pin(pipe.close()));
        }
        let fut = this.closing.as_mut().expect("set above");
        let res = ready!(fut.as_mut().poll(cx));
        this.closing = None;
        Poll::Ready(res)
    }
}

impl AsRawFd for ChildStdin {
    /// The pipe's fd (-1 once closed).
    fn as_raw_fd(&self) -> RawFd {
        self.pipe.as_ref().map_or(-1, AsRawFd::as_raw_fd)
    }
}

impl fmt::Debug for ChildStdin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildStdin")
            .field("fd", &self.as_raw_fd())
            .field("writing", &self.writing.is_some())
            .finish()
    }
}

/// The read end of a child's stdout or stderr pipe.
struct PipeReader {
    pipe: Pipe,
    /// An `AsyncRead` read in flight, and a buffer to reuse.
    reading: Option<PendingRead>,
    spare: Vec<u8>,
}

impl PipeReader {
    fn new(pipe: Pipe) -> PipeReader {
        PipeReader {
            pipe,
            reading: None,
            spare: Vec::new(),
        }
    }

    fn poll_read(&mut self, cx: &mut Context<'_>, dst: &mut [u8]) -> Poll<io::Result<usize>> {
        if dst.is_empty() {
            // Nothing to fill; a read in flight stays in flight.
            return Poll::Ready(Ok(0));
        }
        let fut = self.reading.get_or_insert_with(|| {
            let pipe = self.pipe.clone();
            let mut buf = std::mem::take(&mut self.spare);
            buf.clear();
            buf.reserve(dst.len().min(CHUNK));
            Box::pin(async move { pipe.read(buf).await })
        });
        let (res, buf) = ready!(fut.as_mut().poll(cx));
        self.reading = None;
        let n = match res {
            Ok(n) => n,
            Err(e) => {
                self.spare = buf;
                return Poll::Ready(Err(e));
            }
        };
        // `dst` may be shorter than when the read started: keep the rest.
        let k = n.min(dst.len());
        dst[..k].copy_from_slice(&buf[..k]);
        if k < n {
            self.pipe.unread_front(&buf[k..n]);
        }
        self.spare = buf;
        Poll::Ready(Ok(k))
    }
}

macro_rules! reader {
    ($name:ident, $field:ident, $script:literal) => {
        #[doc = concat!("The read end of a child's ", stringify!($field), " pipe ([`super::Child::", stringify!($field), "`]).")]
        ///
        /// Reads take owned buffers and give them back; `Ok(0)` is
        /// end-of-file (the child closed its end, usually by exiting). A
        /// read whose future is dropped loses nothing: what the kernel
        /// delivered is returned by the next read.
        ///
        /// # Examples
        ///
        /// ```
        /// use ringloop::process::{Command, Stdio};
        /// ringloop::run(async {
        ///     let mut child = Command::new("sh")
        #[doc = concat!("        .args([\"-c\", \"", $script, "\"])")]
        #[doc = concat!("        .", stringify!($field), "(Stdio::piped())")]
        ///         .spawn()?;
        #[doc = concat!("    let pipe = child.", stringify!($field), ".take().unwrap();")]
        ///     let (res, text) = pipe.read_to_end(Vec::new()).await;
        ///     res?;
        ///     assert_eq!(text, b"hi\n");
        ///     assert!(child.wait().await?.success());
        ///     Ok::<(), std::io::Error>(())
        /// })
        /// .unwrap()
        /// .unwrap();
        /// ```
        pub struct $name(PipeReader);

        impl $name {
            pub(crate) fn new(pipe: Pipe) -> $name {
                $name(PipeReader::new(pipe))
            }

            /// The pipe, with any bytes an `AsyncRead` read left over
            /// kept in it (a pending read's future is dropped: what it
            /// gets is kept too).
            pub(crate) fn into_pipe(self) -> Pipe {
                self.0.pipe
            }

            /// Reads once into `buf`'s storage (up to `bytes_total()`, from
            /// its start) and gives the buffer back; `Ok(0)` at end-of-file.
            ///
            /// # Errors
            ///
            /// What `read(2)` reports.
            pub async fn read<B: IoBufMut>(&self, buf: B) -> (io::Result<usize>, B) {
                self.0.pipe.read(buf).await
            }

            /// Appends everything up to end-of-file to `buf` and returns the
            /// number of bytes appended, with the buffer.
            ///
            /// # Errors
            ///
            /// As for `read`; `buf` keeps what arrived before the error.
            pub async fn read_to_end(&self, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
                self.0.pipe.read_to_end(buf).await
            }

            /// Closes the pipe through the ring now (cancelling reads still
            /// in flight) and reports `close(2)`'s result. A child writing
            /// more gets `EPIPE`/`SIGPIPE`.
            ///
            /// # Errors
            ///
            /// `close(2)`'s error.
            pub async fn close(self) -> io::Result<()> {
                let PipeReader { pipe, reading, .. } = self.0;
                drop(reading);
                pipe.close().await
            }
        }

        impl AsyncRead for $name {
            fn poll_read(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                dst: &mut [u8],
            ) -> Poll<io::Result<usize>> {
                self.0.poll_read(cx, dst)
            }
        }

        impl AsRawFd for $name {
            fn as_raw_fd(&self) -> RawFd {
                self.0.pipe.as_raw_fd()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("pipe", &self.0.pipe)
                    .field("reading", &self.0.reading.is_some())
                    .finish()
            }
        }
    };
}

reader!(ChildStdout, stdout, "echo hi");
reader!(ChildStderr, stderr, "echo hi >&2");
