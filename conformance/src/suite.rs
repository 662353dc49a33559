//! The behaviours, each an async test body over a harness and a transport.

use crate::{connect, detach, spawn, Harness, Transport};
use futures_util::future::{join_all, select, Either};
use futures_util::io::{AsyncReadExt, AsyncWriteExt};
use futures_util::StreamExt;
use smux_core::{CloseReason, Config, Error, Session, Stream};
use std::io;
use std::sync::Arc;
use std::time::Duration;

type H = Arc<dyn Harness>;

pub use test_rng::Rng;

/// Asserts that `session` ended with the connection's end while `open` streams were not
/// finished both ways: not a clean end.
fn assert_unexpected_end(session: &Session, open: usize) {
    let reason = session.close_reason();
    assert!(
        matches!(reason, Some(CloseReason::UnexpectedEof { open_streams, .. }) if open_streams == open),
        "{reason:?}"
    );
}

fn config(version: u8) -> Config {
    Config::builder().version(version).build().unwrap()
}

/// Echoes every stream the session accepts: writes back what arrives, half-closes after
/// the peer's FIN.
fn echo_server(h: &H, session: Session) {
    let h2 = h.clone();
    let task = async move {
        while let Ok(Some(stream)) = session.accept_stream().await {
            detach(&h2, echo_stream(stream));
        }
    };
    detach(h, task);
}

async fn echo_stream(stream: Stream) {
    let (mut r, mut w) = stream.into_split();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => {
                if w.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
            Err(_) => return,
        }
    }
    let _ = w.close().await;
}

/// Writes `data` in `rng`-sized pieces while reading the echo; returns what came back.
async fn round_trip(stream: Stream, data: Vec<u8>, seed: u64) -> Vec<u8> {
    let (mut r, mut w) = stream.into_split();
    let writer = async move {
        let mut rng = Rng::new(seed);
        let mut sent = 0;
        while sent < data.len() {
            let n = rng.range(1, 1 << 20).min(data.len() - sent);
            w.write_all(&data[sent..sent + n]).await.unwrap();
            sent += n;
        }
        w.close().await.unwrap();
        w
    };
    let reader = async move {
        let mut got = Vec::new();
        r.read_to_end(&mut got).await.unwrap();
        (got, r)
    };
    let (_w, (got, _r)) = futures_util::future::join(writer, reader).await;
    got
}

async fn echo(h: H, t: Transport, version: u8) {
    let (client, server) = connect(&h, t, config(version), config(version)).await;
    echo_server(&h, server);
    let mut stream = client.open_stream().await.unwrap();
    stream.write_all(b"hello, smux").await.unwrap();
    stream.close().await.unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).await.unwrap();
    assert_eq!(reply, b"hello, smux");
}

/// One stream, one message, echoed back, version 1.
pub async fn echo_v1(h: H, t: Transport) {
    echo(h, t, 1).await
}

/// One stream, one message, echoed back, version 2.
pub async fn echo_v2(h: H, t: Transport) {
    echo(h, t, 2).await
}

/// 1000 concurrent streams, 100 request/response messages each.
pub async fn thousand_streams_hundred_messages(h: H, t: Transport) {
    for version in [1, 2] {
        let (client, server) = connect(&h, t, config(version), config(version)).await;
        echo_server(&h, server);
        let streams = (0..1000u64).map(|i| {
            let client = client.clone();
            async move {
                let mut s = client.open_stream().await.unwrap();
                let mut buf = [0u8; 64];
                for m in 0..100u64 {
                    let msg = Rng::new(i * 1000 + m).bytes(64);
                    s.write_all(&msg).await.unwrap();
                    s.read_exact(&mut buf).await.unwrap();
                    assert_eq!(&buf[..], &msg[..], "stream {i} message {m}");
                }
            }
        });
        join_all(streams).await;
        client.close().await;
    }
}

