//! One session between two runtimes, each in its own thread, over loopback TCP: a tokio
//! client against smol and async-std servers, and the reverse.

use futures_util::future::{join_all, select, Either};
use futures_util::io::{AsyncReadExt, AsyncWriteExt};
use futures_util::stream::{FuturesUnordered, StreamExt};
use interop_tests::seeded;
use smux_core::{Config, Session};
use std::net::{TcpListener, TcpStream};
use std::thread;

const STREAMS: usize = 16;
const BYTES: usize = 1 << 20;

#[derive(Debug, Clone, Copy)]
enum Rt {
    Tokio,
    Smol,
    AsyncStd,
}

/// Runs `body` with a session over `conn` on runtime `rt`, in the calling thread.
fn with_session<F, Fut>(rt: Rt, conn: TcpStream, server: bool, config: Config, body: F)
where
    F: FnOnce(Session) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    conn.set_nodelay(true).unwrap();
    match rt {
        Rt::Tokio => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                conn.set_nonblocking(true).unwrap();
                let conn = tokio::net::TcpStream::from_std(conn).unwrap();
                let session = if server {
                    smux_tokio::server(conn, config)
                } else {
                    smux_tokio::client(conn, config)
                }
                .unwrap();
                body(session.as_core().clone()).await
            })
        }
        Rt::Smol => smol::block_on(async {
            let conn = smol::Async::new(conn).unwrap();
            let session = if server {
                smux_smol::server(conn, config)
            } else {
                smux_smol::client(conn, config)
            }
            .unwrap();
            body(session).await
        }),
        Rt::AsyncStd => async_std::task::block_on(async {
            let conn = async_std::net::TcpStream::from(conn);
            let session = if server {
                smux_async_std::server(conn, config)
            } else {
                smux_async_std::client(conn, config)
            }
            .unwrap();
            body(session).await
        }),
    }
}

/// Echoes each stream from the moment it is accepted (waiting for all of them first would
/// let the version-1 session budget fill with unread data and stop the session reading).
async fn echo_server(session: Session) {
    let echo = |s: smux_core::Stream| async move {
        let (r, mut w) = s.into_split();
        futures_util::io::copy(r, &mut w).await.unwrap();
        w.close().await.unwrap();
    };
    let mut echoes = FuturesUnordered::new();
    let mut accepted = 0;
    while accepted < STREAMS {
        // Accepting is cancel-safe, so it can race the echoes already running.
        let accept = Box::pin(session.accept_stream());
        let stream = if echoes.is_empty() {
            accept.await
        } else {
            match select(accept, echoes.next()).await {
                Either::Left((stream, _)) => stream,
                Either::Right(_) => continue,
            }
        };
        echoes.push(echo(stream.unwrap().expect("a stream")));
        accepted += 1;
    }
    while echoes.next().await.is_some() {}
    session.finished().await;
}

/// Opens `STREAMS` streams, sends seeded data on each, half-closes, checks the echo.
async fn client(session: Session) {
    let jobs = (0..STREAMS).map(|i| {
        let session = session.clone();
        async move {
            let stream = session.open_stream().await.unwrap();
            let data = seeded(42, i as u64, BYTES);
            let (mut r, mut w) = stream.into_split();
            let send = async {
                w.write_all(&data).await.unwrap();
                w.close().await.unwrap();
            };
            let mut got = Vec::new();
            let recv = async { r.read_to_end(&mut got).await.unwrap() };
            futures_util::future::join(send, recv).await;
            assert!(got == data, "stream {i}: echo differs");
        }
    });
    join_all(jobs).await;
    session.close().await;
}

fn cross(client_rt: Rt, server_rt: Rt, version: u8) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let config = Config::builder().version(version).build().unwrap();
    let server_config = config.clone();
    let server = thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        with_session(server_rt, conn, true, server_config, echo_server);
    });
    let conn = TcpStream::connect(addr).unwrap();
    with_session(client_rt, conn, false, config, client);
    server.join().expect("server thread");
}

#[test]
fn tokio_client_smol_server() {
    cross(Rt::Tokio, Rt::Smol, 1);
    cross(Rt::Tokio, Rt::Smol, 2);
}

#[test]
fn tokio_client_async_std_server() {
    cross(Rt::Tokio, Rt::AsyncStd, 1);
    cross(Rt::Tokio, Rt::AsyncStd, 2);
}

#[test]
fn smol_client_tokio_server() {
    cross(Rt::Smol, Rt::Tokio, 1);
    cross(Rt::Smol, Rt::Tokio, 2);
}

#[test]
fn async_std_client_tokio_server() {
    cross(Rt::AsyncStd, Rt::Tokio, 1);
    cross(Rt::AsyncStd, Rt::Tokio, 2);
}

#[test]
fn smol_client_async_std_server() {
    cross(Rt::Smol, Rt::AsyncStd, 2);
}
