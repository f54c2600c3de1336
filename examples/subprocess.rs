//! Child processes on the loop (asyncio's `create_subprocess_exec`).
//!
//! Runs `ls -l` and prints its output, pipes lines through `sort` while
//! reading its output as it comes, and gives a `sleep 10` 200 ms with
//! `wait_for` before killing it. Run with
//! `cargo run --release --example subprocess`.

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use ringloop::process::{Command, Stdio};

async fn list_directory() -> io::Result<()> {
    let out = Command::new("ls").arg("-l").output().await?;
    println!("$ ls -l    ({})", out.status);
    print!("{}", String::from_utf8_lossy(&out.stdout));
    Ok(())
}

async fn sort_lines() -> io::Result<()> {
    let mut sort = Command::new("sort")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdin = sort.stdin.take().expect("piped stdin");
    let stdout = sort.stdout.take().expect("piped stdout");
    // Feed and drain concurrently: with more input than a pipe holds,
    // doing one after the other could deadlock.
    let feeder = ringloop::spawn(async move {
        for fruit in ["pear", "apple", "fig", "banana", "cherry"] {
            let (res, _) = stdin.write_all(format!("{fruit}\n")).await;
            res?;
        }
        stdin.close().await
    });
    let (res, sorted) = stdout.read_to_end(Vec::new()).await;
    res?;
    feeder.await.expect("feeder task")?;
    let status = sort.wait().await?;
    println!("\n$ sort    ({status})");
    print!("{}", String::from_utf8_lossy(&sorted));
    Ok(())
}

async fn give_up_on_sleep() -> io::Result<()> {
    let mut sleeper = Command::new("sleep").arg("10").kill_on_drop(true).spawn()?;
    let started = Instant::now();
    println!("\n$ sleep 10    (pid {})", sleeper.id());
    match ringloop::wait_for(sleeper.wait(), Some(Duration::from_millis(200))).await {
        Ok(status) => println!("finished early: {}", status?),
        Err(_) => {
            println!("still running after {:?}: killing it", started.elapsed());
            sleeper.kill()?;
            let status = sleeper.wait().await?;
            println!(
                "reaped after {:?}: {status} (signal {:?})",
                started.elapsed(),
                status.signal()
            );
        }
    }
    Ok(())
}

fn main() -> io::Result<()> {
    ringloop::run(async {
        list_directory().await?;
        sort_lines().await?;
        give_up_on_sleep().await
    })?
}
