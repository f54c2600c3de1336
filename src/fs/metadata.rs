//! [`Metadata`]: what `statx(2)` says about a file.

use std::fmt;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, SystemTime};

/// Information about a file, from `statx(2)` through the ring
/// ([`super::metadata`], [`super::File::metadata`]).
///
/// # Examples
///
/// ```
/// ringloop::run(async {
///     let meta = ringloop::fs::metadata("/").await?;
///     assert!(meta.is_dir() && !meta.is_file());
///     assert!(meta.modified()? <= std::time::SystemTime::now());
///     Ok::<(), std::io::Error>(())
/// })
/// .unwrap()
/// .unwrap();
/// ```
#[derive(Clone, Copy)]
pub struct Metadata {
    stx: libc::statx,
}

impl Metadata {
    pub(crate) fn from_statx(stx: libc::statx) -> Metadata {
        Metadata { stx }
    }

    fn file_type(&self) -> u32 {
        u32::from(self.stx.stx_mode) & libc::S_IFMT
    }

    /// The file's size in bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("ringloop-doc-md-len-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// let path = dir.join("five");
    /// std::fs::write(&path, b"12345").unwrap();
    /// let meta = ringloop::run(ringloop::fs::metadata(&path)).unwrap().unwrap();
    /// assert_eq!(meta.len(), 5);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    #[expect(clippy::len_without_is_empty, reason = "as std::fs::Metadata")]
    pub fn len(&self) -> u64 {
        self.stx.stx_size
    }

    /// Whether this is a regular file.
    ///
    /// # Examples
    ///
    /// ```
    /// let meta = ringloop::run(ringloop::fs::metadata("/proc/self/stat")).unwrap().unwrap();
    /// assert!(meta.is_file());
    /// ```
    pub fn is_file(&self) -> bool {
        self.file_type() == libc::S_IFREG
    }

    /// Whether this is a directory.
    ///
    /// # Examples
    ///
    /// ```
    /// let meta = ringloop::run(ringloop::fs::metadata("/")).unwrap().unwrap();
    /// assert!(meta.is_dir());
    /// ```
    pub fn is_dir(&self) -> bool {
        self.file_type() == libc::S_IFDIR
    }

    /// Whether this is a symbolic link (only from
    /// [`super::symlink_metadata`], which does not follow links).
    ///
    /// # Examples
    ///
    /// ```
    /// let meta = ringloop::run(ringloop::fs::symlink_metadata("/proc/self")).unwrap().unwrap();
    /// assert!(meta.is_symlink());
    /// ```
    pub fn is_symlink(&self) -> bool {
        self.file_type() == libc::S_IFLNK
    }

    /// The permission bits (`mode & 0o7777`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::unix::fs::PermissionsExt;
    /// let meta = ringloop::run(ringloop::fs::metadata("/")).unwrap().unwrap();
    /// assert_eq!(meta.permissions().mode() & 0o700, 0o700);
    /// ```
    pub fn permissions(&self) -> std::fs::Permissions {
        std::fs::Permissions::from_mode(self.mode() & 0o7777)
    }

    /// The whole `st_mode`: file type and permission bits.
    ///
    /// # Examples
    ///
    /// ```
    /// let meta = ringloop::run(ringloop::fs::metadata("/")).unwrap().unwrap();
    /// assert_eq!(meta.mode() & 0o170000, 0o040000); // S_IFDIR
    /// ```
    pub fn mode(&self) -> u32 {
        u32::from(self.stx.stx_mode)
    }

    /// The last modification time.
    ///
    /// # Errors
    ///
    /// `Unsupported` if the filesystem did not report it.
    ///
    /// # Examples
    ///
    /// ```
    /// let meta = ringloop::run(ringloop::fs::metadata("/")).unwrap().unwrap();
    /// assert!(meta.modified().unwrap() > std::time::UNIX_EPOCH);
    /// ```
    pub fn modified(&self) -> io::Result<SystemTime> {
        self.time(libc::STATX_MTIME, self.stx.stx_mtime, "modification")
    }

    /// The last access time.
    ///
    /// # Errors
    ///
    /// `Unsupported` if the filesystem did not report it.
    ///
    /// # Examples
    ///
    /// ```
    /// let meta = ringloop::run(ringloop::fs::metadata("/")).unwrap().unwrap();
    /// assert!(meta.accessed().unwrap() > std::time::UNIX_EPOCH);
    /// ```
    pub fn accessed(&self) -> io::Result<SystemTime> {
        self.time(libc::STATX_ATIME, self.stx.stx_atime, "access")
    }

