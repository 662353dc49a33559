//! Hostile and broken peers, and the session's own limits, over loopback TCP against the
//! full async stack. The peer is a raw socket writing frames by hand; each test states the
//! outcome a user relies on.

use bytes::BytesMut;
use smux_core::frame::{Frame, Version};
use smux_core::{CloseReason, Config, Error, OpenError, ProtocolError};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

/// A connected (raw peer, our end) pair.
async fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (a, b) = tokio::join!(TcpStream::connect(addr), listener.accept());
    (a.unwrap(), b.unwrap().0)
}

fn encode(version: Version, frames: &[Frame]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in frames {
        f.encode(version, &mut out).unwrap();
    }
    out
}

/// Reads frames from the raw side until `enough` says so (or the connection ends).
async fn read_frames(
    peer: &mut TcpStream,
    version: Version,
    mut enough: impl FnMut(&Frame) -> bool,
) -> Vec<Frame> {
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    loop {
        while let Some((f, used)) = Frame::decode(&buf, version).unwrap() {
            let _ = buf.split_to(used);
            let done = enough(&f);
            frames.push(f);
            if done {
                return frames;
            }
        }
        if peer.read_buf(&mut buf).await.unwrap() == 0 {
            return frames;
        }
    }
}

const LIMIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn syn_flood_past_the_backlog_is_refused_while_established_streams_flow() {
    let (mut peer, ours) = tcp_pair().await;
    let config = Config::builder().accept_backlog(16).build().unwrap();
    let server = smux_tokio::server(ours, config).unwrap();
    // One established stream, echoed by an application task.
    peer.write_all(&encode(Version::V1, &[Frame::Syn { sid: 3 }]))
        .await
        .unwrap();
    let mut established = server.accept_stream().await.unwrap().expect("a stream");
    let echo = tokio::spawn(async move {
        let mut buf = [0u8; 5];
        established.read_exact(&mut buf).await.unwrap();
        established.write_all(&buf).await.unwrap();
        established
    });
    // 5000 more SYNs that nobody accepts.
    let flood: Vec<Frame> = (0..5000u32)
        .map(|i| Frame::Syn { sid: 5 + 2 * i })
        .collect();
    peer.write_all(&encode(Version::V1, &flood)).await.unwrap();
    let refused = 5000 - 16;
    let mut fins = 0;
    let frames = timeout(
        LIMIT,
        read_frames(&mut peer, Version::V1, |f| {
            fins += usize::from(matches!(f, Frame::Fin { .. }));
            fins == refused
        }),
    )
    .await
    .expect("refusals arrive");
    assert!(frames
        .iter()
        .all(|f| matches!(f, Frame::Fin { sid } if *sid >= 5)));
    assert_eq!(server.stats().refused_streams, refused as u64);
    assert!(server.stats().open_streams <= 17);
    // The established stream still flows.
    let data = Frame::Psh {
        sid: 3,
        data: "hello".into(),
    };
    peer.write_all(&encode(Version::V1, std::slice::from_ref(&data)))
        .await
        .unwrap();
    let reply = timeout(
        LIMIT,
        read_frames(&mut peer, Version::V1, |f| {
            matches!(f, Frame::Psh { sid: 3, .. })
        }),
    )
    .await
    .unwrap();
    assert_eq!(reply.last(), Some(&data));
    let _ = echo.await.unwrap();
}

#[tokio::test]
async fn a_v2_peer_that_ignores_our_window_is_a_protocol_error() {
    let (mut peer, ours) = tcp_pair().await;
    let config = Config::builder().version(2).build().unwrap();
    let server = smux_tokio::server(ours, config).unwrap();
    peer.write_all(&encode(Version::V2, &[Frame::Syn { sid: 3 }]))
        .await
        .unwrap();
    let _unread = server.accept_stream().await.unwrap().expect("a stream");
    // 12 x 32 KiB = 384 KiB unread on one stream: more than 262144 + 65535.
    let push = Frame::Psh {
        sid: 3,
        data: vec![0u8; 32768].into(),
    };
    for _ in 0..12 {
        if peer
            .write_all(&encode(Version::V2, std::slice::from_ref(&push)))
            .await
            .is_err()
        {
            break;
        }
    }
    timeout(LIMIT, server.finished())
        .await
        .expect("the session ends");
    assert!(matches!(
        server.close_reason(),
        Some(CloseReason::Protocol(ProtocolError::WindowExceeded {
            sid: 3,
            ..
        }))
    ));
}

