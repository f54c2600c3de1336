//! Files and directories: [`File`], [`OpenOptions`], [`Metadata`], and
//! free functions in the spirit of `std::fs` ([`read`], [`write()`],
//! [`metadata()`], [`rename`], [`remove_file`], [`create_dir`], ...).
//!
//! None of them blocks the loop's thread. On the io_uring backend every
//! operation is one request on the running loop's ring (`OPENAT`, `READ`,
//! `WRITE`, `FSYNC`, `STATX`, `FTRUNCATE`, `FALLOCATE`, `UNLINKAT`,
//! `RENAMEAT`, `MKDIRAT`, `CLOSE`). On the epoll backend, which cannot wait
//! for files, the same requests run as blocking syscalls on the loop's
//! blocking pool (a read first tries `preadv2(RWF_NOWAIT)`, which the page
//! cache answers at once), with the same results and cancellation.
//!
//! An io_uring kernel that lacks one of these opcodes (they are probed when
//! the loop is made) fails that operation with an `Unsupported` error
//! naming the opcode, except [`File::set_len`], which falls back to a
//! plain `ftruncate(2)` call. To run the `std::fs` call on the blocking
//! pool instead, use [`to_thread`](crate::to_thread).
//!
//! Files, like sockets, are made inside a running loop (see
//! [`crate::guide::sockets`]); [`File::from_std`] adopts a `std::fs::File`.
//!
//! Paths are anything `AsRef<Path>`, UTF-8 or not; a path containing a NUL
//! byte is an `InvalidInput` error. Errors about a path name it, as in
//! `open /etc/shadow: Permission denied (os error 13)`, and keep the
//! underlying [`io::ErrorKind`].
//!
//! Cancelling (dropping) any of these futures never leaks an fd or frees
//! memory the kernel still uses: an open that completes after its future
//! was dropped closes the fd it got.
//!
//! # Examples
//!
//! ```
//! use ringloop::fs;
//! # let dir = std::env::temp_dir().join(format!("ringloop-doc-fs-{}", std::process::id()));
//! ringloop::run(async {
//!     fs::create_dir(&dir).await?;
//!     fs::write(dir.join("a.txt"), "hello").await?;
//!     fs::rename(dir.join("a.txt"), dir.join("b.txt")).await?;
//!     assert_eq!(fs::read(dir.join("b.txt")).await?, b"hello");
//!     assert_eq!(fs::metadata(dir.join("b.txt")).await?.len(), 5);
//!     fs::remove_file(dir.join("b.txt")).await?;
//!     fs::remove_dir(&dir).await
//! })
//! .unwrap()
//! .unwrap();
//! ```

mod file;
mod metadata;
mod open_options;
mod shared_fd;

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub use file::File;
pub use metadata::Metadata;
pub use open_options::OpenOptions;

use crate::driver::op::mkdirat::MkDirAt;
use crate::driver::op::renameat::RenameAt;
use crate::driver::op::statx::Statx;
use crate::driver::op::unlinkat::UnlinkAt;
use crate::driver::op::{Op, OpCode};
use crate::io::IoBuf;

/// `path` as the NUL-terminated string the kernel reads.
pub(crate) fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("path {path:?} contains a NUL byte"),
        )
    })
}

