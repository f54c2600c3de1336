//! [`File`]: positional reads and writes through the ring.

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::shared_fd::SharedFd;
use super::{Metadata, OpenOptions};
use crate::driver::Driver;
use crate::driver::op::fallocate::Fallocate;
use crate::driver::op::fsync::Fsync;
use crate::driver::op::ftruncate::Ftruncate;
use crate::driver::op::read::Read;
use crate::driver::op::statx::Statx;
use crate::driver::op::write::Write;
use crate::driver::op::{Op, OpCode};
use crate::io::{IoBuf, IoBufMut};

/// An open file on the running loop's ring.
///
/// Reads and writes are positional (`pread`/`pwrite`: there is no file
/// position) and take owned buffers, giving them back with the result:
/// `let (res, buf) = file.read_at(buf, offset).await;`. They take `&self`,
/// so several can be in flight on one file at once.
///
/// A `File` belongs to the loop (thread) that opened it. Dropping it closes
/// the fd through the ring once every operation still using it has
/// finished (an abandoned read keeps the fd open until its completion);
/// [`File::close`] does the same and reports `close(2)`'s error.
///
/// # Examples
///
/// ```
/// use ringloop::fs::File;
/// # let dir = std::env::temp_dir().join(format!("ringloop-doc-file-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("greeting");
/// ringloop::run(async {
///     let file = File::create(&path).await?;
///     let (res, _) = file.write_all_at(b"hello, world".to_vec(), 0).await;
///     res?;
///     file.sync_all().await?;
///     file.close().await?;
///
///     let file = File::open(&path).await?;
///     let (res, buf) = file.read_at(Vec::with_capacity(5), 7).await;
///     assert_eq!((res?, &buf[..]), (5, &b"world"[..]));
///     Ok::<(), std::io::Error>(())
/// })
/// .unwrap()
/// .unwrap();
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub struct File {
    fd: SharedFd,
    /// The path it was opened with, for `Debug`.
    path: Option<PathBuf>,
}

/// Positions past `i64::MAX` mean "the file position" (or nothing) to the
/// kernel: refuse them rather than read or write somewhere else.
fn check_offset(offset: u64, len: usize) -> io::Result<()> {
    match offset.checked_add(len as u64) {
        Some(end) if end <= i64::MAX as u64 => Ok(()),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("file offset {offset} + {len} is past i64::MAX"),
        )),
    }
}

impl File {
    pub(crate) fn from_parts(
        fd: OwnedFd,
        driver: Rc<RefCell<Driver>>,
        path: Option<&Path>,
    ) -> File {
        File {
            fd: SharedFd::new(fd, driver),
            path: path.map(Path::to_path_buf),
        }
    }

    /// Opens `path` read-only.
    ///
    /// # Errors
    ///
    /// As for [`OpenOptions::open`]: `NotFound`, `PermissionDenied`, ...
    /// with the path in the message.
    ///
    /// # Examples
    ///
    /// ```
    /// ringloop::run(async {
    ///     let f = ringloop::fs::File::open("/proc/self/stat").await?;
    ///     let (res, _) = f.read_at(Vec::with_capacity(16), 0).await;
    ///     assert!(res? > 0);
    ///     let err = ringloop::fs::File::open("/no/such/file").await.unwrap_err();
    ///     assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    ///     Ok::<(), std::io::Error>(())
    /// })
    /// .unwrap()
    /// .unwrap();
    /// ```
    pub async fn open(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new().read(true).open(path).await
    }

