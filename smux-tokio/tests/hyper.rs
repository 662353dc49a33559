//! hyper over smux streams, HTTP/1.1 and HTTP/2: every stream is one HTTP connection.
//!
//! Each repetition is one smux session over loopback TCP with 100 streams at once, each
//! carrying 10 sequential request/response exchanges with bodies of up to 64 KiB; the
//! server echoes every body. Every response body must come back whole, and every
//! connection future must end Ok on both sides: the server's `serve_connection`, and the
//! client's connection driver. This is the regression test for hyper's "connection closed
//! before message completed", which came from a `poll_flush` that waited for the driver to
//! frame the bytes, so that hyper's response and the client's FIN raced. The server drops
//! its session as soon as its last connection ends, so a client whose shutdown is still
//! being polled then must not fail either.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{client, server, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use smux_tokio::{Config, Session, Stream};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use test_rng::Rng;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

const REPS: u64 = 50;
const STREAMS: usize = 100;
const REQUESTS_PER_STREAM: usize = 10;
const MAX_BODY: usize = 64 * 1024;
const REP_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy)]
enum Http {
    V1,
    V2,
}

/// The next stream the peer opens; the session ending is an error here, as every test
/// expects all its streams.
async fn accept(session: &Session) -> Result<Stream, String> {
    session
        .accept_stream()
        .await
        .map_err(|e| format!("accept: {e}"))?
        .ok_or_else(|| "accept: the session ended".to_string())
}

/// A hyper error with its cause chain.
fn describe(e: &hyper::Error) -> String {
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        s += &format!(": {cause}");
        source = cause.source();
    }
    s
}

/// Echoes the body of a request to `/LEN`; 400 if the body is not LEN bytes long.
async fn echo(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let expected = req.uri().path()[1..].parse::<usize>().ok();
    let body = req.into_body().collect().await?.to_bytes();
    let mut res = Response::new(Full::new(body.clone()));
    if expected != Some(body.len()) {
        *res.status_mut() = StatusCode::BAD_REQUEST;
    }
    Ok(res)
}

async fn serve_connection(stream: Stream, http: Http) -> Result<(), String> {
    let io = TokioIo::new(stream);
    let result = match http {
        Http::V1 => {
            server::conn::http1::Builder::new()
                .serve_connection(io, service_fn(echo))
                .await
        }
        Http::V2 => {
            server::conn::http2::Builder::new(TokioExecutor::new())
                .serve_connection(io, service_fn(echo))
                .await
        }
    };
    result.map_err(|e| format!("server serve_connection: {}", describe(&e)))
}

/// The server end: accepts `STREAMS` streams, serves each, and gives every connection's
/// result once all have ended.
async fn serve(session: Session, http: Http) -> Vec<Result<(), String>> {
    let mut conns = JoinSet::new();
    let mut results = Vec::new();
    for _ in 0..STREAMS {
        match accept(&session).await {
            Ok(stream) => {
                conns.spawn(serve_connection(stream, http));
            }
            Err(e) => {
                results.push(Err(e));
                break;
            }
        }
    }
    while let Some(r) = conns.join_next().await {
        results.push(r.unwrap_or_else(|e| Err(format!("server task: {e}"))));
    }
    results
}

/// hyper's HTTP/1.1 and HTTP/2 request senders.
enum Sender {
    V1(client::conn::http1::SendRequest<Full<Bytes>>),
    V2(client::conn::http2::SendRequest<Full<Bytes>>),
}

impl Sender {
    async fn send(&mut self, req: Request<Full<Bytes>>) -> hyper::Result<Response<Incoming>> {
        match self {
            Sender::V1(s) => {
                s.ready().await?;
                s.send_request(req).await
            }
            Sender::V2(s) => {
                s.ready().await?;
                s.send_request(req).await
            }
        }
    }
}