async fn random_sizes(h: H, t: Transport, version: u8) {
    let (client, server) = connect(&h, t, config(version), config(version)).await;
    echo_server(&h, server);
    // Four concurrent streams of 16 MiB each, written and read in random 1 B..1 MiB pieces.
    let mut rng = Rng::new(0xC0FFEE + u64::from(version));
    let jobs = (0..4).map(|i| {
        let data = rng.bytes(16 << 20);
        let client = client.clone();
        let seed = rng.next_u64();
        async move {
            let stream = client.open_stream().await.unwrap();
            let got = round_trip(stream, data.clone(), seed).await;
            assert_eq!(got.len(), data.len(), "stream {i}: length");
            assert!(got == data, "stream {i}: content differs");
        }
    });
    join_all(jobs).await;
}

/// 64 MiB of random sizes, checked byte for byte, version 1.
pub async fn random_sizes_64_mib_v1(h: H, t: Transport) {
    random_sizes(h, t, 1).await
}

/// 64 MiB of random sizes, checked byte for byte, version 2.
pub async fn random_sizes_64_mib_v2(h: H, t: Transport) {
    random_sizes(h, t, 2).await
}

/// The server opens streams and the client echoes them.
pub async fn server_opens_streams(h: H, t: Transport) {
    let (client, server) = connect(&h, t, config(2), config(2)).await;
    echo_server(&h, client);
    let jobs = (0..10u64).map(|i| {
        let server = server.clone();
        async move {
            let s = server.open_stream().await.unwrap();
            assert_eq!(s.id().0 % 2, 0, "server ids are even");
            let data = Rng::new(i).bytes(100_000);
            assert!(round_trip(s, data.clone(), i).await == data);
        }
    });
    join_all(jobs).await;
}

/// A half-closed stream keeps reading; each side sees the other's FIN after its data.
pub async fn half_close_both_ways(h: H, t: Transport) {
    for version in [1, 2] {
        let (client, server) = connect(&h, t, config(version), config(version)).await;
        let mut c = client.open_stream().await.unwrap();
        c.write_all(b"request").await.unwrap();
        c.close().await.unwrap();
        c.close().await.unwrap(); // idempotent
        let mut s = server.accept_stream().await.unwrap().expect("a stream");
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"request");
        // The reply goes after the client's FIN, and the client still reads it.
        s.write_all(b"reply").await.unwrap();
        s.close().await.unwrap();
        let mut reply = Vec::new();
        c.read_to_end(&mut reply).await.unwrap();
        assert_eq!(reply, b"reply");
        // And the other way: the server finishes first.
        let mut s2 = server.open_stream().await.unwrap();
        s2.write_all(b"push").await.unwrap();
        s2.close().await.unwrap();
        let mut c2 = client.accept_stream().await.unwrap().expect("a stream");
        let mut got = Vec::new();
        c2.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"push");
        c2.write_all(b"ack").await.unwrap();
        c2.close().await.unwrap();
        let mut ack = Vec::new();
        s2.read_to_end(&mut ack).await.unwrap();
        assert_eq!(ack, b"ack");
    }
}

/// Writing after shutdown fails with `BrokenPipe`, carrying the typed error.
pub async fn write_after_shutdown_is_broken_pipe(h: H, t: Transport) {
    let (client, _server) = connect(&h, t, config(1), config(1)).await;
    let mut c = client.open_stream().await.unwrap();
    c.close().await.unwrap();
    let err = c.write_all(b"late").await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    let typed = err.get_ref().and_then(|e| e.downcast_ref::<Error>());
    assert_eq!(typed, Some(&Error::WriteClosed));
}

/// Dropping a stream sends what was written, then a FIN.
pub async fn drop_sends_queued_data_then_fin(h: H, t: Transport) {
    let (client, server) = connect(&h, t, config(2), config(2)).await;
    let data = Rng::new(7).bytes(500_000);
    let mut c = client.open_stream().await.unwrap();
    // Write without waiting for the window: the last part is still queued at drop.
    let mut written = 0;
    while written < data.len() {
        let w = futures_util::future::poll_fn(|cx| c.poll_write(cx, &data[written..]));
        match select(Box::pin(w), h.sleep(Duration::from_millis(50))).await {
            Either::Left((Ok(n), _)) => written += n,
            Either::Left((Err(e), _)) => panic!("{e}"),
            Either::Right(_) => break, // buffer full and the server is not reading yet
        }
    }
    drop(c);
    let mut s = server.accept_stream().await.unwrap().expect("a stream");
    let mut got = Vec::new();
    s.read_to_end(&mut got).await.unwrap();
    assert_eq!(got.len(), written);
    assert!(got[..] == data[..written]);
}

