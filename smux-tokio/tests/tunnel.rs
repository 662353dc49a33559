//! `tokio::io::copy_bidirectional` through a smux tunnel, the shape of
//! `examples/tunnel.rs` (and kcptun):
//!
//! ```text
//! apps -> [entry: TCP listener] == one smux session over TCP == [exit] -> target echo
//! ```
//!
//! Each app connection sends seeded random data and half-closes; the target echoes all of
//! it and half-closes after the last byte. Both ends must see every byte, in order, and both
//! `copy_bidirectional` calls of every tunnelled connection must end Ok, having moved the
//! connection's length each way.

use smux_tokio::{Config, Session, Stream};
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use test_rng::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

const CONNECTIONS: usize = 20;
const REPS: u64 = 20;
const REP_TIMEOUT: Duration = Duration::from_secs(30);

/// The bytes app connection `i` sends: about 1 MiB, a different length for each, and none
/// for the first (a connection that half-closes at once).
fn len(i: usize) -> usize {
    if i == 0 {
        0
    } else {
        (1 << 20) + i * 4099
    }
}

/// The next stream the peer opens; the session ending is an error here, as every test
/// expects all its streams.
async fn accept(session: &Session) -> io::Result<Stream> {
    session
        .accept_stream()
        .await
        .map_err(io::Error::other)?
        .ok_or_else(|| io::Error::other("the session ended"))
}

/// The entry end: each of `n` accepted app connections is carried over a stream of its
/// own. Gives each connection's `copy_bidirectional` result (app to tunnel, tunnel to app).
async fn entry(listener: TcpListener, session: Session, n: usize) -> Vec<io::Result<(u64, u64)>> {
    let mut copies = JoinSet::new();
    for _ in 0..n {
        let session = session.clone();
        let (mut conn, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                copies.spawn(async move { Err(e) });
                break;
            }
        };
        copies.spawn(async move {
            let mut stream = session.open_stream().await.map_err(io::Error::other)?;
            tokio::io::copy_bidirectional(&mut conn, &mut stream).await
        });
    }
    copies.join_all().await
}

/// The exit end: each of `n` accepted streams becomes a connection to the target. Gives
/// each stream's `copy_bidirectional` result (tunnel to target, target to tunnel).
async fn exit(session: Session, target: SocketAddr, n: usize) -> Vec<io::Result<(u64, u64)>> {
    let mut copies = JoinSet::new();
    for _ in 0..n {
        let mut stream = match accept(&session).await {
            Ok(stream) => stream,
            Err(e) => {
                copies.spawn(async move { Err(e) });
                break;
            }
        };
        copies.spawn(async move {
            let mut conn = TcpStream::connect(target).await?;
            tokio::io::copy_bidirectional(&mut stream, &mut conn).await
        });
    }
    copies.join_all().await
}

/// The target: echoes each of `n` connections, half-closing once it has echoed everything.
/// Gives what each connection received.
async fn target(listener: TcpListener, n: usize) -> Vec<io::Result<Vec<u8>>> {
    let mut conns = JoinSet::new();
    for _ in 0..n {
        let (mut conn, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                conns.spawn(async move { Err(e) });
                break;
            }
        };
        conns.spawn(async move {
            let mut received = Vec::new();
            let mut buf = vec![0; 64 * 1024];
            loop {
                let n = conn.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                conn.write_all(&buf[..n]).await?;
                received.extend_from_slice(&buf[..n]);
            }
            conn.shutdown().await?;
            Ok(received)
        });
    }
    conns.join_all().await
}

/// An app connection: sends `data` and half-closes while reading the echo to its end.
async fn app(addr: SocketAddr, data: Vec<u8>) -> io::Result<Vec<u8>> {
    let (mut r, mut w) = TcpStream::connect(addr).await?.into_split();
    let send = async move {
        w.write_all(&data).await?;
        w.shutdown().await
    };
    let receive = async move {
        let mut echo = Vec::new();
        r.read_to_end(&mut echo).await?;
        Ok(echo)
    };
    let ((), echo) = tokio::try_join!(send, receive)?;
    Ok(echo)
}

/// A listener on an ephemeral loopback port, and its address.
async fn listen() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

async fn repetition(seed: u64) {
    // The target, the tunnel's own TCP connection with a session on each end, the entry.
    let (target_listener, target_addr) = listen().await;
    let target = tokio::spawn(target(target_listener, CONNECTIONS));
    let (tunnel, tunnel_addr) = listen().await;
    let (a, b) = tokio::join!(TcpStream::connect(tunnel_addr), tunnel.accept());
    let entry_session = smux_tokio::client(a.unwrap(), Config::default()).unwrap();
    let exit_session = smux_tokio::server(b.unwrap().0, Config::default()).unwrap();
    let exit = tokio::spawn(exit(exit_session, target_addr, CONNECTIONS));
    let (local, local_addr) = listen().await;
    let entry = tokio::spawn(entry(local, entry_session.clone(), CONNECTIONS));

    let sent: Vec<Vec<u8>> = (0..CONNECTIONS)
        .map(|i| Rng::for_stream(seed, i as u64).bytes(len(i)))
        .collect();
    let apps: Vec<_> = sent
        .iter()
        .map(|data| tokio::spawn(app(local_addr, data.clone())))
        .collect();
    for (i, app) in apps.into_iter().enumerate() {
        let echo = app
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("app {i}: {e}"));
        assert!(
            echo == sent[i],
            "app {i}: echo of {} bytes differs from the {} sent",
            echo.len(),
            sent[i].len()
        );
    }

    // The target got every connection's bytes; connections arrive in any order, so
    // compare sorted.
    let mut received: Vec<Vec<u8>> = target
        .await
        .unwrap()
        .into_iter()
        .enumerate()
        .map(|(i, r)| r.unwrap_or_else(|e| panic!("target connection {i}: {e}")))
        .collect();
    received.sort();
    let mut expected = sent.clone();
    expected.sort();
    assert!(received == expected, "the target got other bytes than sent");

    // Each copy moved its connection's length both ways.
    let mut lengths: Vec<u64> = (0..CONNECTIONS).map(|i| len(i) as u64).collect();
    lengths.sort();
    for (end, copies) in [
        ("entry", entry.await.unwrap()),
        ("exit", exit.await.unwrap()),
    ] {
        let mut counts: Vec<(u64, u64)> = copies
            .into_iter()
            .enumerate()
            .map(|(i, r)| r.unwrap_or_else(|e| panic!("{end} copy_bidirectional {i}: {e} ({e:?})")))
            .collect();
        for &(there, back) in &counts {
            assert_eq!(there, back, "{end}: bytes there and back differ");
        }
        counts.sort();
        let there: Vec<u64> = counts.iter().map(|c| c.0).collect();
        assert_eq!(there, lengths, "{end}: copy_bidirectional byte counts");
    }
    entry_session.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_bidirectional_through_a_tunnel() {
    for rep in 0..REPS {
        let start = Instant::now();
        tokio::time::timeout(REP_TIMEOUT, repetition(rep))
            .await
            .unwrap_or_else(|_| panic!("rep {rep} timed out after {REP_TIMEOUT:?}"));
        eprintln!(
            "rep {rep}: {CONNECTIONS} connections in {:?}",
            start.elapsed()
        );
    }
}
