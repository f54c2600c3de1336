//! futures-io adapters: ecosystem code (`futures_util::io::copy`,
//! `BufReader::lines`) over ringloop streams, every byte checked.

use futures_util::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, StreamExt};
use ringloop::net::{TcpListener, TcpStream, UnixStream};

fn pattern(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

#[test]
fn futures_copy_through_a_tcp_echo_preserves_8_mib() {
    ringloop::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // Echo server written with futures-util only.
        let server = ringloop::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            let (mut r, mut w) = s.into_compat().split();
            let n = futures_util::io::copy(&mut r, &mut w).await.unwrap();
            w.close().await.unwrap();
            n
        });
        let data = pattern(8 << 20);
        let client = TcpStream::connect(addr).await.unwrap().into_compat();
        let (mut r, mut w) = client.split();
        let sent = data.clone();
        let writer = ringloop::spawn(async move {
            w.write_all(&sent).await.unwrap();
            w.close().await.unwrap();
        });
        let mut got = Vec::new();
        r.read_to_end(&mut got).await.unwrap();
        writer.await.unwrap();
        assert_eq!(server.await.unwrap(), data.len() as u64);
        assert!(got == data, "echoed bytes differ");
    })
    .unwrap();
}

#[test]
fn buf_reader_lines_over_a_unix_stream() {
    ringloop::run(async {
        let (a, b) = UnixStream::pair().unwrap();
        let mut w = a.into_compat();
        let text: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        let t = text.clone();
        let writer = ringloop::spawn(async move {
            w.write_all(t.as_bytes()).await.unwrap();
            w.close().await.unwrap();
        });
        let lines: Vec<String> = futures_util::io::BufReader::new(b.into_compat())
            .lines()
            .map(|l| l.unwrap())
            .collect()
            .await;
        writer.await.unwrap();
        assert_eq!(lines.len(), 1000);
        assert_eq!(lines[999], "line 999");
        assert_eq!(lines.join("\n") + "\n", text);
    })
    .unwrap();
}