/// `close()` flushes queued data and FINs, then closes the connection; the peer's session
/// then ends too, and every call reports why.
pub async fn close_flushes_then_ends_the_session(h: H, t: Transport) {
    let (client, server) = connect(&h, t, config(1), config(1)).await;
    let data = Rng::new(3).bytes(200_000);
    let mut c = client.open_stream().await.unwrap();
    c.write_all(&data).await.unwrap();
    client.close().await;
    assert!(client.is_closed());
    assert_eq!(client.close_reason(), Some(CloseReason::Local));
    let err = client.open_stream().await.unwrap_err();
    assert_eq!(err, Error::Closed(CloseReason::Local));
    assert_eq!(io::Error::from(err).kind(), io::ErrorKind::NotConnected);
    // Everything written before close arrives, then the FIN close sent.
    let mut s = server.accept_stream().await.unwrap().expect("a stream");
    let mut got = Vec::new();
    s.read_to_end(&mut got).await.unwrap();
    assert!(got == data);
    server.finished().await;
    // The server never finished its side of the stream: not a clean end.
    assert_unexpected_end(&server, 1);
    let _ = c;
}

/// `shutdown()` refuses new streams, lets open ones finish, then closes.
pub async fn shutdown_drains_then_closes(h: H, t: Transport) {
    let (client, server) = connect(&h, t, config(1), config(1)).await;
    let mut c = client.open_stream().await.unwrap();
    c.write_all(b"before").await.unwrap();
    let mut s = server.accept_stream().await.unwrap().expect("a stream");
    let server2 = server.clone();
    let drained = spawn(&h, async move { server2.shutdown().await });
    // Give the shutdown a moment to start, then try a new stream: it is refused (FIN).
    h.sleep(Duration::from_millis(20)).await;
    let mut late = client.open_stream().await.unwrap();
    let mut got = Vec::new();
    late.read_to_end(&mut got).await.unwrap();
    assert!(got.is_empty());
    assert!(!server.is_closed(), "the open stream keeps the session");
    let mut buf = [0u8; 6];
    s.read_exact(&mut buf).await.unwrap();
    s.write_all(b"after").await.unwrap();
    s.close().await.unwrap();
    c.close().await.unwrap();
    let mut reply = Vec::new();
    c.read_to_end(&mut reply).await.unwrap();
    assert_eq!(reply, b"after");
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).await.unwrap();
    drained.await;
    assert_eq!(server.close_reason(), Some(CloseReason::Local));
    assert!(server.stats().refused_streams >= 1);
}

