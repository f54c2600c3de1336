//! `IORING_OP_SEND_ZC` (io_uring_prep_send_zc(3), Linux 6.0+): a send
//! whose pages the kernel pins instead of copying.
//!
//! It completes twice: first the send's result, flagged
//! `IORING_CQE_F_MORE`; later a notification (`IORING_CQE_F_NOTIF`, no
//! `MORE`) once the kernel has let go of the pages (for TCP, when the
//! bytes are acknowledged, or copied). Only then may the buffer be reused
//! or freed, so the op runs as a multishot op ([`MultiCode`]): the buffer
//! stays in the op (or, if its future is dropped, in the driver's slot)
//! until that final CQE. An op the kernel refuses before it takes the
//! buffer completes once, without `MORE`.

use std::os::fd::AsRawFd;
use std::task::{Context, Poll};

use io_uring::{cqueue, opcode, squeue, types};

use super::{MultiCode, MultiOp};
use crate::buf::IoBuf;
use crate::driver::Completion;

/// `IORING_SEND_ZC_REPORT_USAGE`: the notification's `res` says whether
/// the kernel had to copy after all ([`NOTIF_USAGE_ZC_COPIED`]).
const SEND_ZC_REPORT_USAGE: u16 = 1 << 3;
/// `IORING_NOTIF_USAGE_ZC_COPIED`, set in the notification's `res`.
const NOTIF_USAGE_ZC_COPIED: u32 = 1 << 31;

/// Sends `buf`'s initialised bytes on a socket without copying them, with
/// `MSG_NOSIGNAL`. `F` keeps the fd open until the notification.
pub(crate) struct SendZc<F, B> {
    fd: F,
    buf: B,
}

impl<F: AsRawFd + 'static, B: IoBuf> SendZc<F, B> {
    pub(crate) fn new(fd: F, buf: B) -> Self {
        SendZc { fd, buf }
    }

    /// The buffer back, when the op was never submitted.
    pub(crate) fn into_buf(self) -> B {
        self.buf
    }
}

/// One completion of a zero-copy send.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ZcEvent {
    /// The send's result (bytes sent, or the negated errno). The
    /// notification follows if the CQE carried `IORING_CQE_F_MORE` (the
    /// driver ends the op at the CQE without it).
    Sent { res: i32 },
    /// The kernel let go of the buffer; `copied` when it copied the bytes
    /// after all (loopback, a device without scatter-gather).
    Released { copied: bool },
}

// SAFETY: the SQE points at `buf`'s storage, stable across moves of `buf`
// (`IoBuf`'s contract); `buf` is owned by self, which the op (or its
// orphan) keeps until the final CQE, the notification.
unsafe impl<F: AsRawFd + 'static, B: IoBuf> MultiCode for SendZc<F, B> {
    type Item = ZcEvent;
    const CODE: u8 = opcode::SendZc::CODE;
    const NAME: &'static str = "IORING_OP_SEND_ZC";

    fn sqe(&mut self) -> squeue::Entry {
        let len = u32::try_from(self.buf.bytes_init()).unwrap_or(u32::MAX);
        opcode::SendZc::new(types::Fd(self.fd.as_raw_fd()), self.buf.stable_ptr(), len)
            .flags(libc::MSG_NOSIGNAL)
            .zc_flags(SEND_ZC_REPORT_USAGE)
            .build()
    }

    fn item(&self, c: Completion) -> ZcEvent {
        if cqueue::notif(c.flags) {
            ZcEvent::Released {
                copied: (c.result as u32) & NOTIF_USAGE_ZC_COPIED != 0,
            }
        } else {
            ZcEvent::Sent { res: c.result }
        }
    }

    // Nothing to rescue: the bytes a dropped send sent were never
    // reported, and the buffer is dropped with the op after the final CQE.
    fn orphan(&self, _: Completion) {}
}

/// What a finished zero-copy send hands back.
#[derive(Debug)]
pub(crate) struct ZcDone<B> {
    /// The send's result.
    pub(crate) res: std::io::Result<usize>,
    /// The buffer, released by the kernel.
    pub(crate) buf: B,
    /// The kernel copied the bytes after all (see [`ZcEvent::Released`]).
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "only the driver test reads it so far")
    )]
    pub(crate) copied: bool,
}

/// Drives a submitted [`SendZc`] to its final CQE.
pub(crate) struct SendZcOp<F: AsRawFd + 'static, B: IoBuf> {
    op: Option<MultiOp<SendZc<F, B>>>,
    res: Option<i32>,
    copied: bool,
}

impl<F: AsRawFd + 'static, B: IoBuf> SendZcOp<F, B> {
    pub(crate) fn new(op: MultiOp<SendZc<F, B>>) -> Self {
        SendZcOp {
            op: Some(op),
            res: None,
            copied: false,
        }
    }
}

// `SendZcOp` never hands out pinned references to its fields; the kernel
// sees only the buffer's heap storage (see `MultiCode`).
impl<F: AsRawFd + 'static, B: IoBuf> Unpin for SendZcOp<F, B> {}

impl<F: AsRawFd + 'static, B: IoBuf> std::future::Future for SendZcOp<F, B> {
    type Output = ZcDone<B>;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<ZcDone<B>> {
        let this = &mut *self;
        let op = this.op.as_mut().expect("SendZcOp polled after completion");
        loop {
            match std::task::ready!(op.poll_next(cx)) {
                Some(ZcEvent::Sent { res }) => this.res = Some(res),
                Some(ZcEvent::Released { copied }) => this.copied = copied,
                None => break,
            }
        }
        let data = this
            .op
            .take()
            .and_then(MultiOp::into_data)
            .expect("an ended multishot op hands its data back");
        // No `Sent` completion at all cannot happen (the kernel posts the
        // result first); say so rather than invent a byte count.
        let res = match this.res {
            Some(r) if r >= 0 => Ok(r as usize),
            Some(r) => Err(std::io::Error::from_raw_os_error(-r)),
            None => Err(std::io::Error::other(
                "ringloop: IORING_OP_SEND_ZC ended without a result completion",
            )),
        };
        Poll::Ready(ZcDone {
            res,
            buf: data.buf,
            copied: this.copied,
        })
    }
}

impl<F: AsRawFd + 'static, B: IoBuf> std::fmt::Debug for SendZcOp<F, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendZcOp").field("res", &self.res).finish()
    }
}
