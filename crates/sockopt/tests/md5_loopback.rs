//! RFC 2385 on real loopback sockets: the same key on both ends connects and carries
//! bytes; another key, or a key on one end only, is never answered (connect times out);
//! removing the keys makes plain TCP work again; bad keys get clear errors.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a panic is a test failure

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use filament_sockopt::{set_tcp_md5sig, MAX_KEY_LEN};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

/// Long enough for loopback, short enough to keep the test quick: a refused SYN is
/// dropped silently (RFC 2385 §2.0), so a failing connect only ends by timing out.
const FAIL_AFTER: Duration = Duration::from_millis(1500);

fn listener(bind: &str) -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind(bind).unwrap();
    let a = l.local_addr().unwrap();
    (l, a)
}

/// Connect to `to` from a fresh socket holding `key` for it; Ok once the handshake is done.
async fn connect(to: SocketAddr, key: Option<&[u8]>) -> io::Result<tokio::net::TcpStream> {
    let s = if to.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if key.is_some() {
        set_tcp_md5sig(&s, to, key)?;
    }
    match tokio::time::timeout(FAIL_AFTER, s.connect(to)).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
    }
}

/// Accept one connection and echo what it sends, in a thread (the listener is std).
fn echo_one(l: TcpListener) -> std::thread::JoinHandle<io::Result<()>> {
    std::thread::spawn(move || {
        let (mut c, _) = l.accept()?;
        let mut buf = [0u8; 5];
        c.read_exact(&mut buf)?;
        c.write_all(&buf)
    })
}

#[tokio::test]
async fn same_key_connects_and_carries_bytes() {
    let (l, addr) = listener("127.0.0.1:0");
    set_tcp_md5sig(&l, addr, Some(b"secret")).unwrap();
    let echo = echo_one(l);
    let mut s = connect(addr, Some(b"secret"))
        .await
        .expect("same key connects");
    s.write_all(b"hello").await.unwrap();
    let mut back = [0u8; 5];
    s.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"hello");
    echo.join().unwrap().unwrap();
}

#[tokio::test]
async fn another_key_or_a_missing_key_is_never_answered() {
    let (l, addr) = listener("127.0.0.1:0");
    set_tcp_md5sig(&l, addr, Some(b"secret")).unwrap();
    let e = connect(addr, Some(b"wrong"))
        .await
        .expect_err("another key connected");
    assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
    let e = connect(addr, None)
        .await
        .expect_err("no key connected to a keyed listener");
    assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
    // And the other way round: a keyed client to a listener without a key.
    let (plain, paddr) = listener("127.0.0.1:0");
    let e = connect(paddr, Some(b"secret"))
        .await
        .expect_err("keyed client got an answer");
    assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
    drop(plain);
}

#[tokio::test]
async fn removing_the_key_makes_plain_tcp_work_again() {
    let (l, addr) = listener("127.0.0.1:0");
    set_tcp_md5sig(&l, addr, Some(b"secret")).unwrap();
    assert!(
        connect(addr, None).await.is_err(),
        "keyed listener answered a plain SYN"
    );
    set_tcp_md5sig(&l, addr, None).unwrap();
    // Removing again is not an error.
    set_tcp_md5sig(&l, addr, None).unwrap();
    let echo = echo_one(l);
    let mut s = connect(addr, None)
        .await
        .expect("plain connect after removal");
    s.write_all(b"again").await.unwrap();
    let mut back = [0u8; 5];
    s.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"again");
    echo.join().unwrap().unwrap();
}

/// A dual-stack listener keys an IPv4 peer by its IPv4-mapped address (what the kernel
/// matches for a connection from it).
#[tokio::test]
async fn ipv4_peer_of_a_dual_stack_listener() {
    let Ok(l) = TcpListener::bind("[::]:0") else {
        eprintln!("skipped: no IPv6 socket here");
        return;
    };
    let port = l.local_addr().unwrap().port();
    let v4: SocketAddr = ([127, 0, 0, 1], port).into();
    set_tcp_md5sig(&l, v4, Some(b"dual")).unwrap();
    let e = connect(v4, Some(b"other"))
        .await
        .expect_err("another key connected");
    assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
    let echo = echo_one(l);
    let mut s = connect(v4, Some(b"dual"))
        .await
        .expect("same key over dual stack");
    s.write_all(b"mixed").await.unwrap();
    let mut back = [0u8; 5];
    s.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"mixed");
    echo.join().unwrap().unwrap();
}

#[test]
fn bad_keys_get_clear_errors() {
    let (l, addr) = listener("127.0.0.1:0");
    let long = vec![b'k'; MAX_KEY_LEN + 1];
    let e = set_tcp_md5sig(&l, addr, Some(&long)).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    assert!(
        e.to_string().contains("81 bytes") && e.to_string().contains("80"),
        "{e}"
    );
    // The longest allowed key is taken.
    set_tcp_md5sig(&l, addr, Some(&long[..MAX_KEY_LEN])).unwrap();
    let e = set_tcp_md5sig(&l, addr, Some(b"")).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
    // An IPv6 peer cannot be keyed on an IPv4 socket.
    let v6: SocketAddr = "[2001:db8::1]:179".parse().unwrap();
    let e = set_tcp_md5sig(&l, v6, Some(b"k")).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
}