/// One client connection over a new stream: `REQUESTS_PER_STREAM` exchanges, one after
/// another, with bodies cut from `data` at random offsets and lengths; then the connection
/// is let go and its driver must end Ok.
async fn client_connection(
    session: Session,
    http: Http,
    data: Bytes,
    seed: u64,
) -> Result<(), String> {
    let stream = session
        .open_stream()
        .await
        .map_err(|e| format!("open: {e}"))?;
    let io = TokioIo::new(stream);
    let (mut sender, conn) = match http {
        Http::V1 => {
            let (s, c) = client::conn::http1::handshake(io)
                .await
                .map_err(|e| format!("client handshake: {}", describe(&e)))?;
            (Sender::V1(s), tokio::spawn(c))
        }
        Http::V2 => {
            let (s, c) = client::conn::http2::handshake(TokioExecutor::new(), io)
                .await
                .map_err(|e| format!("client handshake: {}", describe(&e)))?;
            (Sender::V2(s), tokio::spawn(c))
        }
    };
    let mut rng = Rng::new(seed);
    for i in 0..REQUESTS_PER_STREAM {
        let len = rng.range(0, MAX_BODY);
        let offset = rng.range(0, data.len() - len);
        let body = data.slice(offset..offset + len);
        let req = Request::post(format!("http://smux.test/{len}"))
            .body(Full::new(body.clone()))
            .unwrap();
        let res = sender
            .send(req)
            .await
            .map_err(|e| format!("request {i} ({len} bytes): {}", describe(&e)))?;
        let status = res.status();
        let got = res
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("response {i} body ({len} bytes): {}", describe(&e)))?
            .to_bytes();
        if status != StatusCode::OK {
            return Err(format!("request {i} ({len} bytes): status {status}"));
        }
        if got != body {
            return Err(format!(
                "response {i}: {} bytes, expected the {len} sent back",
                got.len()
            ));
        }
    }
    drop(sender);
    match conn.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("client connection: {}", describe(&e))),
        Err(e) => Err(format!("client connection task: {e}")),
    }
}

/// A client session and a server session over one loopback TCP connection.
async fn session_pair() -> (Session, Session) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (a, b) = tokio::join!(
        TcpStream::connect(listener.local_addr().unwrap()),
        listener.accept()
    );
    let client = smux_tokio::client(a.unwrap(), Config::default()).unwrap();
    let server = smux_tokio::server(b.unwrap().0, Config::default()).unwrap();
    (client, server)
}

/// One repetition; every failure it saw, empty if it passed.
async fn repetition(http: Http, seed: u64) -> Vec<String> {
    let (client, server) = session_pair().await;
    let data = Bytes::from(Rng::new(seed).bytes(2 * MAX_BODY));
    let server_side = tokio::spawn(serve(server, http));
    let mut clients = JoinSet::new();
    for i in 0..STREAMS {
        let seed = seed.wrapping_mul(1000).wrapping_add(i as u64);
        clients.spawn(client_connection(client.clone(), http, data.clone(), seed));
    }
    let mut failures = Vec::new();
    while let Some(r) = clients.join_next().await {
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failures.push(e),
            Err(e) => failures.push(format!("client task: {e}")),
        }
    }
    match server_side.await {
        Ok(results) => failures.extend(results.into_iter().filter_map(Result::err)),
        Err(e) => failures.push(format!("server task: {e}")),
    }
    client.close().await;
    failures
}

async fn run(http: Http) {
    let start = Instant::now();
    let mut failed = 0;
    // Each distinct failure, and how many times it was seen.
    let mut seen = BTreeMap::<String, usize>::new();
    for rep in 0..REPS {
        let rep_start = Instant::now();
        let failures = match tokio::time::timeout(REP_TIMEOUT, repetition(http, rep)).await {
            Ok(failures) => failures,
            Err(_) => vec![format!("timed out after {REP_TIMEOUT:?}")],
        };
        if !failures.is_empty() {
            failed += 1;
            eprintln!(
                "{http:?} rep {rep}: {} failures in {:?}; first: {}",
                failures.len(),
                rep_start.elapsed(),
                failures[0]
            );
            for f in failures {
                *seen.entry(f).or_default() += 1;
            }
        }
    }
    eprintln!(
        "{http:?}: {} of {REPS} repetitions passed in {:?}",
        REPS - failed,
        start.elapsed()
    );
    assert!(
        failed == 0,
        "{http:?}: {failed} of {REPS} repetitions failed; failures seen: {seen:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_connections_over_smux_streams() {
    run(Http::V1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_connections_over_smux_streams() {
    run(Http::V2).await;
}
