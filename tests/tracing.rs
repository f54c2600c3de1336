//! The `tracing` feature: a span per task (its name, `Task-N` id and the
//! id of the task that spawned it, entered around each poll and closed at
//! completion) and events for slow polls, unretrieved errors, the backend a
//! loop came up on, an automatic fallback to epoll, accept backing off on
//! EMFILE and signal deliveries.
//!
//! Each test records what ringloop emits with a small in-test subscriber
//! ([`Collector`], installed for the test's thread only with
//! `tracing::subscriber::with_default`). The fallback and EMFILE tests run
//! in a child process (this test binary run again with one test selected):
//! one installs a seccomp filter refusing io_uring, the other lowers
//! RLIMIT_NOFILE, neither of which may happen in the harness's process.
#![cfg(feature = "tracing")]

mod common;

use std::cell::Cell;
use std::collections::HashMap;
use std::io;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use common::{fd_count, ms, nofile_limit, set_nofile_soft};
use ringloop::net::TcpListener;
use ringloop::{Backend, Builder, EventLoop, sleep, spawn, spawn_named, yield_now};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// A span as the collector saw it.
#[derive(Clone, Debug)]
struct SpanRec {
    id: u64,
    name: &'static str,
    target: String,
    fields: HashMap<String, String>,
    /// The `tracing` parent (explicit, or the span current at creation).
    parent: Option<u64>,
    closed: bool,
}

/// An event as the collector saw it.
#[derive(Clone, Debug)]
struct EventRec {
    target: String,
    level: Level,
    fields: HashMap<String, String>,
    /// The span current when it was emitted.
    span: Option<u64>,
}

impl EventRec {
    fn field(&self, name: &str) -> &str {
        self.fields
            .get(name)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("event without field {name}: {self:?}"))
    }
}

#[derive(Default, Debug)]
struct Recorded {
    spans: Vec<SpanRec>,
    events: Vec<EventRec>,
    /// Each thread's stack of entered spans.
    stacks: HashMap<ThreadId, Vec<u64>>,
}

/// A subscriber that records every span and event, enabled for all.
#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Recorded>>);

struct Fields<'a>(&'a mut HashMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl Collector {
    fn lock(&self) -> std::sync::MutexGuard<'_, Recorded> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn current(rec: &Recorded) -> Option<u64> {
        rec.stacks
            .get(&std::thread::current().id())
            .and_then(|s| s.last().copied())
    }

    fn spans(&self) -> Vec<SpanRec> {
        self.lock().spans.clone()
    }

    /// The events of `target`.
    fn events(&self, target: &str) -> Vec<EventRec> {
        self.lock()
            .events
            .iter()
            .filter(|e| e.target == target)
            .cloned()
            .collect()
    }

    /// The `task` span whose `name` field is `name`.
    fn task_span(&self, name: &str) -> SpanRec {
        let spans = self.spans();
        let found: Vec<_> = spans
            .iter()
            .filter(|s| s.name == "task" && s.fields.get("name").map(String::as_str) == Some(name))
            .collect();
        assert_eq!(found.len(), 1, "task spans named {name}: {spans:#?}");
        found[0].clone()
    }
}

impl Subscriber for Collector {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let mut rec = self.lock();
        let id = rec.spans.len() as u64 + 1;
        let parent = match attrs.parent() {
            Some(p) => Some(p.into_u64()),
            None if attrs.is_contextual() => Self::current(&rec),
            None => None,
        };
        let mut fields = HashMap::new();
        attrs.record(&mut Fields(&mut fields));
        rec.spans.push(SpanRec {
            id,
            name: attrs.metadata().name(),
            target: attrs.metadata().target().to_owned(),
            fields,
            parent,
            closed: false,
        });
        Id::from_u64(id)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut rec = self.lock();
        let s = &mut rec.spans[span.into_u64() as usize - 1];
        values.record(&mut Fields(&mut s.fields));
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut rec = self.lock();
        let span = match event.parent() {
            Some(p) => Some(p.into_u64()),
            None if event.is_contextual() => Self::current(&rec),
            None => None,
        };
        let mut fields = HashMap::new();
        event.record(&mut Fields(&mut fields));
        rec.events.push(EventRec {
            target: event.metadata().target().to_owned(),
            level: *event.metadata().level(),
            fields,
            span,
        });
    }

    fn enter(&self, span: &Id) {
        let mut rec = self.lock();
        let me = std::thread::current().id();
        rec.stacks.entry(me).or_default().push(span.into_u64());
    }

    fn exit(&self, span: &Id) {
        let mut rec = self.lock();
        let me = std::thread::current().id();
        let top = rec.stacks.entry(me).or_default().pop();
        assert_eq!(top, Some(span.into_u64()), "spans exited out of order");
    }

    fn try_close(&self, id: Id) -> bool {
        self.lock().spans[id.into_u64() as usize - 1].closed = true;
        true
    }
}