/// When the peer goes away, a pending read, a blocked write and a pending accept all wake
/// (a read may see the peer's FIN first; over TCP the peer's close with unread data resets
/// the connection, so the others see an error). Nothing hangs.
pub async fn session_end_wakes_everything(h: H, t: Transport) {
    let small = Config::builder()
        .max_stream_send_buffer(1024)
        .max_receive_buffer(64 * 1024)
        .max_stream_buffer(16 * 1024)
        .version(2)
        .build()
        .unwrap();
    let (client, server) = connect(&h, t, small.clone(), small).await;
    let mut reader = client.open_stream().await.unwrap();
    let writer = client.open_stream().await.unwrap();
    reader.write_all(b"r").await.unwrap();
    let _s = server.accept_stream().await.unwrap().expect("a stream");
    let _s2 = server.accept_stream().await.unwrap().expect("a stream");
    // A write that blocks: the server never reads stream 2.
    let blocked_write = spawn(&h, async move {
        let mut w = writer;
        let chunk = vec![0u8; 64 * 1024];
        loop {
            if let Err(e) = w.write_all(&chunk).await {
                return e;
            }
        }
    });
    let pending_read = spawn(&h, async move {
        let mut buf = [0u8; 8];
        reader.read(&mut buf).await
    });
    let client2 = client.clone();
    let pending_accept = spawn(&h, async move {
        client2.accept_stream().await.map(|s| s.is_some())
    });
    h.sleep(Duration::from_millis(50)).await;
    // The server goes away: its connection closes.
    server.close().await;
    drop(server);
    match pending_read.await {
        Ok(0) | Err(_) => {}
        Ok(n) => panic!("read {n} bytes nobody sent"),
    }
    let werr = blocked_write.await;
    assert!(
        werr.get_ref()
            .and_then(|e| e.downcast_ref::<Error>())
            .is_some(),
        "the write error carries the typed reason: {werr:?}"
    );
    // The server went away with our blocked writer's data unread: not a clean end (the
    // connection ends with that stream unfinished on our side), or the write fails first
    // (its socket closed with our data unread).
    match pending_accept.await {
        Err(Error::Closed(CloseReason::UnexpectedEof { .. } | CloseReason::Io { .. })) => {}
        other => panic!("accept after the peer closed: {other:?}"),
    }
    client.finished().await;
    assert!(client.is_closed());
}

/// A reader gets the data buffered before the peer's session ended, then end of stream
/// (the peer's close sends FINs after the data).
pub async fn buffered_data_survives_session_end(h: H, t: Transport) {
    let (client, server) = connect(&h, t, config(1), config(1)).await;
    let mut a = client.open_stream().await.unwrap();
    let mut b = client.open_stream().await.unwrap();
    a.write_all(b"a").await.unwrap();
    b.write_all(b"b").await.unwrap();
    let mut sa = server.accept_stream().await.unwrap().expect("a stream");
    let mut sb = server.accept_stream().await.unwrap().expect("a stream");
    sa.write_all(b"buffered").await.unwrap();
    sa.close().await.unwrap(); // FIN on a only
    sb.write_all(b"also").await.unwrap();
    sb.flush().await.unwrap();
    h.sleep(Duration::from_millis(30)).await;
    drop((sa, sb));
    let mut got = Vec::new();
    a.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"buffered");
    let mut got = [0u8; 4];
    b.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"also");
    server.close().await;
    client.finished().await;
    let mut rest = Vec::new();
    b.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
}

/// Dropping `accept_stream` futures (as `select!` does) loses no stream.
pub async fn accept_is_cancel_safe(h: H, t: Transport) {
    let (client, server) = connect(&h, t, config(1), config(1)).await;
    let opener = {
        let h = h.clone();
        spawn(&h.clone(), async move {
            let mut streams = Vec::new();
            for i in 0..50u64 {
                let mut s = client.open_stream().await.unwrap();
                s.write_all(&i.to_le_bytes()).await.unwrap();
                streams.push(s);
                if i % 5 == 0 {
                    h.sleep(Duration::from_millis(1)).await;
                }
            }
            (client, streams)
        })
    };
    let mut seen = Vec::new();
    while seen.len() < 50 {
        let accept = Box::pin(server.accept_stream());
        match select(accept, h.sleep(Duration::from_micros(300))).await {
            Either::Left((s, _)) => {
                let mut s = s.unwrap().expect("a stream");
                let mut id = [0u8; 8];
                s.read_exact(&mut id).await.unwrap();
                seen.push(u64::from_le_bytes(id));
            }
            Either::Right(_) => {} // the accept is dropped mid-wait
        }
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..50).collect::<Vec<_>>());
    let _ = opener.await;
}

/// A dropped `open_stream` future either never opened a stream or returned it.
pub async fn open_is_cancel_safe(h: H, t: Transport) {
    let (client, server) = connect(&h, t, config(1), config(1)).await;
    for _ in 0..20 {
        // Dropped before it is polled: nothing is opened.
        drop(client.open_stream());
    }
    let mut s = client.open_stream().await.unwrap();
    s.write_all(b"only").await.unwrap();
    let mut a = server.accept_stream().await.unwrap().expect("a stream");
    assert_eq!(a.id(), s.id());
    let mut buf = [0u8; 4];
    a.read_exact(&mut buf).await.unwrap();
    assert_eq!(server.stats().open_streams, 1);
}

