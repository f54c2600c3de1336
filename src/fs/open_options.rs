//! [`OpenOptions`]: how [`File`] opens a file.

use std::io;
use std::path::Path;

use super::{File, cstring, with_path};
use crate::driver::op::Op;
use crate::driver::op::openat::OpenAt;

/// Options for opening a [`File`], as [`std::fs::OpenOptions`]; the open
/// itself is an `IORING_OP_OPENAT` on the running loop's ring.
///
/// Files are always opened close-on-exec.
///
/// # Examples
///
/// ```
/// use ringloop::fs::OpenOptions;
/// # let dir = std::env::temp_dir().join(format!("ringloop-doc-oo-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("log.txt");
/// ringloop::run(async {
///     let log = OpenOptions::new()
///         .append(true)
///         .create(true)
///         .mode(0o600)
///         .open(&path)
///         .await?;
///     let (res, _) = log.write_all_at(b"one line\n".to_vec(), 0).await;
///     res?;
///     log.close().await
/// })
/// .unwrap()
/// .unwrap();
/// assert_eq!(std::fs::read(&path).unwrap(), b"one line\n");
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct OpenOptions {
    read: bool,
    write: bool,
    append: bool,
    truncate: bool,
    create: bool,
    create_new: bool,
    mode: u32,
    custom_flags: i32,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions::new()
    }
}

impl OpenOptions {
    /// All options off; `mode` 0o666 (less the umask) for created files.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut options = ringloop::fs::OpenOptions::new();
    /// options.read(true);
    /// ```
    pub fn new() -> OpenOptions {
        OpenOptions {
            read: false,
            write: false,
            append: false,
            truncate: false,
            create: false,
            create_new: false,
            mode: 0o666,
            custom_flags: 0,
        }
    }

    /// Opens for reading.
    ///
    /// # Examples
    ///
    /// ```
    /// ringloop::run(async {
    ///     let f = ringloop::fs::OpenOptions::new().read(true).open("/proc/self/stat").await?;
    ///     let (res, buf) = f.read_at(Vec::with_capacity(64), 0).await;
    ///     assert!(res? > 0 && !buf.is_empty());
    ///     Ok::<(), std::io::Error>(())
    /// })
    /// .unwrap()
    /// .unwrap();
    /// ```
    pub fn read(&mut self, read: bool) -> &mut Self {
        self.read = read;
        self
    }

    /// Opens for writing.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("ringloop-doc-oo-write-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// let path = dir.join("data");
    /// std::fs::write(&path, b"hello").unwrap();
    /// ringloop::run(async {
    ///     let f = ringloop::fs::OpenOptions::new().write(true).open(&path).await?;
    ///     let (res, _) = f.write_all_at(b"J".to_vec(), 0).await;
    ///     res
    /// })
    /// .unwrap()
    /// .unwrap();
    /// assert_eq!(std::fs::read(&path).unwrap(), b"Jello");
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn write(&mut self, write: bool) -> &mut Self {
        self.write = write;
        self
    }

