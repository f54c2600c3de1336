//! `EventLoop::ring_stats` / `ring_stats()`: the counters are real, and a
//! completion queue far smaller than the completions arriving at once loses
//! nothing (the kernel's overflow list is flushed, `cq_overflow` stays 0).

use ringloop::net::UnixStream;
use ringloop::{Backend, EventLoop, gather, ring_stats, spawn};

#[test]
fn ring_stats_reports_sizes_and_ops_in_flight() {
    let lp = EventLoop::builder()
        .entries(8)
        .cq_entries(16)
        .build()
        .unwrap();
    let before = lp.ring_stats();
    assert_eq!(before.backend, lp.backend());
    match lp.backend() {
        Backend::IoUring => {
            assert_eq!(before.sq_entries, 8);
            assert_eq!(before.cq_entries, 16);
        }
        // No ring: no queue sizes (the counters below still apply).
        Backend::Epoll => assert_eq!((before.sq_entries, before.cq_entries), (0, 0)),
    }
    assert_eq!(before.cq_overflow, 0);
    lp.run_until_complete(async {
        let (a, b) = UnixStream::pair().unwrap();
        let idle = ring_stats().unwrap().ops_in_flight;
        let reader = spawn(async move { b.read(vec![0u8; 16]).await });
        ringloop::yield_now().await;
        ringloop::yield_now().await;
        let pending = ring_stats().unwrap().ops_in_flight;
        assert!(
            pending > idle,
            "a pending read is an op in flight ({idle} idle, {pending} with the read)"
        );
        let (r, _) = a.write_all(b"hi".to_vec()).await;
        r.unwrap();
        let (r, buf) = reader.await.unwrap();
        assert_eq!(&buf[..r.unwrap()], b"hi");
    })
    .unwrap();
    let after = lp.ring_stats();
    assert!(after.enters > before.enters, "{before:?} -> {after:?}");
    assert!(ring_stats().is_err(), "no loop runs on this thread now");
}

#[test]
fn completions_beyond_a_tiny_cq_are_not_lost() {
    // 64 reads complete in one burst into a CQ of 4 entries.
    const N: usize = 64;
    let lp = EventLoop::builder()
        .entries(2)
        .cq_entries(4)
        .build()
        .unwrap();
    let got = lp
        .run_until_complete(async {
            let mut writers = Vec::new();
            let mut reads = Vec::new();
            for i in 0..N {
                let (a, b) = UnixStream::pair().unwrap();
                writers.push(a);
                reads.push(spawn(async move {
                    let (r, buf) = b.read(vec![0u8; 8]).await;
                    let n = r.unwrap();
                    assert_eq!(buf[..n], (i as u64).to_le_bytes()[..n]);
                    n
                }));
            }
            // Let every read reach the kernel before any data exists.
            for _ in 0..4 {
                ringloop::yield_now().await;
            }
            for (i, w) in writers.iter().enumerate() {
                // A plain write(2) so the 64 completions land together.
                let fd = std::os::fd::AsRawFd::as_raw_fd(w);
                let bytes = (i as u64).to_le_bytes();
                // SAFETY: `fd` is a live socket owned by `w`; `bytes` is a
                // valid 8-byte buffer for the duration of the call.
                let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
                assert_eq!(n, 8);
            }
            gather(reads).await.unwrap()
        })
        .unwrap();
    assert_eq!(got.len(), N);
    assert!(got.into_iter().all(|r| r.unwrap() == 8));
    let stats = lp.ring_stats();
    assert_eq!(stats.cq_overflow, 0, "{stats:?}");
}
