//! The `task_program` target's `gather`, `try_gather` and `task_group`
//! steps, with the checks each combinator's result allows.

use std::cell::RefCell;
use std::rc::Rc;

use arbitrary::Arbitrary;
use ringloop::{ChildError, GatherError, TaskGroup, wait_for};

use crate::child::{Slot, child, spawn_child};
use crate::model::{
    ChildDef, End, Kind, Out, World, any_cancelled, dropped, observe, timeout, with,
};

/// Children per combinator, at most.
const MAX_CHILDREN: usize = 4;

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Mode {
    Plain,
    ReturnExceptions,
    Try,
}

pub async fn gather(w: &Rc<World>, defs: &[ChildDef], mode: Mode, t: u8) {
    let defs = &defs[..defs.len().min(MAX_CHILDREN)];
    match mode {
        Mode::Plain | Mode::ReturnExceptions => {
            let slots: Vec<Slot> = defs.iter().map(|d| spawn_child(w, d)).collect();
            let ids: Vec<usize> = slots.iter().map(|s| s.id).collect();
            let g = ringloop::gather_tasks(slots.into_iter().map(|s| s.task));
            let timed_out = if let Mode::Plain = mode {
                match wait_for(g, timeout(t)).await {
                    Ok(Ok(outs)) => {
                        assert_eq!(outs.len(), ids.len());
                        for (id, out) in ids.iter().zip(outs) {
                            observe(*id, &Ok(out));
                        }
                        false
                    }
                    Ok(Err(e)) => {
                        // G3: the first failure; the others run on. G6: a
                        // child cancelled from outside fails it too.
                        if e.is_panic() {
                            assert!(ids.iter().any(|&id| with(|s| {
                                let r = &s.children[id];
                                r.end == Some(End::Panicked) || r.panic_on_drop
                            })));
                        } else {
                            assert!(e.is_cancelled() && any_cancelled(&ids), "gather: {e:?}");
                        }
                        false
                    }
                    Err(_) => true,
                }
            } else {
                match wait_for(g.return_exceptions(), timeout(t)).await {
                    Ok(all) => {
                        assert_eq!(all.len(), ids.len());
                        for (id, r) in ids.iter().zip(all) {
                            observe(*id, &r);
                        }
                        false
                    }
                    Err(_) => true,
                }
            };
            if timed_out {
                // G5: dropping the gather cancelled (dropped) every child.
                assert!(
                    ids.iter().all(|&id| dropped(id)),
                    "gather dropped, children live"
                );
            }
        }
        Mode::Try => {
            let mut ids = Vec::new();
            let futs: Vec<_> = defs
                .iter()
                .map(|d| {
                    let (id, f) = child(w, d, Kind::Combinator);
                    ids.push(id);
                    async move {
                        let out = f.await;
                        if out.fail { Err(out) } else { Ok(out) }
                    }
                })
                .collect();
            match wait_for(ringloop::try_gather(futs), timeout(t)).await {
                Ok(Ok(outs)) => {
                    for (id, out) in ids.iter().zip(outs) {
                        assert!(!out.fail);
                        observe(*id, &Ok(out));
                    }
                }
                Ok(Err(GatherError::Failed(out))) => {
                    assert!(out.fail && ids.contains(&out.id));
                    observe(out.id, &Ok(out));
                }
                Ok(Err(GatherError::Join(e))) => assert!(
                    e.is_panic() || (e.is_cancelled() && any_cancelled(&ids)),
                    "try_gather: {e:?}"
                ),
                Err(_) => assert!(
                    ids.iter().all(|&id| dropped(id)),
                    "try_gather dropped, children live"
                ),
            }
        }
    }
}

pub async fn group(w: &Rc<World>, defs: &[ChildDef], t: u8) {
    let defs: Vec<ChildDef> = defs.iter().take(MAX_CHILDREN).cloned().collect();
    let ids = Rc::new(RefCell::new(Vec::new()));
    let body_ids = ids.clone();
    let body_w = w.clone();
    let fut = ringloop::task_group(move |tg: TaskGroup<Out>| async move {
        let mut handles = Vec::new();
        for def in &defs {
            let (id, f) = child(&body_w, def, Kind::Combinator);
            body_ids.borrow_mut().push(id);
            let f = async move {
                let out = f.await;
                if out.fail { Err(out) } else { Ok(out) }
            };
            match tg.spawn(f) {
                Ok(h) => handles.push((id, h)),
                // Refused (the group is failing): dropped unrun.
                Err(_) => assert!(dropped(id), "refused child {id} not dropped"),
            }
            ringloop::yield_now().await;
        }
        Ok(handles)
    });
    match wait_for(fut, timeout(t)).await {
        Ok(Ok(handles)) => {
            for (id, h) in handles {
                assert!(h.is_done(), "task_group returned before child {id}");
                match h.take_result() {
                    Some(out) => observe(id, &Ok(out)),
                    // Cancelled from outside: not a group failure.
                    None => assert!(
                        h.is_cancelled() && any_cancelled(&[id]),
                        "task_group succeeded without child {id}'s value"
                    ),
                }
            }
        }
        Ok(Err(e)) => {
            assert!(!e.errors().is_empty());
            for err in e.into_errors() {
                match err {
                    ChildError::Failed(out) => {
                        assert!(out.fail && ids.borrow().contains(&out.id));
                        observe(out.id, &Ok(out));
                    }
                    ChildError::Panicked(e) => assert!(e.is_panic()),
                }
            }
        }
        Err(_) => {}
    }
    // TG1 (returned) or dropped: every child's future is gone.
    for &id in ids.borrow().iter() {
        assert!(dropped(id), "task_group over, child {id} live");
    }
}