/// A slow reader loses nothing, and the session's buffered bytes stay within the bound.
pub async fn slow_reader_loses_nothing_within_the_bound(h: H, t: Transport) {
    for version in [1, 2] {
        let cfg = Config::builder()
            .version(version)
            .max_receive_buffer(256 * 1024)
            .max_stream_buffer(64 * 1024)
            .build()
            .unwrap();
        let (client, server) = connect(&h, t, cfg.clone(), cfg.clone()).await;
        let data = Rng::new(11).bytes(4 << 20);
        let mut c = client.open_stream().await.unwrap();
        let expected = data.clone();
        let writer = spawn(&h, async move {
            c.write_all(&data).await.unwrap();
            c.close().await.unwrap();
            c
        });
        let mut s = server.accept_stream().await.unwrap().expect("a stream");
        let mut got = Vec::new();
        let mut buf = vec![0u8; 16 * 1024];
        let bound = cfg.max_receive_buffer() + 65535;
        loop {
            let n = s.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            let buffered = server.stats().buffered_in;
            assert!(buffered <= bound, "{buffered} buffered, bound {bound}");
            if got.len() % (256 * 1024) < n {
                h.sleep(Duration::from_millis(5)).await; // slow
            }
        }
        assert!(got == expected);
        let _ = writer.await;
    }
}

/// The read and write halves of a stream work from different tasks at once.
pub async fn split_halves_work_concurrently(h: H, t: Transport) {
    let (client, server) = connect(&h, t, config(2), config(2)).await;
    echo_server(&h, server);
    let stream = client.open_stream().await.unwrap();
    let data = Rng::new(21).bytes(3 << 20);
    let (mut r, mut w) = stream.into_split();
    let to_send = data.clone();
    let writer = spawn(&h, async move {
        w.write_all(&to_send).await.unwrap();
        w.close().await.unwrap();
        w
    });
    let reader = spawn(&h, async move {
        let mut got = Vec::new();
        r.read_to_end(&mut got).await.unwrap();
        (got, r)
    });
    let (got, r) = reader.await;
    let w = writer.await;
    assert!(got == data);
    let whole = r.reunite(w).unwrap();
    assert!(whole.id().0 > 0);
}

/// When every handle is dropped, the driver closes the connection: the peer sees it.
pub async fn dropping_every_handle_closes_the_connection(h: H, t: Transport) {
    let (client, server) = connect(&h, t, config(1), config(1)).await;
    let s = client.open_stream().await.unwrap();
    drop(client);
    h.sleep(Duration::from_millis(20)).await;
    assert!(!server.is_closed(), "a stream handle keeps the session");
    drop(s);
    server.finished().await;
    // The server never took (or finished) the stream: the end is not a clean one.
    assert_unexpected_end(&server, 1);
}

/// `incoming()` yields the peer's streams, is taken once, and ends with the session.
pub async fn incoming_yields_streams_and_ends(h: H, t: Transport) {
    let (client, server) = connect(&h, t, config(1), config(1)).await;
    let mut incoming = server.incoming().expect("first take");
    assert!(server.incoming().is_none(), "taken once");
    for _ in 0..3 {
        let mut c = client.open_stream().await.unwrap();
        c.write_all(b"x").await.unwrap();
        let mut s = incoming.next().await.unwrap();
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.unwrap();
    }
    client.close().await;
    assert!(incoming.next().await.is_none());
}