#[tokio::test]
async fn a_peer_that_stops_reading_backpressures_our_writers() {
    let (_peer, ours) = tcp_pair().await; // the peer never reads
    let config = Config::builder()
        .max_stream_send_buffer(64 * 1024)
        .enable_keep_alive(false)
        .build()
        .unwrap();
    let client = smux_tokio::client(ours, config).unwrap();
    let mut stream = client.open_stream().await.unwrap();
    let writer = tokio::spawn(async move {
        let chunk = vec![7u8; 64 * 1024];
        loop {
            stream.write_all(&chunk).await.unwrap();
        }
    });
    // The kernel buffers fill, then our writer waits: what the session holds stays bounded.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let first = client.stats();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let second = client.stats();
    assert_eq!(first.bytes_out, second.bytes_out, "nothing more can go out");
    assert!(second.buffered_out <= 64 * 1024, "{second:?}");
    assert!(!writer.is_finished());
    writer.abort();
}

#[tokio::test]
async fn half_a_frame_then_silence_is_ended_by_keepalive() {
    let (mut peer, ours) = tcp_pair().await;
    let config = Config::builder()
        .keep_alive_interval(Duration::from_millis(100))
        .keep_alive_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let server = smux_tokio::server(ours, config).unwrap();
    peer.write_all(&[1, 2, 5, 0]).await.unwrap(); // four bytes of a PSH header
    timeout(LIMIT, server.finished())
        .await
        .expect("keepalive ends it");
    // Half a header is no frame: the reason hints that the peer may not speak smux.
    assert_eq!(
        server.close_reason(),
        Some(CloseReason::NoFrameFromPeer(Duration::from_millis(300)))
    );
}

#[tokio::test]
async fn a_connection_reset_mid_transfer_fails_every_pending_call() {
    let (mut peer, ours) = tcp_pair().await;
    let client = smux_tokio::client(ours, Config::default()).unwrap();
    let mut reading = client.open_stream().await.unwrap();
    let mut writing = client.open_stream().await.unwrap();
    let read = tokio::spawn(async move {
        let mut buf = [0u8; 16];
        reading.read(&mut buf).await
    });
    let write = tokio::spawn(async move {
        let chunk = vec![1u8; 1 << 20];
        loop {
            if let Err(e) = writing.write_all(&chunk).await {
                return e;
            }
        }
    });
    let accepting = client.clone();
    let accept = tokio::spawn(async move { accepting.accept_stream().await.map(drop) });
    // The peer reads a little, then resets the connection.
    let mut some = vec![0u8; 100_000];
    peer.read_exact(&mut some).await.unwrap();
    // A zero linger turns the close into a reset; it never blocks (the deprecation is about
    // non-zero lingers).
    #[allow(deprecated)]
    peer.set_linger(Some(Duration::ZERO)).unwrap();
    drop(peer);
    let read = timeout(LIMIT, read).await.expect("read wakes").unwrap();
    assert!(read.is_err(), "{read:?}");
    let write = timeout(LIMIT, write).await.expect("write wakes").unwrap();
    assert!(
        matches!(
            write.kind(),
            std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::BrokenPipe
                | std::io::ErrorKind::UnexpectedEof
        ),
        "{write:?}"
    );
    let accept = timeout(LIMIT, accept).await.expect("accept wakes").unwrap();
    assert!(accept.is_err());
    timeout(LIMIT, client.finished())
        .await
        .expect("the session ends");
    assert!(client.is_closed());
}

