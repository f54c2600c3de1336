//! Zero-copy sends on a stream socket (`IORING_OP_SEND_ZC`), with the
//! plain send as the fallback.
//!
//! A zero-copy send returns its buffer only after the kernel's second
//! completion, the notification that it let go of the pages
//! (`driver/op/send_zc.rs`). On the epoll backend, on kernels without the
//! opcode (before 6.0) and on sockets that refuse it (`EOPNOTSUPP`), the
//! same calls make a plain `send`: the bytes and results are the same,
//! only the copy differs. `MSG_ZEROCOPY` on epoll (an error-queue
//! protocol) is not implemented: see `docs/design/send-zc.md`.

use std::io;

use super::socket::Socket;
use crate::buf::IoBuf;
use crate::driver::op::MultiOp;
use crate::driver::op::send_zc::{SendZc, SendZcOp};

impl Socket {
    /// Sends `buf`'s initialised bytes once (may be partial), zero-copy
    /// when the loop can; the buffer comes back once the kernel has let
    /// go of it.
    pub(crate) async fn send_zc<B: IoBuf>(&self, buf: B) -> (io::Result<usize>, B) {
        let op = match MultiOp::try_submit(self.driver(), SendZc::new(self.clone(), buf)) {
            Ok(op) => op,
            // Epoll, or a kernel before 6.0: the plain send.
            Err((e, op)) if e.kind() == io::ErrorKind::Unsupported => {
                return self.send(op.into_buf()).await;
            }
            Err((e, op)) => return (Err(e), op.into_buf()),
        };
        let done = SendZcOp::new(op).await;
        match done.res {
            // A socket that cannot pin pages (not TCP/UDP): the plain send.
            Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => self.send(done.buf).await,
            res => (res, done.buf),
        }
    }

    /// Sends all of `buf`'s initialised bytes with [`Socket::send_zc`].
    pub(crate) async fn send_all_zc<B: IoBuf>(&self, buf: B) -> (io::Result<()>, B) {
        let total = buf.bytes_init();
        let mut slice = buf.slice(..);
        let mut sent = 0;
        while sent < total {
            let (res, s) = self.send_zc(slice).await;
            let buf = s.into_inner();
            match res {
                Ok(0) => {
                    let e = io::Error::new(
                        io::ErrorKind::WriteZero,
                        format!("zero-copy send wrote 0 bytes after {sent} of {total}"),
                    );
                    return (Err(e), buf);
                }
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (Err(e), buf),
            }
            slice = buf.slice(sent..);
        }
        (Ok(()), slice.into_inner())
    }
}