/// Chunk reads hand over the data without copying and end with `None`, never with an
/// empty chunk; asking for 0 bytes gives an empty chunk, which is not the end.
pub async fn chunk_reads_end_with_none(h: H, t: Transport) {
    let (client, server) = connect(&h, t, config(2), config(2)).await;
    let data = Rng::new(31).bytes(200_000);
    let mut c = client.open_stream().await.unwrap();
    c.write_all(&data).await.unwrap();
    c.close().await.unwrap();
    let mut s = server.accept_stream().await.unwrap().expect("a stream");
    assert_eq!(s.read_chunk(0).await.unwrap().map(|c| c.len()), Some(0));
    let mut got = Vec::new();
    while let Some(chunk) = s.read_chunk(10_000).await.unwrap() {
        assert!(
            !chunk.is_empty() && chunk.len() <= 10_000,
            "chunk of {}",
            chunk.len()
        );
        got.extend_from_slice(&chunk);
    }
    assert!(got == data);
    assert_eq!(s.read_chunk(0).await.unwrap().map(|c| c.len()), Some(0));
    assert!(
        s.read_chunk(100).await.unwrap().is_none(),
        "the end stays the end"
    );
}

/// Both halves name their stream, the same id as the whole stream and the peer's end.
pub async fn halves_know_their_stream(h: H, t: Transport) {
    let (client, server) = connect(&h, t, config(1), config(1)).await;
    let mut c = client.open_stream().await.unwrap();
    c.write_all(b"x").await.unwrap();
    let s = server.accept_stream().await.unwrap().expect("a stream");
    let id = c.id();
    assert_eq!(s.id(), id);
    let (r, w) = c.into_split();
    assert_eq!((r.id(), w.id()), (id, id));
    let other = client.open_stream().await.unwrap();
    let (r2, w2) = other.into_split();
    let smux_core::ReuniteError(r, w2) = r.reunite(w2).unwrap_err();
    assert_eq!(r.reunite(w).unwrap().id(), id);
    assert_eq!(r2.reunite(w2).unwrap().id(), smux_core::StreamId(id.0 + 2));
}

/// A peer that closes its session after finishing its streams ends ours cleanly:
/// `accept_stream` gives `Ok(None)` and `incoming()` ends, on both ends the reason says so.
/// A connection that ends with a stream still open is an error instead.
pub async fn clean_end_is_not_an_error(h: H, t: Transport) {
    let (client, server) = connect(&h, t, config(2), config(2)).await;
    let mut c = client.open_stream().await.unwrap();
    c.write_all(b"bye").await.unwrap();
    c.close().await.unwrap();
    let mut s = server.accept_stream().await.unwrap().expect("a stream");
    let mut got = Vec::new();
    s.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"bye");
    s.close().await.unwrap();
    drop(s);
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).await.unwrap();
    client.close().await;
    assert_eq!(server.accept_stream().await.map(|s| s.is_some()), Ok(false));
    server.finished().await;
    assert_eq!(server.close_reason(), Some(CloseReason::PeerClosed));
    assert_eq!(client.close_reason(), Some(CloseReason::Local));

    // A peer that drops its connection with a stream still open (a crash, or Go's
    // `Session.Close`, which sends no FINs): the end is unexpected, an error.
    let (mut raw, b) = h.connect(t).await;
    let server = Session::spawn(b, smux_core::Role::Server, config(2), h.runtime());
    let mut wire = Vec::new();
    for frame in [
        smux_core::frame::Frame::Syn { sid: 3 },
        smux_core::frame::Frame::Psh {
            sid: 3,
            data: bytes::Bytes::from_static(b"x"),
        },
    ] {
        frame.encode(smux_core::Version::V2, &mut wire).unwrap();
    }
    raw.write_all(&wire).await.unwrap();
    let _s = server.accept_stream().await.unwrap().expect("a stream");
    drop(raw);
    let err = server
        .accept_stream()
        .await
        .map(|s| s.is_some())
        .unwrap_err();
    assert_eq!(
        err,
        Error::Closed(CloseReason::UnexpectedEof {
            open_streams: 1,
            mid_frame: false,
            before_first_frame: false,
        })
    );
}