/// Runs `f` with a fresh [`Collector`] as this thread's subscriber.
fn collect<R>(f: impl FnOnce() -> R) -> (Collector, R) {
    let c = Collector::default();
    let out = tracing::subscriber::with_default(c.clone(), f);
    (c, out)
}

/// Runs `fut` on a fresh loop, bounded in time.
fn run<F: Future>(fut: F) -> F::Output {
    common::run_bounded(Duration::from_secs(30), fut)
}

#[test]
fn task_span_has_name_id_and_parent_and_wraps_each_poll() {
    let (c, ids) = collect(|| {
        run(async {
            let parent = spawn_named("parent", async {
                tracing::info!(target: "test", "in parent");
                let child = spawn_named("child", async {
                    yield_now().await;
                    tracing::info!(target: "test", "in child, second poll");
                });
                let unnamed = spawn(async {});
                let unnamed_name = unnamed.name();
                child.await.unwrap();
                unnamed.await.unwrap();
                tracing::info!(target: "test", "in parent again");
                unnamed_name
            });
            parent.await.unwrap()
        })
    });
    let parent = c.task_span("parent");
    let child = c.task_span("child");
    let unnamed = c.task_span(&ids);
    assert_eq!(parent.target, "ringloop::task");
    let parent_id = parent.fields["id"].clone();
    assert!(
        parent_id.parse::<u64>().is_ok(),
        "id is the Task-N number: {parent:?}"
    );
    // A task spawned outside any task has no parent task.
    assert!(
        !parent.fields.contains_key("parent"),
        "parent of a top-level task: {parent:?}"
    );
    for s in [&child, &unnamed] {
        assert_eq!(s.fields["parent"], parent_id, "{s:?}");
        // The tracing parent is the spawning task's span (entered while it
        // was polled).
        assert_eq!(s.parent, Some(parent.id), "{s:?}");
        assert_ne!(s.fields["id"], parent_id);
    }
    // An unnamed task's span carries the name it reports: Task-<id>.
    assert_eq!(ids, format!("Task-{}", unnamed.fields["id"]));

    // Events from inside the tasks, on their first and later polls, are in
    // their spans.
    let events = c.events("test");
    let in_span = |msg: &str| {
        events
            .iter()
            .find(|e| e.field("message") == msg)
            .unwrap_or_else(|| panic!("no event {msg}: {events:?}"))
            .span
    };
    assert_eq!(in_span("in parent"), Some(parent.id));
    assert_eq!(in_span("in parent again"), Some(parent.id));
    assert_eq!(in_span("in child, second poll"), Some(child.id));

    // Every task span was closed when its task completed.
    for s in c.spans() {
        assert!(s.closed, "span left open: {s:?}");
    }
}

/// Emits an event when dropped (a cancelled task's `finally`).
struct DropEvent;

impl Drop for DropEvent {
    fn drop(&mut self) {
        tracing::info!(target: "test", "dropped");
    }
}

#[test]
fn renaming_a_task_records_the_new_name_and_completion_closes_its_span() {
    let c = Collector::default();
    let seen = c.clone();
    tracing::subscriber::with_default(c.clone(), || {
        run(async move {
            // Closed at completion, not when the last handle goes.
            let done = spawn_named("finished", async {});
            while !done.is_done() {
                yield_now().await;
            }
            let s = seen.task_span("finished");
            assert!(s.closed, "a finished task's span is open: {s:?}");
            drop(done);

            let t = spawn_named("before", async {
                let _finally = DropEvent;
                sleep(Duration::from_secs(60)).await;
            });
            t.set_name("after");
            yield_now().await;
            // Its future's drop runs inside its span, then the span closes.
            drop(t);
            yield_now().await;
        })
    });
    let s = c.task_span("after");
    assert!(s.closed, "the cancelled task's span is still open: {s:?}");
    let dropped = c.events("test");
    assert_eq!(dropped.len(), 1, "{dropped:?}");
    assert_eq!(
        dropped[0].span,
        Some(s.id),
        "the future's drop ran outside its span"
    );
    assert!(
        c.spans()
            .iter()
            .all(|s| s.fields.get("name").map(String::as_str) != Some("before")),
        "old name kept"
    );
}

