//! [`WaitList`]: the FIFO of waiting futures every primitive is built on.
//!
//! A waiter is a node in a slab, linked into a doubly-linked FIFO while it
//! waits. Notifying it unlinks it and stores a note in the node (what it was
//! given: a permit, a reserved item, an error). The node stays in the slab
//! until its owner either takes the note (its `poll`) or removes it (its
//! `Drop`) and, on finding a note there, passes on what it was given.
//!
//! Invariants:
//!
//! - a node is linked ⇔ it has no note ("waiting");
//! - a node is removed from the slab only by the future that pushed it, so
//!   its key stays valid for exactly as long as that future holds it;
//! - a notified node's waker has been taken (and woken).

use std::fmt;
use std::task::Waker;

use slab::Slab;

/// No node (end of the list).
const NIL: usize = usize::MAX;

struct Node<N> {
    prev: usize,
    next: usize,
    waker: Option<Waker>,
    /// `None` while waiting (linked), `Some` once notified (unlinked).
    note: Option<N>,
}

/// A FIFO of waiters, each notified at most once with a note of type `N`.
pub(crate) struct WaitList<N> {
    nodes: Slab<Node<N>>,
    head: usize,
    tail: usize,
    /// Number of linked (waiting) nodes.
    waiting: usize,
}

impl<N> Default for WaitList<N> {
    fn default() -> Self {
        WaitList {
            nodes: Slab::new(),
            head: NIL,
            tail: NIL,
            waiting: 0,
        }
    }
}

impl<N> WaitList<N> {
    /// Number of waiters not yet notified.
    pub(crate) fn waiting(&self) -> usize {
        self.waiting
    }

    /// Number of waiters notified whose owner has not yet taken the note.
    pub(crate) fn notified(&self) -> usize {
        self.nodes.len() - self.waiting
    }

    /// Appends a waiter; returns its key.
    pub(crate) fn push(&mut self, waker: &Waker) -> usize {
        let key = self.nodes.insert(Node {
            prev: self.tail,
            next: NIL,
            waker: Some(waker.clone()),
            note: None,
        });
        match self.tail {
            NIL => self.head = key,
            tail => self.nodes[tail].next = key,
        }
        self.tail = key;
        self.waiting += 1;
        key
    }

    /// The owner's poll: takes the note and removes the node if notified,
    /// else refreshes the waker and returns `None`.
    pub(crate) fn poll_note(&mut self, key: usize, waker: &Waker) -> Option<N> {
        let node = &mut self.nodes[key];
        if node.note.is_some() {
            return self.nodes.remove(key).note;
        }
        match &node.waker {
            Some(w) if w.will_wake(waker) => {}
            _ => node.waker = Some(waker.clone()),
        }
        None
    }

    /// The owner's drop: removes the node (unlinking it if still waiting)
    /// and returns its note, which the caller must pass on.
    pub(crate) fn remove(&mut self, key: usize) -> Option<N> {
        if self.nodes[key].note.is_none() {
            self.unlink(key);
        }
        self.nodes.remove(key).note
    }

    /// Notifies the first waiter with `note`; returns its waker (to wake
    /// once every borrow is released), or `None` if nobody waits.
    pub(crate) fn notify_first(&mut self, note: N) -> Option<Waker> {
        let key = self.head;
        if key == NIL {
            return None;
        }
        self.unlink(key);
        let node = &mut self.nodes[key];
        node.note = Some(note);
        node.waker.take()
    }

    /// Notifies every waiter, in FIFO order, with the notes `note` makes;
    /// their wakers go to `wakers`.
    pub(crate) fn notify_all(&mut self, mut note: impl FnMut() -> N, wakers: &mut Vec<Waker>) {
        while self.head != NIL {
            wakers.extend(self.notify_first(note()));
        }
    }

    /// Replaces the note of every waiter already notified (and not yet
    /// gone) with `note()`, and returns how many there were.
    pub(crate) fn renote_notified(&mut self, mut note: impl FnMut() -> N) -> usize {
        let mut n = 0;
        for (_, node) in self.nodes.iter_mut() {
            if node.note.is_some() {
                node.note = Some(note());
                n += 1;
            }
        }
        n
    }

    fn unlink(&mut self, key: usize) {
        let (prev, next) = {
            let node = &self.nodes[key];
            (node.prev, node.next)
        };
        match prev {
            NIL => self.head = next,
            p => self.nodes[p].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.nodes[n].prev = prev,
        }
        let node = &mut self.nodes[key];
        node.prev = NIL;
        node.next = NIL;
        self.waiting -= 1;
    }
}

impl<N> fmt::Debug for WaitList<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitList")
            .field("waiting", &self.waiting)
            .field("notified", &self.notified())
            .finish()
    }
}

/// Wakes every waker in `wakers` (call it with no borrow held).
pub(crate) fn wake_all(wakers: Vec<Waker>) {
    wakers.into_iter().for_each(Waker::wake);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    fn keys_in_order(list: &WaitList<u32>) -> Vec<usize> {
        let mut out = Vec::new();
        let mut k = list.head;
        while k != NIL {
            out.push(k);
            k = list.nodes[k].next;
        }
        out
    }

    #[test]
    fn fifo_order_and_removal_from_the_middle() {
        let w = Waker::noop();
        let mut list = WaitList::<u32>::default();
        let a = list.push(w);
        let b = list.push(w);
        let c = list.push(w);
        assert_eq!(keys_in_order(&list), [a, b, c]);
        assert_eq!(list.remove(b), None);
        assert_eq!(keys_in_order(&list), [a, c]);
        assert!(list.notify_first(7).is_some());
        assert_eq!((list.waiting(), list.notified()), (1, 1));
        assert_eq!(list.poll_note(a, w), Some(7));
        assert_eq!(list.poll_note(c, w), None);
        assert_eq!(list.remove(c), None);
        assert_eq!((list.waiting(), list.notified()), (0, 0));
        assert!(list.notify_first(8).is_none());
    }

    #[test]
    fn a_dropped_notified_waiter_hands_back_its_note() {
        let w = Waker::noop();
        let mut list = WaitList::<u32>::default();
        let a = list.push(w);
        let _b = list.push(w);
        list.notify_first(1);
        assert_eq!(list.remove(a), Some(1));
        let mut wakers = Vec::new();
        list.notify_all(|| 2, &mut wakers);
        assert_eq!(wakers.len(), 1);
        assert_eq!(list.renote_notified(|| 3), 1);
    }
}