/// After `Session::close()`, a write on a stream opened before it says the session was
/// closed locally, not that the stream was shut down.
pub async fn writes_after_close_name_the_session(h: H, t: Transport) {
    let (client, _server) = connect(&h, t, config(1), config(1)).await;
    let mut c = client.open_stream().await.unwrap();
    c.write_all(b"x").await.unwrap();
    client.close().await;
    let err = c.write_all(b"y").await.unwrap_err();
    let typed = err.get_ref().and_then(|e| e.downcast_ref::<Error>());
    assert_eq!(typed, Some(&Error::Closed(CloseReason::Local)), "{err}");
    assert_eq!(err.to_string(), "the session was closed locally");
}

/// `flush` is a socket's: it never waits for the peer, even when the peer reads nothing;
/// `shutdown` commits the FIN at once; `sent()` is the call that waits for the data to go.
pub async fn flush_and_shutdown_never_wait_for_the_peer(h: H, t: Transport) {
    let (client, server) = connect(&h, t, config(2), config(2)).await;
    let mut c = client.open_stream().await.unwrap();
    let data = Rng::new(41).bytes(300_000); // more than the peer's initial window
    let mut sent = 0;
    while sent < 200_000 {
        sent += c.write(&data[sent..]).await.unwrap();
    }
    let flushed = select(Box::pin(c.flush()), h.sleep(Duration::from_secs(2))).await;
    assert!(matches!(flushed, Either::Left((Ok(()), _))), "flush waited");
    let rest = select(
        Box::pin(c.write_all(&data[sent..])),
        h.sleep(Duration::from_millis(50)),
    );
    // The rest may not fit before the peer reads: write it from a task of its own.
    drop(rest);
    let (mut r, mut w) = c.into_split();
    let tail = data[sent..].to_vec();
    let writer = spawn(&h, async move {
        w.write_all(&tail).await.unwrap();
        let closed = w.close().await;
        (w, closed)
    });
    let mut s = server.accept_stream().await.unwrap().expect("a stream");
    let mut got = Vec::new();
    s.read_to_end(&mut got).await.unwrap();
    assert!(got == data);
    let (mut w, closed) = writer.await;
    closed.unwrap();
    w.sent().await.unwrap();
    drop(r.read(&mut [0u8; 1]));
}

/// A stream whose read half the server dropped, keeping the write half, still takes every
/// byte the client writes (8 MiB, twice the session's receive budget) and still sends;
/// another stream of the session flows meanwhile. Before, the unread bytes stayed charged:
/// in version 1 they stopped the whole session, in version 2 the client's writer waited
/// forever for window.
pub async fn a_dropped_read_half_stalls_nothing(h: H, t: Transport) {
    for version in [1, 2] {
        let run = dropped_read_half(&h, t, version);
        let ended = select(Box::pin(run), h.sleep(Duration::from_secs(20))).await;
        assert!(matches!(ended, Either::Left(_)), "v{version}: stalled");
    }
}

async fn dropped_read_half(h: &H, t: Transport, version: u8) {
    let (client, server) = connect(h, t, config(version), config(version)).await;
    let mut unread = client.open_stream().await.unwrap();
    unread.write_all(b"x").await.unwrap();
    let s = server.accept_stream().await.unwrap().expect("a stream");
    let (r, mut w) = s.into_split();
    drop(r);
    let data = Rng::new(43).bytes(8 << 20);
    unread.write_all(&data).await.unwrap();
    let mut other = client.open_stream().await.unwrap();
    other.write_all(b"still flowing").await.unwrap();
    other.close().await.unwrap();
    let mut s2 = server.accept_stream().await.unwrap().expect("a stream");
    let mut got = Vec::new();
    s2.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"still flowing", "v{version}");
    w.write_all(b"reply").await.unwrap();
    w.close().await.unwrap();
    unread.close().await.unwrap();
    let mut reply = Vec::new();
    unread.read_to_end(&mut reply).await.unwrap();
    assert_eq!(reply, b"reply", "v{version}");
    // Every byte reaches the server, to be counted as discarded (within the caller's
    // deadline).
    while server.stats().discarded_bytes < 1 + data.len() as u64 {
        h.sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(server.stats().discarded_bytes, 1 + data.len() as u64);
    assert_eq!(server.stats().buffered_in, 0);
}
