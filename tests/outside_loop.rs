//! Sockets made where no loop runs: a clear error that says why and how
//! to make a listener before the loop, and that way (a std listener,
//! adopted with `from_std` inside the loop) works on both backends.

use ringloop::net::{TcpListener, TcpStream, UdpSocket, UnixStream};

#[test]
fn sockets_outside_a_loop_are_an_error_naming_the_way_out() {
    let errors = [
        TcpListener::bind("127.0.0.1:0").map(drop).unwrap_err(),
        UdpSocket::bind("127.0.0.1:0").map(drop).unwrap_err(),
        UnixStream::pair().map(drop).unwrap_err(),
        TcpListener::from_std(std::net::TcpListener::bind("127.0.0.1:0").unwrap())
            .map(drop)
            .unwrap_err(),
    ];
    for e in errors {
        let msg = e.to_string();
        assert!(
            msg.contains("inside a running ringloop event loop"),
            "{msg}"
        );
        assert!(msg.contains("from_std"), "{msg}");
    }
}

#[test]
fn a_std_listener_made_before_the_loop_is_adopted_inside_it() {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = std_listener.local_addr().unwrap();
    ringloop::run(async move {
        let listener = TcpListener::from_std(std_listener)?;
        assert_eq!(listener.local_addr()?, addr);
        let client = ringloop::spawn(async move {
            let s = TcpStream::connect(addr).await?;
            let (res, _) = s.write_all(b"adopted".to_vec()).await;
            res
        });
        let (conn, _) = listener.accept().await?;
        let (res, buf) = conn.read_exact(vec![0u8; 7].into_boxed_slice()).await;
        res?;
        assert_eq!(&buf[..], b"adopted");
        client.await?
    })
    .unwrap()
    .unwrap();
}
