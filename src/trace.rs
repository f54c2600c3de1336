//! The `tracing` hooks: a span per task and events for what the loop has
//! to say. Everything here is a no-op (and no `tracing` code is linked in)
//! unless the cargo feature `tracing` is on; see `docs/design/tracing.md`
//! for what is emitted and what it costs.
//!
//! Call sites stay one line: [`event!`](crate::trace::event) for an event,
//! [`TaskSpan`] for the task span kept in each task's header.
//!
//! # Targets
//!
//! | target | what |
//! | --- | --- |
//! | `ringloop::task` | the `task` span (DEBUG): `id`, `name`, `parent` |
//! | `ringloop::exception` | each report to the exception handler: slow polls (WARN), unretrieved errors, panicking callbacks, stopped servers (ERROR) |
//! | `ringloop::driver` | the backend a loop came up on (INFO), an automatic fallback to epoll and its reason (WARN) |
//! | `ringloop::net` | accept backing off while out of fds or memory (WARN when it starts, DEBUG for each further retry) |
//! | `ringloop::signal` | a signal delivered to a listener or handler of a loop (DEBUG) |

#[cfg(feature = "tracing")]
use std::cell::RefCell;

use crate::task::{ExceptionContext, ExceptionKind};

/// Emits a `tracing` event with the feature, nothing without it:
/// `event!(target: "ringloop::x", WARN, "message", field = value, ...)`.
/// Field values must be `tracing::Value`s (numbers, `&str`, `bool`, or
/// [`display`]). Without the feature the values are type-checked but
/// never evaluated, and the whole statement compiles to nothing.
#[cfg(feature = "tracing")]
macro_rules! event {
    (target: $target:literal, $lvl:ident, $msg:literal $(, $k:ident = $v:expr)* $(,)?) => {
        ::tracing::event!(target: $target, ::tracing::Level::$lvl, $($k = $v,)* $msg)
    };
}

/// Emits a `tracing` event with the feature, nothing without it (see the
/// feature's version of this macro).
#[cfg(not(feature = "tracing"))]
macro_rules! event {
    (target: $target:literal, $lvl:ident, $msg:literal $(, $k:ident = $v:expr)* $(,)?) => {{
        // Never called: it only keeps the fields' variables "used".
        let _ = || {
            $(let _ = &$v;)*
        };
    }};
}

pub(crate) use event;

/// A field value shown with its `Display` (`%value` in `tracing`'s macros).
#[cfg(feature = "tracing")]
pub(crate) fn display<T: std::fmt::Display>(value: T) -> tracing::field::DisplayValue<T> {
    tracing::field::display(value)
}

/// A field value shown with its `Display` (unused without the feature).
#[cfg(not(feature = "tracing"))]
pub(crate) fn display<T: std::fmt::Display>(value: T) -> T {
    value
}

/// A task's span, kept in its header from spawn to completion.
///
/// Without the feature this is a zero-sized type and every method an
/// empty inline function. With it, a disabled span (no subscriber, or one
/// that filters `ringloop::task` out) is stored as `None`: no allocation,
/// and entering it is one `RefCell` borrow and a branch.
#[cfg(feature = "tracing")]
pub(crate) struct TaskSpan(RefCell<Option<Box<tracing::Span>>>);

/// A task's span (zero-sized: the `tracing` feature is off).
#[cfg(not(feature = "tracing"))]
pub(crate) struct TaskSpan;

/// A task's name as `Task::name` gives it: the one given, or `Task-N`.
#[cfg(feature = "tracing")]
struct TaskName<'a>(Option<&'a str>, u64);

#[cfg(feature = "tracing")]
impl std::fmt::Display for TaskName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(name) => f.write_str(name),
            None => write!(f, "Task-{}", self.1),
        }
    }
}

#[cfg(feature = "tracing")]
impl TaskSpan {
    /// The span of task `id` (its `Task-N` number), named `name` if given,
    /// spawned by the task `parent()` returns (none: spawned outside any
    /// task). `parent` is only called when the span is enabled. The span's
    /// `tracing` parent is the current span (the spawning task's, if any,
    /// or whatever span the spawner entered).
    #[inline]
    pub(crate) fn new(id: u64, name: Option<&str>, parent: impl FnOnce() -> Option<u64>) -> Self {
        let span = tracing::debug_span!(
            target: "ringloop::task",
            "task",
            id,
            name = display(TaskName(name, id)),
            parent = parent(),
        );
        if span.is_disabled() {
            return TaskSpan(RefCell::new(None));
        }
        TaskSpan(RefCell::new(Some(Box::new(span))))
    }

    /// Runs `f` (a poll of the task, or the drop of its future) inside the
    /// span.
    #[inline]
    pub(crate) fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R {
        // A shared borrow while `f` runs: `f` may rename the task (another
        // shared borrow); only `close` borrows mutably, and a task is never
        // completed while it is being polled or dropped.
        let span = self.0.borrow();
        match span.as_deref() {
            Some(span) => span.in_scope(f),
            None => {
                drop(span);
                f()
            }
        }
    }

    /// Records a new name (`Task::set_name`).
    pub(crate) fn rename(&self, name: &str) {
        if let Some(span) = self.0.borrow().as_ref() {
            span.record("name", name);
        }
    }

    /// Closes the span: the task completed (or was cancelled).
    pub(crate) fn close(&self) {
        // Borrowed only if the task is being polled or dropped, which
        // `complete` never overlaps; were it to, the span would close when
        // the task's memory is freed instead.
        let span = self.0.try_borrow_mut().ok().and_then(|mut s| s.take());
        drop(span);
    }
}

#[cfg(not(feature = "tracing"))]
impl TaskSpan {
    /// Nothing to record without the feature.
    #[inline(always)]
    pub(crate) fn new(
        _id: u64,
        _name: Option<&str>,
        _parent: impl FnOnce() -> Option<u64>,
    ) -> Self {
        TaskSpan
    }

    /// Runs `f`.
    #[inline(always)]
    pub(crate) fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R {
        f()
    }

    /// Nothing to record without the feature.
    #[inline(always)]
    pub(crate) fn rename(&self, _name: &str) {}

    /// Nothing to close without the feature.
    #[inline(always)]
    pub(crate) fn close(&self) {}
}

/// An event for a report to the exception handler (made whether or not a
/// handler is set): slow polls at WARN, the rest at ERROR.
#[inline]
pub(crate) fn exception(ctx: &ExceptionContext) {
    let task = ctx.task_name().unwrap_or("");
    let panic = ctx.panic_message().unwrap_or("");
    let error = ctx.error_message().unwrap_or("");
    let message = ctx.message();
    match ctx.kind() {
        ExceptionKind::SlowPoll => event!(
            target: "ringloop::exception",
            WARN,
            "slow poll",
            kind = "slow_poll",
            task = task,
            detail = message,
        ),
        ExceptionKind::NeverRetrieved => event!(
            target: "ringloop::exception",
            ERROR,
            "exception never retrieved",
            kind = "never_retrieved",
            task = task,
            panic = panic,
            error = error,
            detail = message,
        ),
        ExceptionKind::CallbackPanicked => event!(
            target: "ringloop::exception",
            ERROR,
            "callback panicked",
            kind = "callback_panicked",
            panic = panic,
            detail = message,
        ),
        ExceptionKind::ServerStopped => event!(
            target: "ringloop::exception",
            ERROR,
            "server stopped",
            kind = "server_stopped",
            error = error,
            detail = message,
        ),
    }
}