#[test]
fn slow_poll_is_a_warning_event() {
    let (c, reports) = collect(|| {
        let lp = Builder::new()
            .debug(true)
            .slow_callback_duration(ms(10))
            .build()
            .expect("loop");
        let reports = Rc::new(Cell::new(0));
        let r = reports.clone();
        lp.set_exception_handler(move |_| r.set(r.get() + 1));
        lp.run_until_complete(async {
            spawn_named("sleepy", async { std::thread::sleep(ms(30)) })
                .await
                .unwrap();
        })
        .expect("run");
        reports.get()
    });
    assert_eq!(reports, 1, "the handler still gets the report");
    let events = c.events("ringloop::exception");
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(e.level, Level::WARN);
    assert_eq!(e.field("kind"), "slow_poll");
    assert_eq!(e.field("task"), "sleepy");
    assert_eq!(e.field("message"), "slow poll");
    // The handler's message: "Executing sleepy took 0.0xx seconds".
    assert!(e.field("detail").contains("Executing sleepy took"), "{e:?}");
}

#[test]
fn unretrieved_panic_is_an_error_event() {
    let (c, ()) = collect(|| {
        let lp = EventLoop::new().expect("loop");
        // A handler that says nothing: the event is made anyway.
        lp.set_exception_handler(|_| {});
        lp.run_until_complete(async {
            spawn_named("doomed", async { panic!("boom in a detached task") }).detach();
            sleep(ms(5)).await;
        })
        .expect("run");
    });
    let events = c.events("ringloop::exception");
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(e.level, Level::ERROR);
    assert_eq!(e.field("kind"), "never_retrieved");
    assert_eq!(e.field("task"), "doomed");
    assert_eq!(e.field("panic"), "boom in a detached task");
}

#[test]
fn loop_setup_names_its_backend() {
    let (c, backend) = collect(|| EventLoop::new().expect("loop").backend());
    let events = c.events("ringloop::driver");
    let setup: Vec<_> = events
        .iter()
        .filter(|e| e.field("message") == "event loop set up")
        .collect();
    assert_eq!(setup.len(), 1, "{events:?}");
    assert_eq!(setup[0].level, Level::INFO);
    assert_eq!(setup[0].field("backend"), backend.name());
    if backend == Backend::IoUring {
        let sq: u32 = setup[0].field("sq_entries").parse().expect("sq_entries");
        assert!(sq >= 1, "{:?}", setup[0]);
        assert!(!setup[0].field("flags").is_empty());
    }

    let (c, ()) = collect(|| {
        let lp = Builder::new()
            .backend(Backend::Epoll)
            .build()
            .expect("loop");
        assert_eq!(lp.backend(), Backend::Epoll);
    });
    let events = c.events("ringloop::driver");
    assert_eq!(events.len(), 1, "a forced epoll is no fallback: {events:?}");
    assert_eq!(events[0].field("backend"), "epoll");
    assert_eq!(events[0].field("fallback"), "false");
}