    /// The creation (birth) time.
    ///
    /// # Errors
    ///
    /// `Unsupported` if the filesystem does not record it (tmpfs before
    /// Linux 5.18, procfs, ...).
    ///
    /// # Examples
    ///
    /// ```
    /// let meta = ringloop::run(ringloop::fs::metadata("/")).unwrap().unwrap();
    /// match meta.created() {
    ///     Ok(t) => assert!(t <= std::time::SystemTime::now()),
    ///     Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::Unsupported),
    /// }
    /// ```
    pub fn created(&self) -> io::Result<SystemTime> {
        self.time(libc::STATX_BTIME, self.stx.stx_btime, "creation")
    }

    fn time(&self, bit: u32, t: libc::statx_timestamp, what: &str) -> io::Result<SystemTime> {
        if self.stx.stx_mask & bit == 0 {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("the filesystem does not report the {what} time"),
            ));
        }
        let since = Duration::new(t.tv_sec.unsigned_abs(), 0);
        let nanos = Duration::from_nanos(u64::from(t.tv_nsec));
        let at = if t.tv_sec >= 0 {
            SystemTime::UNIX_EPOCH.checked_add(since)
        } else {
            SystemTime::UNIX_EPOCH.checked_sub(since)
        };
        at.and_then(|at| at.checked_add(nanos))
            .ok_or_else(|| io::Error::other(format!("the {what} time is out of range")))
    }

    /// The inode number.
    ///
    /// # Examples
    ///
    /// ```
    /// let meta = ringloop::run(ringloop::fs::metadata("/")).unwrap().unwrap();
    /// assert!(meta.ino() > 0);
    /// ```
    pub fn ino(&self) -> u64 {
        self.stx.stx_ino
    }

    /// The id of the device holding the file (as `st_dev`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::unix::fs::MetadataExt;
    /// let meta = ringloop::run(ringloop::fs::metadata("/")).unwrap().unwrap();
    /// assert_eq!(meta.dev(), std::fs::metadata("/").unwrap().dev());
    /// ```
    pub fn dev(&self) -> u64 {
        libc::makedev(self.stx.stx_dev_major, self.stx.stx_dev_minor)
    }

    /// The number of hard links.
    ///
    /// # Examples
    ///
    /// ```
    /// let meta = ringloop::run(ringloop::fs::metadata("/")).unwrap().unwrap();
    /// assert!(meta.nlink() >= 1);
    /// ```
    pub fn nlink(&self) -> u64 {
        u64::from(self.stx.stx_nlink)
    }

    /// The owner's user id.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::unix::fs::MetadataExt;
    /// let meta = ringloop::run(ringloop::fs::metadata("/")).unwrap().unwrap();
    /// assert_eq!(meta.uid(), std::fs::metadata("/").unwrap().uid());
    /// ```
    pub fn uid(&self) -> u32 {
        self.stx.stx_uid
    }

    /// The owner's group id.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::unix::fs::MetadataExt;
    /// let meta = ringloop::run(ringloop::fs::metadata("/")).unwrap().unwrap();
    /// assert_eq!(meta.gid(), std::fs::metadata("/").unwrap().gid());
    /// ```
    pub fn gid(&self) -> u32 {
        self.stx.stx_gid
    }

    /// The number of 512-byte blocks allocated (less than `len / 512` for a
    /// sparse file).
    ///
    /// # Examples
    ///
    /// ```
    /// let meta = ringloop::run(ringloop::fs::metadata("/")).unwrap().unwrap();
    /// let _allocated_bytes = meta.blocks() * 512;
    /// ```
    pub fn blocks(&self) -> u64 {
        self.stx.stx_blocks
    }

    /// The preferred I/O block size.
    ///
    /// # Examples
    ///
    /// ```
    /// let meta = ringloop::run(ringloop::fs::metadata("/")).unwrap().unwrap();
    /// assert!(meta.blksize().is_power_of_two());
    /// ```
    pub fn blksize(&self) -> u64 {
        u64::from(self.stx.stx_blksize)
    }
}

impl fmt::Debug for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metadata")
            .field("len", &self.len())
            .field("mode", &format_args!("{:o}", self.mode()))
            .field("ino", &self.ino())
            .field("nlink", &self.nlink())
            .field("uid", &self.uid())
            .field("gid", &self.gid())
            .field("modified", &self.modified().ok())
            .finish_non_exhaustive()
    }
}
