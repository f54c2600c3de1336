//! What the loop tells its exception handler.

use std::any::Any;
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use super::error::payload_message;

/// The loop's exception handler (see `EventLoop::set_exception_handler`).
pub(crate) type Handler = Rc<dyn Fn(&ExceptionContext)>;

/// What happened, as passed to the loop's exception handler (asyncio's
/// `context` dict).
#[derive(Clone, Debug)]
pub struct ExceptionContext {
    kind: ExceptionKind,
    message: String,
    task: Option<String>,
    panic: Option<String>,
    error: Option<String>,
}

/// The kind of event reported to the exception handler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExceptionKind {
    /// A task panicked and nobody awaited it (asyncio: "Task exception was
    /// never retrieved"), or a promise failed and nobody read its error
    /// (asyncio: "Future exception was never retrieved").
    NeverRetrieved,
    /// A callback (`call_soon`, `call_later`, a done callback) panicked.
    CallbackPanicked,
    /// Debug mode: one poll of a task took longer than the threshold.
    SlowPoll,
    /// A server's listener failed and the server stopped accepting (a
    /// failure of the listener itself: one connection's failure never
    /// stops a server).
    ServerStopped,
}

impl ExceptionContext {
    pub(crate) fn never_retrieved(task: String, payload: &Box<dyn Any + Send>) -> Self {
        ExceptionContext {
            kind: ExceptionKind::NeverRetrieved,
            message: "Task exception was never retrieved".to_owned(),
            task: Some(task),
            panic: Some(describe(payload.as_ref())),
            error: None,
        }
    }

    pub(crate) fn future_never_retrieved(error: &dyn std::error::Error) -> Self {
        ExceptionContext {
            kind: ExceptionKind::NeverRetrieved,
            message: "Future exception was never retrieved".to_owned(),
            task: None,
            panic: None,
            error: Some(error.to_string()),
        }
    }

    pub(crate) fn callback_panicked(payload: Box<dyn Any + Send>) -> Self {
        ExceptionContext {
            kind: ExceptionKind::CallbackPanicked,
            message: "Exception in callback".to_owned(),
            task: None,
            panic: Some(describe(payload.as_ref())),
            error: None,
        }
    }

    pub(crate) fn slow_poll(task: String, took: Duration) -> Self {
        ExceptionContext {
            kind: ExceptionKind::SlowPoll,
            message: format!("Executing {task} took {:.3} seconds", took.as_secs_f64()),
            task: Some(task),
            panic: None,
            error: None,
        }
    }

    pub(crate) fn server_stopped(message: String, error: &std::io::Error) -> Self {
        ExceptionContext {
            kind: ExceptionKind::ServerStopped,
            message,
            task: None,
            panic: None,
            error: Some(error.to_string()),
        }
    }

    /// What happened.
    pub fn kind(&self) -> ExceptionKind {
        self.kind
    }

    /// A one-line description, as asyncio's `context["message"]`.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The name of the task concerned, if any.
    pub fn task_name(&self) -> Option<&str> {
        self.task.as_deref()
    }

    /// The panic's message, if a panic is concerned.
    pub fn panic_message(&self) -> Option<&str> {
        self.panic.as_deref()
    }

    /// The error's message, if an error (of a promise) is concerned.
    pub fn error_message(&self) -> Option<&str> {
        self.error.as_deref()
    }
}

fn describe(p: &(dyn Any + Send)) -> String {
    payload_message(p)
        .unwrap_or("<non-string panic payload>")
        .to_owned()
}

impl fmt::Display for ExceptionContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(t) = &self.task {
            write!(f, "\ntask: {t}")?;
        }
        if let Some(p) = &self.panic {
            write!(f, "\npanic: {p}")?;
        }
        if let Some(e) = &self.error {
            write!(f, "\nerror: {e}")?;
        }
        Ok(())
    }
}

/// The default handler: writes the report to standard error.
pub(crate) fn default_handler(ctx: &ExceptionContext) {
    eprintln!("ringloop: {ctx}");
}