#[test]
fn signal_delivery_is_an_event() {
    let (c, ()) = collect(|| {
        let lp = EventLoop::new().expect("loop");
        let handled = Rc::new(Cell::new(false));
        let h = handled.clone();
        lp.add_signal_handler(libc::SIGUSR1, move || h.set(true))
            .expect("add_signal_handler");
        lp.run_until_complete(async {
            let mut usr2 = ringloop::signal::signal(libc::SIGUSR2).expect("signal");
            for signum in [libc::SIGUSR2, libc::SIGUSR1] {
                // SAFETY: kill(2) with our own pid has no memory-safety
                // preconditions; ringloop's handler is installed for both.
                assert_eq!(unsafe { libc::kill(libc::getpid(), signum) }, 0);
            }
            assert_eq!(usr2.recv().await, Some(()));
            let t0 = Instant::now();
            while !handled.get() {
                assert!(t0.elapsed() < Duration::from_secs(10), "handler not called");
                sleep(ms(1)).await;
            }
        })
        .expect("run");
        assert!(lp.remove_signal_handler(libc::SIGUSR1));
    });
    let events = c.events("ringloop::signal");
    let to = |signum: i32| -> Vec<String> {
        events
            .iter()
            .filter(|e| e.field("signal") == signum.to_string())
            .map(|e| {
                assert_eq!(e.level, Level::DEBUG);
                e.field("to").to_owned()
            })
            .collect()
    };
    assert_eq!(to(libc::SIGUSR2), ["signal"], "{events:?}");
    assert_eq!(to(libc::SIGUSR1), ["handler"], "{events:?}");
}

// ---- child processes ----

/// The variable naming the part a child process plays.
const ROLE: &str = "RINGLOOP_TRACING_CHILD";

fn is_child(role: &str) -> bool {
    std::env::var(ROLE).is_ok_and(|r| r == role)
}

/// Runs test `test` alone in a new process of this binary as `role`, with
/// `RINGLOOP_BACKEND` removed when `auto`; returns its stdout after
/// checking it passed.
fn run_child(test: &str, role: &str, auto: bool) -> String {
    let mut cmd = Command::new(std::env::current_exe().expect("current_exe"));
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE, role);
    if auto {
        cmd.env_remove("RINGLOOP_BACKEND");
    }
    let out = cmd.output().expect("spawn the child test process");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("test result: ok. 1 passed"),
        "child {role} failed: {:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    stdout
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod seccomp {
    //! A filter making the io_uring syscalls fail with EPERM, as container
    //! runtimes' default seccomp profiles do.

    const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;
    const RET_ALLOW: u32 = 0x7fff_0000;
    const RET_ERRNO: u32 = 0x0005_0000;
    const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    #[cfg(target_arch = "x86_64")]
    const AUDIT_ARCH: u32 = 0xc000_003e;
    #[cfg(target_arch = "aarch64")]
    const AUDIT_ARCH: u32 = 0xc000_00b7;

    fn op(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
        libc::sock_filter { code, jt, jf, k }
    }

    /// Installs the filter; `Err` says why it cannot be (the test skips).
    pub(super) fn deny_io_uring() -> Result<(), String> {
        let nr = |n: libc::c_long| u32::try_from(n).expect("syscall number");
        let mut filter = [
            op(LD_W_ABS, 4, 0, 0), // seccomp_data.arch
            op(JEQ_K, AUDIT_ARCH, 0, 4),
            op(LD_W_ABS, 0, 0, 0), // seccomp_data.nr
            op(JEQ_K, nr(libc::SYS_io_uring_setup), 3, 0),
            op(JEQ_K, nr(libc::SYS_io_uring_enter), 2, 0),
            op(JEQ_K, nr(libc::SYS_io_uring_register), 1, 0),
            op(RET_K, RET_ALLOW, 0, 0),
            op(RET_K, RET_ERRNO | libc::EPERM as u32, 0, 0),
        ];
        let prog = libc::sock_fprog {
            len: filter.len() as u16,
            filter: filter.as_mut_ptr(),
        };
        // SAFETY: integer arguments only; affects only this process.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(format!(
                "PR_SET_NO_NEW_PRIVS: {}",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: `prog` points at `filter`; both outlive the call, which
        // copies the program into the kernel.
        let r = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                SECCOMP_SET_MODE_FILTER,
                0 as libc::c_ulong,
                &prog as *const libc::sock_fprog,
            )
        };
        if r != 0 {
            return Err(format!("seccomp: {}", std::io::Error::last_os_error()));
        }
        Ok(())
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
mod seccomp {
    pub(super) fn deny_io_uring() -> Result<(), String> {
        Err("no seccomp filter for this architecture in the test".to_owned())
    }
}

