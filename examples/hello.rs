//! Tasks and sleeps: asyncio's "hello world" of concurrency.
//!
//! Two tasks sleep concurrently; the program takes as long as the longer
//! sleep, not the sum. Run with `cargo run --release --example hello`.

use std::time::{Duration, Instant};

async fn say_after(delay: Duration, what: &'static str) -> &'static str {
    ringloop::sleep(delay).await;
    println!("{what}");
    what
}

fn main() -> std::io::Result<()> {
    ringloop::run(async {
        let started = Instant::now();
        println!("started at {:?}", started.elapsed());
        let hello = ringloop::spawn_named("hello", say_after(Duration::from_millis(200), "hello"));
        let world = ringloop::spawn_named("world", say_after(Duration::from_millis(100), "world"));
        println!("{} and {} are running", hello.name(), world.name());
        let (a, b) = (hello.await, world.await);
        println!(
            "gathered {:?} and {:?}; finished after {} ms (the longest sleep, not the sum)",
            a.expect("hello task"),
            b.expect("world task"),
            started.elapsed().as_millis()
        );
    })
}
