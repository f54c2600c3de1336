//! A line echo server written with asyncio-style streams: `start_server`
//! runs each connection in its own task with a `StreamReader` and a
//! `StreamWriter`; every line comes back.
//!
//! ```sh
//! cargo run --release --example echo_streams                 # 127.0.0.1:7879
//! cargo run --release --example echo_streams -- --addr 127.0.0.1:9001
//! ```
//!
//! Try it with the echo client: `cargo run --release --example echo_client
//! -- --addr 127.0.0.1:7879 hello world` (or `-` to type lines). Ctrl-C
//! stops the server.

use std::io;

use ringloop::io::{StreamError, StreamReader, StreamWriter, start_server};

async fn handle(mut reader: StreamReader, writer: StreamWriter) {
    loop {
        match reader.readline().await {
            Ok(line) if line.is_empty() => break, // EOF
            Ok(line) => {
                if let Err(e) = writer.write(&line) {
                    println!("client went away: {e}");
                    return;
                }
                if let Err(e) = writer.drain().await {
                    println!("client went away: {e}");
                    return;
                }
            }
            Err(StreamError::LimitOverrun(e)) => {
                // The oversized line was dropped; say so and go on.
                if writer
                    .write(format!("line too long: {e}\n").as_bytes())
                    .is_err()
                {
                    return;
                }
            }
            Err(e) => {
                println!("read failed: {e}");
                return;
            }
        }
    }
    writer.close();
    let _ = writer.wait_closed().await;
}

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut addr = "127.0.0.1:7879".to_owned();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--addr" => {
                addr = args
                    .next()
                    .ok_or_else(|| io::Error::other("--addr needs a value"))?
            }
            other => return Err(io::Error::other(format!("unknown argument {other:?}"))),
        }
    }
    ringloop::run(async move {
        let server = start_server(handle, addr.as_str())?;
        println!("line echo server listening on {}", server.local_addr()?);
        ringloop::signal::ctrl_c().await?;
        println!("shutting down");
        Ok(())
    })?
}