#[test]
fn auto_fallback_to_epoll_is_a_warning_with_its_reason() {
    const TEST: &str = "auto_fallback_to_epoll_is_a_warning_with_its_reason";
    if !is_child("fallback") {
        let out = run_child(TEST, "fallback", true);
        assert!(
            out.contains("FALLBACK-EVENT ") || out.contains("SKIP "),
            "the child reported nothing:\n{out}"
        );
        return;
    }
    if let Err(why) = seccomp::deny_io_uring() {
        println!("SKIP seccomp unavailable: {why}");
        return;
    }
    let (c, lp) = collect(|| EventLoop::new().expect("EventLoop::new with io_uring denied"));
    assert_eq!(lp.backend(), Backend::Epoll);
    let events = c.events("ringloop::driver");
    assert_eq!(events.len(), 2, "{events:?}");
    let (warn, setup) = (&events[0], &events[1]);
    assert_eq!(warn.level, Level::WARN);
    let reason = warn.field("reason");
    assert_eq!(Some(reason), lp.backend_fallback_reason().as_deref());
    assert!(
        reason.contains("io_uring_setup") && reason.contains("EPERM"),
        "{reason}"
    );
    assert_eq!(setup.field("backend"), "epoll");
    assert_eq!(setup.field("fallback"), "true");
    println!("FALLBACK-EVENT {reason}");
}

#[test]
fn accept_backoff_on_emfile_is_an_event() {
    const TEST: &str = "accept_backoff_on_emfile_is_an_event";
    if !is_child("emfile") {
        let out = run_child(TEST, "emfile", false);
        assert!(
            out.contains("BACKOFF-EVENTS "),
            "the child reported nothing:\n{out}"
        );
        return;
    }
    let (c, (fd, pending)) = collect(|| {
        run(async {
            let listener = Rc::new(TcpListener::bind("127.0.0.1:0").expect("bind"));
            let addr = listener.local_addr().expect("local_addr");
            // Room for 20 more fds, then connect until the process is out.
            let limit = fd_count() as libc::rlim_t + 20;
            set_nofile_soft(limit);
            let mut clients = Vec::new();
            loop {
                match std::net::TcpStream::connect(addr) {
                    Ok(s) => clients.push(s),
                    Err(e) if e.raw_os_error() == Some(libc::EMFILE) => break,
                    Err(e) => panic!("connect: {e}"),
                }
                assert!(
                    (clients.len() as libc::rlim_t) < limit,
                    "limit not enforced"
                );
            }
            let pending = clients.len();
            let accepted = Rc::new(Cell::new(0usize));
            let (l, n) = (listener.clone(), accepted.clone());
            let acceptor = spawn(async move {
                loop {
                    match l.accept().await {
                        Ok((s, _)) => {
                            n.set(n.get() + 1);
                            drop(s);
                        }
                        Err(e) => break e,
                    }
                }
            });
            // Backing off 1, 2, 4, 8, 16 ms: five tries in 60 ms at least.
            sleep(ms(60)).await;
            assert_eq!(accepted.get(), 0, "accepted with no fd free");
            drop(clients);
            let t0 = Instant::now();
            while accepted.get() < pending {
                assert!(
                    t0.elapsed() < Duration::from_secs(10),
                    "accept did not resume"
                );
                sleep(ms(5)).await;
            }
            drop(acceptor);
            (listener.as_raw_fd(), pending)
        })
    });
    let events = c.events("ringloop::net");
    assert!(events.len() >= 3, "too few back-off events: {events:?}");
    // A starved accept warns once, when its back-off starts (1 ms), then
    // each longer wait is a DEBUG event. (A later accept may start a new
    // series: fds are freed one by one on some backends.)
    let emfile = io::Error::from_raw_os_error(libc::EMFILE).to_string();
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.field("fd"), fd.to_string(), "{e:?}");
        assert!(e.field("error").contains(&emfile), "{e:?}");
        let first = e.field("wait_ms") == "1";
        let want = if first { Level::WARN } else { Level::DEBUG };
        assert_eq!(e.level, want, "event {i}: {e:?}");
    }
    assert_eq!(events[0].field("wait_ms"), "1");
    assert_eq!(events[1].field("wait_ms"), "2");
    assert_eq!(events[2].field("wait_ms"), "4");
    let warns = events.iter().filter(|e| e.level == Level::WARN).count();
    println!(
        "BACKOFF-EVENTS warn={warns} debug={} pending={pending} limit={:?}",
        events.len() - warns,
        nofile_limit()
    );
}
