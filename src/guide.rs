//! A user's guide: ringloop for someone who knows asyncio or tokio.
//!
//! Each chapter is a page of its own (also readable as Markdown in
//! `docs/guide/`), and every code block in it is a doctest that runs.
//!
//! - [`asyncio`]: the names, and what ringloop does differently on purpose.
//! - [`tokio`]: the names, `spawn` and `Send`, timeouts, owned-buffer I/O,
//!   the readiness path, the `hyper` and `tls` features.
//! - [`cores`]: thread-per-core with [`Cores`](crate::Cores), state
//!   sharded per core, cross-core channels, the blocking pool.
//! - [`cancellation`]: what dropping a future promises, op by op.
//! - [`backends`]: io_uring and epoll, how a loop picks, what differs.
//! - [`sockets`]: why sockets and files are made inside a running loop,
//!   and how to bring in a listener made before it (systemd, `std`).

pub mod asyncio {
    #![doc = include_str!("../docs/guide/asyncio.md")]
}

pub mod tokio {
    #![doc = include_str!("../docs/guide/tokio.md")]
}

pub mod cores {
    #![doc = include_str!("../docs/guide/cores.md")]
}

pub mod cancellation {
    #![doc = include_str!("../docs/guide/cancellation.md")]
}

pub mod backends {
    #![doc = include_str!("../docs/guide/backends.md")]
}

pub mod sockets {
    #![doc = include_str!("../docs/guide/sockets.md")]
}
