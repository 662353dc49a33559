//! HTTP over smux with hyper: every smux stream is one HTTP connection.
//!
//! A client and a server share one smux session over loopback TCP. The server serves each
//! stream it accepts as an HTTP connection; the client opens three streams at once and sends
//! a few requests on each, printing the responses. HTTP/1.1 by default, or HTTP/2:
//!
//! `cargo run -p smux-tokio --example hyper [-- --http2]`

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{client, server, Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use smux_tokio::{Config, Session, Stream};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The server's one handler: says what it got, and echoes the request body.
async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let head = format!(
        "{} {} over {:?}",
        req.method(),
        req.uri().path(),
        req.version()
    );
    let body = req.into_body().collect().await?.to_bytes();
    let reply = format!("{head}, body {:?}", String::from_utf8_lossy(&body));
    Ok(Response::new(Full::new(Bytes::from(reply))))
}

/// Serves one smux stream as an HTTP connection, until the client closes it.
async fn serve_connection(stream: Stream, http2: bool) -> Result<(), hyper::Error> {
    let io = TokioIo::new(stream);
    if http2 {
        server::conn::http2::Builder::new(TokioExecutor::new())
            .serve_connection(io, service_fn(handle))
            .await
    } else {
        server::conn::http1::Builder::new()
            .serve_connection(io, service_fn(handle))
            .await
    }
}

/// The server: each stream the peer opens is an HTTP connection of its own.
async fn serve(session: Session, http2: bool) {
    while let Ok(Some(stream)) = session.accept_stream().await {
        tokio::spawn(async move {
            if let Err(e) = serve_connection(stream, http2).await {
                eprintln!("server: {e} ({e:?})");
            }
        });
    }
}

/// A client connection's request half: hyper's HTTP/1.1 and HTTP/2 senders are different
/// types.
enum Sender {
    Http1(client::conn::http1::SendRequest<Full<Bytes>>),
    Http2(client::conn::http2::SendRequest<Full<Bytes>>),
}

impl Sender {
    /// Opens a stream and makes it an HTTP connection; its driver runs in a task, which
    /// ends once the sender is dropped and the connection is closed.
    async fn connect(
        session: &Session,
        http2: bool,
    ) -> Result<(Self, JoinHandle<hyper::Result<()>>), BoxError> {
        let io = TokioIo::new(session.open_stream().await?);
        if http2 {
            let (sender, conn) = client::conn::http2::handshake(TokioExecutor::new(), io).await?;
            Ok((Sender::Http2(sender), tokio::spawn(conn)))
        } else {
            let (sender, conn) = client::conn::http1::handshake(io).await?;
            Ok((Sender::Http1(sender), tokio::spawn(conn)))
        }
    }

    async fn send(&mut self, req: Request<Full<Bytes>>) -> hyper::Result<Response<Incoming>> {
        match self {
            Sender::Http1(sender) => sender.send_request(req).await,
            Sender::Http2(sender) => sender.send_request(req).await,
        }
    }
}

/// One client connection: a GET and a POST, one after the other, then the connection is
/// closed.
async fn fetch(session: Session, n: usize, http2: bool) -> Result<(), BoxError> {
    let (mut sender, conn) = Sender::connect(&session, http2).await?;
    let requests = [
        Request::get(format!("http://smux.example/hello/{n}")).body(Full::default())?,
        Request::post(format!("http://smux.example/echo/{n}"))
            .body(Full::new(Bytes::from(format!("hello from connection {n}"))))?,
    ];
    for req in requests {
        let line = format!("{} {}", req.method(), req.uri());
        let res = sender.send(req).await?;
        let status = res.status();
        let body = res.into_body().collect().await?.to_bytes();
        println!(
            "connection {n}: {line} -> {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    drop(sender);
    conn.await??;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let http2 = std::env::args().skip(1).any(|arg| arg == "--http2");

    // One TCP connection, one smux session over it: a client end and a server end.
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let (a, b) = tokio::join!(
        TcpStream::connect(listener.local_addr()?),
        listener.accept()
    );
    let client_session = smux_tokio::client(a?, Config::default())?;
    let server_session = smux_tokio::server(b?.0, Config::default())?;
    tokio::spawn(serve(server_session.clone(), http2));

    // Three HTTP connections at once, each its own smux stream.
    let fetches: Vec<_> = (1..=3)
        .map(|n| tokio::spawn(fetch(client_session.clone(), n, http2)))
        .collect();
    for f in fetches {
        f.await??;
    }
    // The server drains: it refuses new streams, lets its connections end, then closes.
    server_session.shutdown().await;
    Ok(())
}
