//! The `task_program` target's child futures: their body, their drop
//! guard, and how the harness spawns or polls them.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use ringloop::{Task, wait_for};

use crate::model::{
    Act, ChildDef, ChildPanic, ChildRec, End, Held, Item, Kind, MAX_ACTS, Out, World, dropped, dur,
    fair_lock, observe, timeout, with,
};

/// Moved into each child future: counts its drops (and may panic).
struct Guard {
    id: usize,
    panic_on_drop: bool,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let n = with(|s| {
            s.children[self.id].dropped += 1;
            s.children[self.id].dropped
        });
        assert_eq!(n, 1, "child {} future dropped twice", self.id);
        if self.panic_on_drop && !std::thread::panicking() {
            std::panic::panic_any(ChildPanic);
        }
    }
}

/// [`Act::Sub`]: a grandchild with two actions (no `Sub`: depth 2 at most).
async fn sub(w: &Rc<World>, seed: u8, t: u8) {
    let second = match seed % 4 {
        0 => Act::Get,
        1 => Act::Lock(seed),
        2 => Act::Put,
        _ => Act::Acquire(seed),
    };
    let def = ChildDef {
        acts: vec![Act::Sleep(seed / 4), second],
        panic_on_drop: seed >= 0xF0,
    };
    let mut s = spawn_child(w, &def);
    if let Ok(res) = wait_for(&mut s.task, timeout(t)).await {
        observe(s.id, &res);
    } else {
        drop(s.task);
        assert!(dropped(s.id), "grandchild {} dropped, still live", s.id);
    }
}

async fn hold(n: u8) {
    if n.is_multiple_of(2) {
        ringloop::sleep(dur(u64::from(n % 8), 100)).await;
    } else {
        ringloop::yield_now().await;
    }
}

/// A new child future (and its id): runs `def`'s actions on `w`.
pub fn child(
    w: &Rc<World>,
    def: &ChildDef,
    kind: Kind,
) -> (usize, impl Future<Output = Out> + 'static) {
    let id = with(|s| {
        s.children.push(ChildRec {
            kind,
            panic_on_drop: def.panic_on_drop,
            ..ChildRec::default()
        });
        s.children.len() - 1
    });
    let guard = Guard {
        id,
        panic_on_drop: def.panic_on_drop,
    };
    let w = w.clone();
    let acts: Vec<Act> = def.acts.iter().take(MAX_ACTS).copied().collect();
    let fut = async move {
        let guard = guard;
        if kind != Kind::InPlace {
            let h = ringloop::current_task();
            with(|s| s.children[id].handle = h);
        }
        let mut fail = false;
        for act in acts {
            match act {
                Act::Sleep(n) => ringloop::sleep(dur(u64::from(n % 8), 250)).await,
                Act::Yield(n) => {
                    for _ in 0..n % 4 {
                        ringloop::yield_now().await;
                    }
                }
                Act::GetWait(t) => {
                    if let Ok(Ok(item)) = wait_for(w.q.get(), timeout(t)).await {
                        item.take();
                    }
                }
                Act::PutWait(t) => {
                    let item = Item::new();
                    let iid = item.0;
                    match wait_for(w.q.put(item), timeout(t)).await {
                        Ok(Ok(())) => Item::mark_put(iid),
                        Ok(Err(_)) => {}
                        Err(_) => assert!(
                            with(|s| s.items[iid].dropped == 1),
                            "put timed out, item kept"
                        ),
                    }
                }
                Act::Sub { seed, t } => sub(&w, seed, t).await,
                Act::Get => {
                    if let Ok(item) = w.q.get().await {
                        item.take();
                    }
                }
                Act::Put => {
                    let item = Item::new();
                    let iid = item.0;
                    if w.q.put(item).await.is_ok() {
                        Item::mark_put(iid);
                    }
                }
                Act::Lock(n) => {
                    let held = Held::lock(fair_lock(&w.lock).await);
                    hold(n).await;
                    drop(held);
                }
                Act::Acquire(n) => {
                    let held = Held::permit(w.sem.acquire().await, w.permits);
                    hold(n).await;
                    drop(held);
                }
                Act::Panic => {
                    with(|s| s.children[id].end = Some(End::Panicked));
                    std::panic::panic_any(ChildPanic);
                }
                Act::Fail => fail = true,
            }
        }
        with(|s| s.children[id].end = Some(End::Returned));
        // Dropped before the output exists: Rust leaks a return value when
        // a local's destructor panics (rust-lang/rust#47949).
        drop(guard);
        Out::new(id, fail)
    };
    (id, fut)
}

/// Polls a future in place, turning a panic into `Err(())`.
pub struct CatchPanic<F>(pub Pin<Box<F>>);

impl<F: Future> Future for CatchPanic<F> {
    type Output = Result<F::Output, ()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let fut = self.0.as_mut();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fut.poll(cx))) {
            Ok(p) => p.map(Ok),
            Err(_) => Poll::Ready(Err(())),
        }
    }
}

/// A task the harness spawned (with a done callback), and its child's id.
pub struct Slot {
    pub id: usize,
    pub task: Task<Out>,
}

pub fn spawn_child(w: &Rc<World>, def: &ChildDef) -> Slot {
    let (id, fut) = child(w, def, Kind::Ours);
    let task = ringloop::spawn(fut);
    let h = task.handle();
    with(|s| s.children[id].handle = Some(h));
    task.add_done_callback(move |_| with(|s| s.children[id].done_callbacks += 1));
    Slot { id, task }
}
