//! Unit tests of the signal plumbing, driving the handler by hand
//! ([`super::handler::simulate`]) so no real signal is sent.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use super::handler::simulate;
use super::{reactor, signal};
use crate::EventLoop;

#[test]
fn x1_simulated_delivery_wakes_listener_and_handler() {
    // SIGRTMAX-1: used by no other unit test.
    let sig = libc::SIGRTMAX() - 1;
    let lp = EventLoop::new().unwrap();
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    lp.add_signal_handler(sig, move || c.set(c.get() + 1))
        .unwrap();
    let got = lp
        .run_until_complete(async {
            let mut s = signal(sig).unwrap();
            simulate(sig);
            s.recv().await
        })
        .unwrap();
    assert_eq!(got, Some(()));
    lp.run_until_complete(crate::sleep(Duration::from_millis(1)))
        .unwrap();
    assert_eq!(calls.get(), 1);
    assert!(lp.remove_signal_handler(sig));
    assert!(!lp.remove_signal_handler(sig));
    // Nobody listens on this loop any more: its read was retired.
    assert!(reactor::find(lp_id(&lp)).is_none());
}

#[test]
fn x1_closing_the_loop_ends_its_signals() {
    let sig = libc::SIGRTMAX() - 2;
    let lp = EventLoop::new().unwrap();
    let mut s = lp
        .run_until_complete(async { signal(sig).unwrap() })
        .unwrap();
    lp.close().unwrap();
    let out = crate::run(async move { s.recv().await }).unwrap();
    assert_eq!(out, None);
}

fn lp_id(lp: &EventLoop) -> u64 {
    lp.run_until_complete(async { crate::runtime::with_current(|l| l.id).unwrap() })
        .unwrap()
}