/// `e` with `what` and the path in its message, and the same kind.
pub(crate) fn with_path(what: &str, path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

/// Submits `op` on the running loop's ring and awaits it, naming `path` in
/// any error.
async fn run_op<T>(what: &str, path: &Path, op: T) -> io::Result<T::Output>
where
    T: OpCode,
{
    let driver = crate::runtime::current_driver()?;
    let op = Op::submit(&driver, op).map_err(|e| with_path(what, path, e))?;
    Ok(op.await)
}

/// Reads the whole file at `path` (its size from `statx`, then reads until
/// the end).
///
/// # Errors
///
/// As for [`File::open`] and [`File::read_at`], with the path in the
/// message.
///
/// # Examples
///
/// ```
/// let stat = ringloop::run(ringloop::fs::read("/proc/self/stat")).unwrap().unwrap();
/// assert!(!stat.is_empty());
/// ```
pub async fn read(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    let path = path.as_ref();
    let file = File::open(path).await?;
    // Files in /proc and /sys report size 0: then the hint is just 0.
    let hint = file.metadata().await.map_or(0, |m| m.len());
    let hint = usize::try_from(hint).unwrap_or(usize::MAX);
    read_to_end(&file, hint)
        .await
        .map_err(|e| with_path("read", path, e))
}

/// Reads `file` from offset 0 to its end into a buffer first sized `hint`.
async fn read_to_end(file: &File, hint: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(hint);
    // When `buf` is full, a small read tells the end of the file from more
    // data without growing (and copying) `buf`.
    let mut probe = Vec::with_capacity(64);
    loop {
        let len = buf.len();
        let res = if len == buf.capacity() {
            probe.clear();
            let (res, p) = file.read_at(probe, len as u64).await;
            probe = p;
            if matches!(res, Ok(n) if n > 0) {
                buf.extend_from_slice(&probe);
                buf.reserve(buf.len().max(8192));
            }
            res
        } else {
            let (res, slice) = file.read_at(buf.slice(len..), len as u64).await;
            buf = slice.into_inner();
            res
        };
        match res {
            Ok(0) => return Ok(buf),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Reads the whole file at `path` as UTF-8.
///
/// # Errors
///
/// As for [`read`]; `InvalidData` if the file is not UTF-8.
///
/// # Examples
///
/// ```
/// let stat = ringloop::run(ringloop::fs::read_to_string("/proc/self/stat")).unwrap().unwrap();
/// assert!(stat.contains('('));
/// ```
pub async fn read_to_string(path: impl AsRef<Path>) -> io::Result<String> {
    let path = path.as_ref();
    String::from_utf8(read(path).await?).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("read {}: the file is not valid UTF-8", path.display()),
        )
    })
}

/// Writes `contents` (an owned buffer: `Vec<u8>`, `String`, `&'static
/// str`, ...) as the whole of the file at `path`, creating it or
/// truncating it first, then closes it (reporting `close(2)`'s error).
///
/// # Errors
///
/// As for [`File::create`] and [`File::write_all_at`], with the path in
/// the message.
///
/// # Examples
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("ringloop-doc-fs-write-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("hello.txt");
/// ringloop::run(ringloop::fs::write(&path, "hello")).unwrap().unwrap();
/// assert_eq!(std::fs::read(&path).unwrap(), b"hello");
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub async fn write(path: impl AsRef<Path>, contents: impl IoBuf) -> io::Result<()> {
    let path = path.as_ref();
    let file = File::create(path).await?;
    let (res, _) = file.write_all_at(contents, 0).await;
    let closed = file.close().await;
    res.and(closed).map_err(|e| with_path("write", path, e))
}

/// Removes the file (or symlink) at `path` (`unlinkat(2)`).
///
/// # Errors
///
/// `NotFound`, `PermissionDenied`, `IsADirectory`, ... with the path in
/// the message; `Unsupported` if the kernel lacks `IORING_OP_UNLINKAT`
/// (before Linux 5.11).
///
/// # Examples
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("ringloop-doc-rm-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("doomed");
/// std::fs::write(&path, b"").unwrap();
/// ringloop::run(ringloop::fs::remove_file(&path)).unwrap().unwrap();
/// assert!(!path.exists());
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub async fn remove_file(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref();
    let op = UnlinkAt::new(cstring(path)?, 0);
    run_op("remove_file", path, op)
        .await?
        .map_err(|e| with_path("remove_file", path, e))
}

/// Removes the empty directory at `path` (`unlinkat(2)` with
/// `AT_REMOVEDIR`).
///
/// # Errors
///
/// `NotFound`, `DirectoryNotEmpty`, `NotADirectory`, ... with the path in
/// the message; `Unsupported` if the kernel lacks `IORING_OP_UNLINKAT`.
///
/// # Examples
///
/// ```
/// let dir = std::env::temp_dir().join(format!("ringloop-doc-rmdir-{}", std::process::id()));
/// std::fs::create_dir(&dir).unwrap();
/// ringloop::run(ringloop::fs::remove_dir(&dir)).unwrap().unwrap();
/// assert!(!dir.exists());
/// ```
pub async fn remove_dir(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref();
    let op = UnlinkAt::new(cstring(path)?, libc::AT_REMOVEDIR);
    run_op("remove_dir", path, op)
        .await?
        .map_err(|e| with_path("remove_dir", path, e))
}

/// Renames `from` to `to` (`renameat(2)`), replacing `to` if it is a file
/// (or an empty directory, when `from` is a directory). Atomic within one
/// filesystem.
///
/// # Errors
///
/// `NotFound`, `CrossesDevices`, `PermissionDenied`, ... with both paths
/// in the message; `Unsupported` if the kernel lacks `IORING_OP_RENAMEAT`
/// (before Linux 5.11).
///
/// # Examples
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("ringloop-doc-rename-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// std::fs::write(dir.join("draft"), b"text").unwrap();
/// ringloop::run(ringloop::fs::rename(dir.join("draft"), dir.join("final"))).unwrap().unwrap();
/// assert_eq!(std::fs::read(dir.join("final")).unwrap(), b"text");
/// assert!(!dir.join("draft").exists());
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub async fn rename(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<()> {
    let (from, to) = (from.as_ref(), to.as_ref());
    let context = |e: io::Error| {
        io::Error::new(
            e.kind(),
            format!("rename {} to {}: {e}", from.display(), to.display()),
        )
    };
    let op = RenameAt::new(cstring(from)?, cstring(to)?);
    let driver = crate::runtime::current_driver()?;
    Op::submit(&driver, op)
        .map_err(context)?
        .await
        .map_err(context)
}

/// Creates the directory `path` with mode 0o777 less the umask
/// (`mkdirat(2)`); its parent must exist.
///
/// # Errors
///
/// `AlreadyExists`, `NotFound` (no parent), `PermissionDenied`, ... with
/// the path in the message; `Unsupported` if the kernel lacks
/// `IORING_OP_MKDIRAT` (before Linux 5.15).
///
/// # Examples
///
/// ```
/// let dir = std::env::temp_dir().join(format!("ringloop-doc-mkdir-{}", std::process::id()));
/// ringloop::run(ringloop::fs::create_dir(&dir)).unwrap().unwrap();
/// assert!(dir.is_dir());
/// # std::fs::remove_dir(&dir).unwrap();
/// ```
pub async fn create_dir(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref();
    let op = MkDirAt::new(cstring(path)?, 0o777);
    run_op("create_dir", path, op)
        .await?
        .map_err(|e| with_path("create_dir", path, e))
}

/// The [`Metadata`] of `path`, following symlinks (`statx(2)`).
///
/// # Errors
///
/// `NotFound`, `PermissionDenied`, ... with the path in the message;
/// `Unsupported` if the kernel lacks `IORING_OP_STATX`.
///
/// # Examples
///
/// ```
/// ringloop::run(async {
///     assert!(ringloop::fs::metadata("/proc/self").await?.is_dir());
///     let err = ringloop::fs::metadata("/no/such/path").await.unwrap_err();
///     assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
///     Ok::<(), std::io::Error>(())
/// })
/// .unwrap()
/// .unwrap();
/// ```
pub async fn metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    stat(path.as_ref(), true).await
}

/// The [`Metadata`] of `path` itself: a symlink is not followed.
///
/// # Errors
///
/// As for [`metadata`].
///
/// # Examples
///
/// ```
/// ringloop::run(async {
///     assert!(ringloop::fs::symlink_metadata("/proc/self").await?.is_symlink());
///     Ok::<(), std::io::Error>(())
/// })
/// .unwrap()
/// .unwrap();
/// ```
pub async fn symlink_metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    stat(path.as_ref(), false).await
}

async fn stat(path: &Path, follow: bool) -> io::Result<Metadata> {
    let op = Statx::path(cstring(path)?, follow);
    let stx = run_op("metadata", path, op)
        .await?
        .map_err(|e| with_path("metadata", path, e))?;
    Ok(Metadata::from_statx(stx))
}
