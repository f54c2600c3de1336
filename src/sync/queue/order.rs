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

    /// Takes the next item. In FIFO order the first `reserved` items are
    /// promised to the woken getters (the oldest items, as they were woken
    /// in order), so a getter without a reservation takes the one after
    /// them; LIFO and priority order always take the top item, whoever asks.
    pub(crate) fn pop(&self, buf: &mut VecDeque<T>, reserved: usize) -> Option<T> {
        match self {
            Order::Fifo if reserved == 0 => buf.pop_front(),
            Order::Fifo => buf.remove(reserved),
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
                let min_at = (0..pushed.len()).min_by_key(|&i| pushed[i]);
                let expected = min_at.map(|i| pushed.swap_remove(i));
                assert_eq!(order.pop(&mut buf, 0), expected);
            } else {
                order.push(&mut buf, x % 100);
                pushed.push(x % 100);
            }
        }
        pushed.sort_unstable();
        let rest: Vec<u64> = std::iter::from_fn(|| order.pop(&mut buf, 0)).collect();
        assert_eq!(rest, pushed);
    }

    #[test]
    fn fifo_and_lifo() {
        let mut buf = VecDeque::new();
        for i in 0..3 {
            Order::Fifo.push(&mut buf, i);
        }
        assert_eq!(Order::Fifo.pop(&mut buf, 1), Some(1)); // skips a reserved item
        assert_eq!(Order::Fifo.pop(&mut buf, 0), Some(0));
        Order::Lifo.push(&mut buf, 3);
        assert_eq!(Order::Lifo.pop(&mut buf, 1), Some(3));
    }
}