    /// Opens for appending (`O_APPEND`; implies writing). Every write goes
    /// to the end of the file, whatever offset `write_at` is given (Linux's
    /// `pwrite` on an append-mode file).
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("ringloop-doc-oo-append-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// let path = dir.join("data");
    /// std::fs::write(&path, b"ab").unwrap();
    /// ringloop::run(async {
    ///     let f = ringloop::fs::OpenOptions::new().append(true).open(&path).await?;
    ///     let (res, _) = f.write_all_at(b"c".to_vec(), 0).await;
    ///     res
    /// })
    /// .unwrap()
    /// .unwrap();
    /// assert_eq!(std::fs::read(&path).unwrap(), b"abc");
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn append(&mut self, append: bool) -> &mut Self {
        self.append = append;
        self
    }

    /// Truncates an existing file to length 0 (`O_TRUNC`; needs write).
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("ringloop-doc-oo-trunc-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// let path = dir.join("data");
    /// std::fs::write(&path, b"old contents").unwrap();
    /// ringloop::run(async {
    ///     ringloop::fs::OpenOptions::new().write(true).truncate(true).open(&path).await
    /// })
    /// .unwrap()
    /// .unwrap();
    /// assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn truncate(&mut self, truncate: bool) -> &mut Self {
        self.truncate = truncate;
        self
    }

    /// Creates the file if it does not exist (`O_CREAT`; needs write or
    /// append).
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("ringloop-doc-oo-create-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// let path = dir.join("new");
    /// ringloop::run(async {
    ///     ringloop::fs::OpenOptions::new().write(true).create(true).open(&path).await
    /// })
    /// .unwrap()
    /// .unwrap();
    /// assert!(path.exists());
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn create(&mut self, create: bool) -> &mut Self {
        self.create = create;
        self
    }

    /// Creates the file, failing with `AlreadyExists` if it exists
    /// (`O_CREAT | O_EXCL`, atomic; `create` and `truncate` are then
    /// ignored).
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("ringloop-doc-oo-new-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// let path = dir.join("lock");
    /// ringloop::run(async {
    ///     let mut options = ringloop::fs::OpenOptions::new();
    ///     options.write(true).create_new(true);
    ///     options.open(&path).await?;
    ///     let again = options.open(&path).await.unwrap_err();
    ///     assert_eq!(again.kind(), std::io::ErrorKind::AlreadyExists);
    ///     Ok::<(), std::io::Error>(())
    /// })
    /// .unwrap()
    /// .unwrap();
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn create_new(&mut self, create_new: bool) -> &mut Self {
        self.create_new = create_new;
        self
    }

    /// The permission bits of a created file (less the umask; default
    /// 0o666).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::unix::fs::PermissionsExt;
    /// # let dir = std::env::temp_dir().join(format!("ringloop-doc-oo-mode-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// let path = dir.join("secret");
    /// let meta = ringloop::run(async {
    ///     let f = ringloop::fs::OpenOptions::new()
    ///         .write(true)
    ///         .create(true)
    ///         .mode(0o600)
    ///         .open(&path)
    ///         .await?;
    ///     f.metadata().await
    /// })
    /// .unwrap()
    /// .unwrap();
    /// assert_eq!(meta.permissions().mode(), 0o600);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn mode(&mut self, mode: u32) -> &mut Self {
        self.mode = mode;
        self
    }

    /// Extra `open(2)` flags, such as `libc::O_DIRECT` or `libc::O_NOATIME`
    /// (the access-mode bits are ignored: use `read`/`write`).
    ///
    /// # Examples
    ///
    /// ```
    /// ringloop::run(async {
    ///     // O_NOFOLLOW: fail rather than open through a final symlink.
    ///     let err = ringloop::fs::OpenOptions::new()
    ///         .read(true)
    ///         .custom_flags(libc::O_NOFOLLOW)
    ///         .open("/proc/self/exe")
    ///         .await
    ///         .unwrap_err();
    ///     assert!(err.to_string().contains("/proc/self/exe"));
    /// })
    /// .unwrap();
    /// ```
    pub fn custom_flags(&mut self, flags: i32) -> &mut Self {
        self.custom_flags = flags;
        self
    }

    /// Opens `path` with these options.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a contradictory set of options (no access mode;
    /// `create`/`truncate` without write; `append` with `truncate`) or a path
    /// with a NUL byte; what `openat(2)` reports (`NotFound`,
    /// `PermissionDenied`, `AlreadyExists`, ...), with the path in the
    /// message; `Unsupported` if the kernel lacks `IORING_OP_OPENAT`; or no
    /// running loop on this thread.
    ///
    /// # Examples
    ///
    /// ```
    /// ringloop::run(async {
    ///     let err = ringloop::fs::OpenOptions::new()
    ///         .read(true)
    ///         .open("/no/such/file")
    ///         .await
    ///         .unwrap_err();
    ///     assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    ///     assert!(err.to_string().contains("/no/such/file"));
    /// })
    /// .unwrap();
    /// ```
    pub async fn open(&self, path: impl AsRef<Path>) -> io::Result<File> {
        let path = path.as_ref();
        let flags = self.flags().map_err(|e| with_path("open", path, e))?;
        let driver = crate::runtime::current_driver()?;
        let op = OpenAt::new(cstring(path)?, flags, self.mode);
        let fd = Op::submit(&driver, op)
            .map_err(|e| with_path("open", path, e))?
            .await
            .map_err(|e| with_path("open", path, e))?;
        Ok(File::from_parts(fd, driver, Some(path)))
    }

    /// The `open(2)` flags, validated as std does.
    fn flags(&self) -> io::Result<i32> {
        let invalid = |msg: &str| Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
        let access = match (self.read, self.write || self.append) {
            (true, false) => libc::O_RDONLY,
            (false, true) => libc::O_WRONLY,
            (true, true) => libc::O_RDWR,
            (false, false) => return invalid("must open for read, write or append"),
        };
        let writing = self.write || self.append;
        if !writing && (self.truncate || self.create || self.create_new) {
            return invalid("create, create_new and truncate need write or append access");
        }
        if self.append && self.truncate && !self.create_new {
            return invalid("append and truncate cannot be combined");
        }
        let creation = match (self.create, self.truncate, self.create_new) {
            (_, _, true) => libc::O_CREAT | libc::O_EXCL,
            (true, true, false) => libc::O_CREAT | libc::O_TRUNC,
            (true, false, false) => libc::O_CREAT,
            (false, true, false) => libc::O_TRUNC,
            (false, false, false) => 0,
        };
        let append = if self.append { libc::O_APPEND } else { 0 };
        Ok(access | creation | append | (self.custom_flags & !libc::O_ACCMODE))
    }
}
