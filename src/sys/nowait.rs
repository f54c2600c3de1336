//! Non-blocking socket syscalls on borrowed memory, for the readiness path
//! (`crate::net::ready`): each returns at once, `WouldBlock` when the
//! socket has nothing to give or no room, and never touches memory after
//! it returns (unlike an io_uring op, which may write later).

use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::os::fd::RawFd;

/// The most iovecs one `sendmsg(2)` takes (`UIO_MAXIOV`); more are left
/// for the next call (a vectored write may be partial anyway).
const MAX_IOVECS: usize = 1024;

fn cvt_size(r: isize) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// `recv(2)` with `MSG_DONTWAIT` into `buf`: `Ok(n)` means the first `n`
/// bytes of `buf` are initialised now (`Ok(0)`: end of stream, or an empty
/// `buf`).
pub(crate) fn recv(fd: RawFd, buf: &mut [MaybeUninit<u8>]) -> io::Result<usize> {
    // SAFETY: the pointer and length describe `buf`, writable for the
    // call's duration; the kernel writes at most `len` bytes and reports
    // how many, which are initialised from then on.
    cvt_size(unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) })
}

/// `send(2)` with `MSG_DONTWAIT | MSG_NOSIGNAL` (a reset peer is `EPIPE`,
/// never `SIGPIPE`).
pub(crate) fn send(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: the pointer and length describe `buf`, readable for the
    // call's duration.
    cvt_size(unsafe {
        libc::send(
            fd,
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    })
}

/// `sendmsg(2)` of `bufs` in order (at most [`MAX_IOVECS`] of them), with
/// `MSG_DONTWAIT | MSG_NOSIGNAL`.
pub(crate) fn send_vectored(fd: RawFd, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    let bufs = &bufs[..bufs.len().min(MAX_IOVECS)];
    // SAFETY: msghdr is plain data; all-zero is a valid empty header.
    let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
    // `IoSlice` is ABI-compatible with `iovec` on Unix (std documents it);
    // the kernel only reads through the pointer.
    hdr.msg_iov = bufs.as_ptr().cast_mut().cast();
    hdr.msg_iovlen = bufs.len();
    // SAFETY: `hdr` points at `bufs.len()` iovecs, each describing a live,
    // readable slice, for the call's duration; no name, no control data.
    cvt_size(unsafe { libc::sendmsg(fd, &hdr, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) })
}

/// `shutdown(2)`: never blocks.
pub(crate) fn shutdown(fd: RawFd, how: std::net::Shutdown) -> io::Result<()> {
    let how = match how {
        std::net::Shutdown::Read => libc::SHUT_RD,
        std::net::Shutdown::Write => libc::SHUT_WR,
        std::net::Shutdown::Both => libc::SHUT_RDWR,
    };
    // SAFETY: no pointers; the kernel checks the fd.
    if unsafe { libc::shutdown(fd, how) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn recv_and_send_never_block_and_vectored_sends_keep_order() {
        let (a, b) = super::super::socketpair(libc::AF_UNIX, libc::SOCK_STREAM).unwrap();
        let mut buf = [MaybeUninit::<u8>::uninit(); 16];
        let e = recv(b.as_raw_fd(), &mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        let parts = [IoSlice::new(b"ab"), IoSlice::new(b""), IoSlice::new(b"cde")];
        assert_eq!(send_vectored(a.as_raw_fd(), &parts).unwrap(), 5);
        assert_eq!(send(a.as_raw_fd(), b"f").unwrap(), 1);
        let n = recv(b.as_raw_fd(), &mut buf).unwrap();
        assert_eq!(n, 6);
        // SAFETY: recv initialised the first `n` bytes.
        let got: Vec<u8> = buf[..n]
            .iter()
            .map(|b| unsafe { b.assume_init() })
            .collect();
        assert_eq!(got, b"abcdef");
        shutdown(a.as_raw_fd(), std::net::Shutdown::Write).unwrap();
        assert_eq!(recv(b.as_raw_fd(), &mut buf).unwrap(), 0);
    }
}