    /// Opens `path` write-only, creating it or truncating it to length 0.
    ///
    /// # Errors
    ///
    /// As for [`OpenOptions::open`].
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("ringloop-doc-create-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// let path = dir.join("out");
    /// ringloop::run(async {
    ///     let f = ringloop::fs::File::create(&path).await?;
    ///     let (res, _) = f.write_all_at("data", 0).await;
    ///     res
    /// })
    /// .unwrap()
    /// .unwrap();
    /// assert_eq!(std::fs::read(&path).unwrap(), b"data");
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub async fn create(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .await
    }

    /// A blank [`OpenOptions`] (as [`std::fs::File::options`]).
    ///
    /// # Examples
    ///
    /// ```
    /// ringloop::run(async {
    ///     let f = ringloop::fs::File::options().read(true).open("/").await?;
    ///     assert!(f.metadata().await?.is_dir());
    ///     Ok::<(), std::io::Error>(())
    /// })
    /// .unwrap()
    /// .unwrap();
    /// ```
    pub fn options() -> OpenOptions {
        OpenOptions::new()
    }

    /// Adopts a file opened by `std` (or anything owning a file fd).
    ///
    /// # Errors
    ///
    /// When no ringloop loop is running on this thread.
    ///
    /// # Examples
    ///
    /// ```
    /// ringloop::run(async {
    ///     let std_file = std::fs::File::open("/proc/self/stat")?;
    ///     let f = ringloop::fs::File::from_std(std_file)?;
    ///     let (res, _) = f.read_at(Vec::with_capacity(8), 0).await;
    ///     assert!(res? > 0);
    ///     Ok::<(), std::io::Error>(())
    /// })
    /// .unwrap()
    /// .unwrap();
    /// ```
    pub fn from_std(file: std::fs::File) -> io::Result<File> {
        let driver = crate::runtime::current_driver()?;
        Ok(File::from_parts(OwnedFd::from(file), driver, None))
    }

    /// Reads once into `buf`'s storage (up to `bytes_total()`, from its
    /// start) from `offset`; `Ok(0)` at or past the end of the file. May
    /// read fewer bytes than asked.
    ///
    /// # Errors
    ///
    /// What `pread(2)` reports; `InvalidInput` for an offset past
    /// `i64::MAX`.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("ringloop-doc-read-at-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// let path = dir.join("abc");
    /// std::fs::write(&path, b"abcdef").unwrap();
    /// ringloop::run(async {
    ///     let f = ringloop::fs::File::open(&path).await?;
    ///     let (res, buf) = f.read_at(Vec::with_capacity(3), 2).await;
    ///     assert_eq!((res?, &buf[..]), (3, &b"cde"[..]));
    ///     let (res, _) = f.read_at(buf, 6).await;
    ///     assert_eq!(res?, 0); // end of file
    ///     Ok::<(), std::io::Error>(())
    /// })
    /// .unwrap()
    /// .unwrap();
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub async fn read_at<B: IoBufMut>(&self, buf: B, offset: u64) -> (io::Result<usize>, B) {
        if let Err(e) = check_offset(offset, 0) {
            return (Err(e), buf);
        }
        match Op::try_submit(self.fd.driver(), Read::new(self.fd.clone(), buf, offset)) {
            Ok(op) => op.await,
            Err((e, read)) => (Err(e), read.into_buf()),
        }
    }

    /// Fills all of `buf`'s storage (`bytes_total()`) from `offset`, or
    /// fails with `UnexpectedEof` if the file ends first (the buffer then
    /// holds what was read).
    ///
    /// # Errors
    ///
    /// `UnexpectedEof`, or as for [`File::read_at`].
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("ringloop-doc-read-exact-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// let path = dir.join("abc");
    /// std::fs::write(&path, b"abcdef").unwrap();
    /// ringloop::run(async {
    ///     let f = ringloop::fs::File::open(&path).await?;
    ///     let (res, buf) = f.read_exact_at(vec![0; 4], 1).await;
    ///     res?;
    ///     assert_eq!(buf, b"bcde");
    ///     let (res, _) = f.read_exact_at(vec![0; 4], 4).await;
    ///     assert_eq!(res.unwrap_err().kind(), std::io::ErrorKind::UnexpectedEof);
    ///     Ok::<(), std::io::Error>(())
    /// })
    /// .unwrap()
    /// .unwrap();
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub async fn read_exact_at<B: IoBufMut>(&self, buf: B, offset: u64) -> (io::Result<()>, B) {
        let total = buf.bytes_total();
        if let Err(e) = check_offset(offset, total) {
            return (Err(e), buf);
        }
        let mut got = 0;
        let mut slice = buf.slice(..);
        while got < total {
            let (res, s) = self.read_at(slice, offset + got as u64).await;
            let buf = s.into_inner();
            match res {
                Ok(0) => {
                    return (
                        Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("the file ended after {got} of {total} bytes"),
                        )),
                        buf,
                    );
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (Err(e), buf),
            }
            slice = buf.slice(got..);
        }
        (Ok(()), slice.into_inner())
    }

    /// Writes once from `buf`'s initialised bytes at `offset`; may write
    /// fewer (see [`File::write_all_at`]).
    ///
    /// # Errors
    ///
    /// What `pwrite(2)` reports (`StorageFull`, ...); `InvalidInput` for
    /// an offset past `i64::MAX`.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("ringloop-doc-write-at-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// let path = dir.join("sparse");
    /// ringloop::run(async {
    ///     let f = ringloop::fs::File::create(&path).await?;
    ///     let (res, _) = f.write_at(b"end".to_vec(), 1000).await;
    ///     assert_eq!(res?, 3);
    ///     assert_eq!(f.metadata().await?.len(), 1003);
    ///     Ok::<(), std::io::Error>(())
    /// })
    /// .unwrap()
    /// .unwrap();
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub async fn write_at<B: IoBuf>(&self, buf: B, offset: u64) -> (io::Result<usize>, B) {
        if let Err(e) = check_offset(offset, buf.bytes_init()) {
            return (Err(e), buf);
        }
        match Op::try_submit(self.fd.driver(), Write::new(self.fd.clone(), buf, offset)) {
            Ok(op) => op.await,
            Err((e, write)) => (Err(e), write.into_buf()),
        }
    }

    /// Writes all of `buf`'s initialised bytes at `offset`.
    ///
    /// # Errors
    ///
    /// `WriteZero` if a write made no progress, or as for
    /// [`File::write_at`]; part of the data may have been written.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("ringloop-doc-write-all-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// let path = dir.join("big");
    /// ringloop::run(async {
    ///     let f = ringloop::fs::File::create(&path).await?;
    ///     let (res, buf) = f.write_all_at(vec![7u8; 1 << 20], 0).await;
    ///     res?;
    ///     assert_eq!(buf.len(), 1 << 20); // the buffer comes back
    ///     Ok::<(), std::io::Error>(())
    /// })
    /// .unwrap()
    /// .unwrap();
    /// assert_eq!(std::fs::metadata(&path).unwrap().len(), 1 << 20);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub async fn write_all_at<B: IoBuf>(&self, buf: B, offset: u64) -> (io::Result<()>, B) {
        let total = buf.bytes_init();
        let mut written = 0;
        let mut slice = buf.slice(..);
        while written < total {
            let (res, s) = self.write_at(slice, offset + written as u64).await;
            let buf = s.into_inner();
            match res {
                Ok(0) => {
                    let e = io::Error::new(io::ErrorKind::WriteZero, "pwrite wrote 0 bytes");
                    return (Err(e), buf);
                }
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (Err(e), buf),
            }
            slice = buf.slice(written..);
        }
        (Ok(()), slice.into_inner())
    }