#[tokio::test]
async fn running_out_of_stream_ids_fails_opens_with_a_typed_error_while_streams_keep_working() {
    let (mut peer, ours) = tcp_pair().await;
    // Two ids left for a client: 0xFFFF_FFFD and 0xFFFF_FFFF.
    let config = Config::builder()
        .first_stream_id(u32::MAX - 2)
        .build()
        .unwrap();
    let client = smux_tokio::client(ours, config).unwrap();
    let mut first = client.open_stream().await.unwrap();
    let mut last = client.open_stream().await.unwrap();
    assert_eq!((first.id().0, last.id().0), (u32::MAX - 2, u32::MAX));

    let exhausted = Error::Open(OpenError::IdsExhausted);
    let check_exhausted = |err: Error| {
        assert_eq!(err, exhausted);
        // As README "Errors" says: an io::Error of kind Other that carries the typed error.
        let err = std::io::Error::from(err);
        assert_eq!(err.kind(), std::io::ErrorKind::Other);
        assert_eq!(
            err.get_ref().and_then(|e| e.downcast_ref::<Error>()),
            Some(&exhausted)
        );
    };
    for _ in 0..3 {
        check_exhausted(client.open_stream().await.unwrap_err());
    }

    // The open streams still carry data both ways; no SYN was sent for the failed opens.
    first.write_all(b"one").await.unwrap();
    last.write_all(b"two").await.unwrap();
    let mut pushes = 0;
    let frames = timeout(
        LIMIT,
        read_frames(&mut peer, Version::V1, |f| {
            pushes += usize::from(matches!(f, Frame::Psh { .. }));
            pushes == 2
        }),
    )
    .await
    .expect("the data arrives");
    assert_eq!(
        frames,
        [
            Frame::Syn { sid: u32::MAX - 2 },
            Frame::Syn { sid: u32::MAX },
            Frame::Psh {
                sid: u32::MAX - 2,
                data: "one".into(),
            },
            Frame::Psh {
                sid: u32::MAX,
                data: "two".into(),
            },
        ]
    );
    let reply = [
        Frame::Psh {
            sid: u32::MAX,
            data: "back".into(),
        },
        Frame::Fin { sid: u32::MAX },
    ];
    peer.write_all(&encode(Version::V1, &reply)).await.unwrap();
    let mut back = Vec::new();
    timeout(LIMIT, last.read_to_end(&mut back))
        .await
        .expect("the reply arrives")
        .unwrap();
    assert_eq!(back, b"back");

    // Ids are never reused: closing streams frees none.
    drop(first);
    drop(last);
    check_exhausted(client.open_stream().await.unwrap_err());

    // The peer can still open streams towards us, and the session stays up.
    let hello = [
        Frame::Syn { sid: 2 },
        Frame::Psh {
            sid: 2,
            data: "hi".into(),
        },
    ];
    peer.write_all(&encode(Version::V1, &hello)).await.unwrap();
    let mut accepted = timeout(LIMIT, client.accept_stream())
        .await
        .expect("the peer's stream arrives")
        .unwrap()
        .expect("a stream");
    let mut hi = [0u8; 2];
    timeout(LIMIT, accepted.read_exact(&mut hi))
        .await
        .expect("its data arrives")
        .unwrap();
    assert_eq!(&hi, b"hi");
    assert!(!client.is_closed());
}

/// A peer that takes no byte at all while our frames wait ends the session after the write
/// timeout, with a typed error for every writer, instead of holding them forever.
#[tokio::test]
async fn a_peer_that_takes_nothing_ends_the_session_at_the_write_timeout() {
    let (_peer, ours) = tcp_pair().await; // the peer never reads
    let config = Config::builder()
        .enable_keep_alive(false)
        .write_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let client = smux_tokio::client(ours, config).unwrap();
    let mut stream = client.open_stream().await.unwrap();
    let started = tokio::time::Instant::now();
    let writer = tokio::spawn(async move {
        let chunk = vec![7u8; 64 * 1024];
        loop {
            if let Err(e) = stream.write_all(&chunk).await {
                return e;
            }
        }
    });
    let err = timeout(LIMIT, writer)
        .await
        .expect("the writer is released")
        .unwrap();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert_eq!(
        client.close_reason(),
        Some(CloseReason::WriteTimeout(Duration::from_millis(500)))
    );
}

/// A version-1 peer that pauses its reading for less than the write timeout survives,
/// and every byte arrives.
#[tokio::test]
async fn a_peer_that_pauses_reading_for_less_than_the_write_timeout_survives() {
    let (peer, ours) = tcp_pair().await;
    let config = Config::builder()
        .write_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let client = smux_tokio::client(ours, config.clone()).unwrap();
    let data: Vec<u8> = (0..16 << 20).map(|i: usize| (i % 249) as u8).collect();
    let mut stream = client.open_stream().await.unwrap();
    let sent = data.clone();
    let writer = tokio::spawn(async move {
        stream.write_all(&sent).await.unwrap();
        stream.shutdown().await.unwrap();
        stream
    });
    // The peer reads nothing for 600 ms (its buffers and ours fill), then everything.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let server = smux_tokio::server(peer, config).unwrap();
    let mut s = server.accept_stream().await.unwrap().expect("a stream");
    let mut got = Vec::new();
    timeout(LIMIT, s.read_to_end(&mut got))
        .await
        .expect("the data arrives")
        .unwrap();
    assert!(got == data);
    writer.await.unwrap();
    assert!(!client.is_closed(), "{:?}", client.close_reason());
}
