//! The order a queue hands its items out in: FIFO, LIFO, or smallest first
//! (a binary min-heap, as Python's `heapq`).

use std::cmp::Ordering;
use std::collections::VecDeque;

/// How a queue orders its items.
pub(crate) enum Order<T> {
    Fifo,
    Lifo,
    /// A min-heap in the buffer, ordered by this comparison (`T::cmp`,
    /// captured where `T: Ord` is known).
    Priority(fn(&T, &T) -> Ordering),
}

impl<T> Order<T> {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Order::Fifo => "Queue",
            Order::Lifo => "LifoQueue",
            Order::Priority(_) => "PriorityQueue",
        }
    }

    pub(crate) fn push(&self, buf: &mut VecDeque<T>, item: T) {
        buf.push_back(item);
        if let Order::Priority(cmp) = self {
            let heap = buf.make_contiguous();
            sift_up(heap, heap.len() - 1, *cmp);
        }
    }

    pub(crate) fn pop(&self, buf: &mut VecDeque<T>) -> Option<T> {
        match self {
            Order::Fifo => buf.pop_front(),
            Order::Lifo => buf.pop_back(),
            Order::Priority(cmp) => {
                let heap = buf.make_contiguous();
                let last = heap.len().checked_sub(1)?;
                heap.swap(0, last);
                let item = buf.pop_back();
                sift_down(buf.make_contiguous(), 0, *cmp);
                item
            }
        }
    }
}

fn sift_up<T>(heap: &mut [T], mut i: usize, cmp: fn(&T, &T) -> Ordering) {
    while i > 0 {
        let parent = (i - 1) / 2;
        if cmp(&heap[i], &heap[parent]) != Ordering::Less {
            break;
        }
        heap.swap(i, parent);
        i = parent;
    }
}

fn sift_down<T>(heap: &mut [T], mut i: usize, cmp: fn(&T, &T) -> Ordering) {
    loop {
        let left = 2 * i + 1;
        if left >= heap.len() {
            break;
        }
        let right = left + 1;
        let child = if right < heap.len() && cmp(&heap[right], &heap[left]) == Ordering::Less {
            right
        } else {
            left
        };
        if cmp(&heap[child], &heap[i]) != Ordering::Less {
            break;
        }
        heap.swap(i, child);
        i = child;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_heap_pops_in_ascending_order() {
        let order = Order::Priority(u64::cmp);
        let mut buf = VecDeque::new();
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        let mut pushed = Vec::new();
        for round in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if x % 3 == 0 && round % 5 != 0 {
                let expected = pushed.iter().min().copied();
                if let Some(min) = expected {
                    pushed.retain({
                        let mut removed = false;
                        move |&v| removed || v != min || !std::mem::replace(&mut removed, true)
                    });
                }
                assert_eq!(order.pop(&mut buf), expected);
            } else {
                order.push(&mut buf, x % 100);
                pushed.push(x % 100);
            }
        }
        pushed.sort_unstable();
        let rest: Vec<u64> = std::iter::from_fn(|| order.pop(&mut buf)).collect();
        assert_eq!(rest, pushed);
    }

    #[test]
    fn fifo_and_lifo() {
        let mut buf = VecDeque::new();
        for i in 0..3 {
            Order::Fifo.push(&mut buf, i);
        }
        assert_eq!(Order::Fifo.pop(&mut buf), Some(0));
        assert_eq!(Order::Lifo.pop(&mut buf), Some(2));
    }
}