    /// Flushes the file's data and metadata to the device (`fsync(2)`).
    ///
    /// Only writes that have completed are covered: an fsync does not wait
    /// for writes still in flight.
    ///
    /// # Errors
    ///
    /// What `fsync(2)` reports (`EIO` from an earlier failed writeback,
    /// ...); `Unsupported` if the kernel lacks `IORING_OP_FSYNC`.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("ringloop-doc-sync-all-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// ringloop::run(async {
    ///     let f = ringloop::fs::File::create(dir.join("durable")).await?;
    ///     let (res, _) = f.write_all_at("committed", 0).await;
    ///     res?;
    ///     f.sync_all().await
    /// })
    /// .unwrap()
    /// .unwrap();
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub async fn sync_all(&self) -> io::Result<()> {
        Op::submit(self.fd.driver(), Fsync::new(self.fd.clone(), false))?.await
    }

    /// Flushes the file's data, and only the metadata needed to read it
    /// back (`fdatasync(2)`).
    ///
    /// # Errors
    ///
    /// As for [`File::sync_all`].
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("ringloop-doc-sync-data-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// ringloop::run(async {
    ///     let f = ringloop::fs::File::create(dir.join("journal")).await?;
    ///     let (res, _) = f.write_all_at("entry", 0).await;
    ///     res?;
    ///     f.sync_data().await
    /// })
    /// .unwrap()
    /// .unwrap();
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub async fn sync_data(&self) -> io::Result<()> {
        Op::submit(self.fd.driver(), Fsync::new(self.fd.clone(), true))?.await
    }

    /// The file's [`Metadata`] (`statx(2)` of the open fd).
    ///
    /// # Errors
    ///
    /// What `statx(2)` reports; `Unsupported` if the kernel lacks
    /// `IORING_OP_STATX`.
    ///
    /// # Examples
    ///
    /// ```
    /// ringloop::run(async {
    ///     let f = ringloop::fs::File::open("/proc/self/stat").await?;
    ///     let meta = f.metadata().await?;
    ///     assert!(meta.is_file());
    ///     Ok::<(), std::io::Error>(())
    /// })
    /// .unwrap()
    /// .unwrap();
    /// ```
    pub async fn metadata(&self) -> io::Result<Metadata> {
        let stx = Op::submit(self.fd.driver(), Statx::fd(self.fd.clone()))?.await?;
        Ok(Metadata::from_statx(stx))
    }

    /// Truncates or extends the file to `size` bytes (extending leaves a
    /// hole that reads as zeros).
    ///
    /// Uses `IORING_OP_FTRUNCATE` (Linux 6.9+). On older kernels it makes a
    /// plain, blocking `ftruncate(2)` call on the loop's thread instead
    /// (`fallocate` could grow the file but not shrink it); that is usually
    /// quick, but stalls the loop on a slow filesystem.
    ///
    /// # Errors
    ///
    /// What `ftruncate(2)` reports (`InvalidInput` if the file is not open
    /// for writing, ...).
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("ringloop-doc-set-len-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// ringloop::run(async {
    ///     let f = ringloop::fs::File::create(dir.join("sized")).await?;
    ///     f.set_len(4096).await?;
    ///     assert_eq!(f.metadata().await?.len(), 4096);
    ///     f.set_len(10).await?;
    ///     assert_eq!(f.metadata().await?.len(), 10);
    ///     Ok::<(), std::io::Error>(())
    /// })
    /// .unwrap()
    /// .unwrap();
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub async fn set_len(&self, size: u64) -> io::Result<()> {
        let driver = self.fd.driver();
        if !driver.borrow().supports(Ftruncate::<SharedFd>::CODE) {
            return crate::sys::ftruncate(&self.fd, size);
        }
        Op::submit(driver, Ftruncate::new(self.fd.clone(), size))?.await
    }

    /// Allocates disk space for `len` bytes from `offset` (`fallocate(2)`,
    /// mode 0), so later writes there cannot fail for lack of space. The
    /// file grows if the range ends past its end; it never shrinks.
    ///
    /// # Errors
    ///
    /// `StorageFull`; `Unsupported` if the filesystem (or the kernel's
    /// ring: `IORING_OP_FALLOCATE`) cannot do it; `InvalidInput` for a zero
    /// `len`.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("ringloop-doc-allocate-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// ringloop::run(async {
    ///     let f = ringloop::fs::File::create(dir.join("reserved")).await?;
    ///     match f.allocate(0, 1 << 20).await {
    ///         Ok(()) => assert_eq!(f.metadata().await?.len(), 1 << 20),
    ///         // Some filesystems cannot preallocate.
    ///         Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::Unsupported),
    ///     }
    ///     Ok::<(), std::io::Error>(())
    /// })
    /// .unwrap()
    /// .unwrap();
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub async fn allocate(&self, offset: u64, len: u64) -> io::Result<()> {
        check_offset(offset, 0)?;
        Op::submit(
            self.fd.driver(),
            Fallocate::new(self.fd.clone(), offset, len, 0),
        )?
        .await
    }

    /// Closes the file through the ring and reports `close(2)`'s error,
    /// which dropping the file cannot (on NFS, for example, a deferred
    /// write error may surface only here). Waits first for any abandoned
    /// operation still using the fd to finish.
    ///
    /// # Errors
    ///
    /// What `close(2)` reports. The fd is closed either way.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("ringloop-doc-close-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// ringloop::run(async {
    ///     let f = ringloop::fs::File::create(dir.join("closed")).await?;
    ///     let (res, _) = f.write_all_at("bye", 0).await;
    ///     res?;
    ///     f.close().await
    /// })
    /// .unwrap()
    /// .unwrap();
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub async fn close(self) -> io::Result<()> {
        self.fd.close().await
    }
}

impl AsRawFd for File {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl fmt::Debug for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("File")
            .field("fd", &self.as_raw_fd())
            .field("path", &self.path)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::File;

    /// The paths taken on kernels without `IORING_OP_FTRUNCATE` or
    /// `IORING_OP_CLOSE`, which this kernel may not exercise otherwise.
    #[test]
    fn syscall_fallbacks_for_set_len_and_close() {
        let dir = std::env::temp_dir().join(format!("ringloop-unit-fs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("file");
        let res = crate::run(async {
            let f = File::create(&path).await?;
            crate::sys::ftruncate(&f.fd, 5000)?;
            assert_eq!(f.metadata().await?.len(), 5000);
            crate::sys::ftruncate(&f.fd, 7)?;
            assert_eq!(f.metadata().await?.len(), 7);
            let std_file = std::fs::File::open(&path)?;
            crate::sys::close(std_file.into())
        });
        let _ = std::fs::remove_dir_all(&dir);
        res.unwrap().unwrap();
    }
}
