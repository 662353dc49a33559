//! tokio-util codecs over smux streams, as users frame their protocols: length-delimited
//! frames through `Framed`, both ways on many streams at once, each frame checked.

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use smux_tokio::{client, server, Config};
use std::time::Duration;
use test_rng::Rng;
use tokio::time::timeout;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

const STREAMS: u64 = 16;
const FRAMES: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn length_delimited_frames_round_trip_on_many_streams() {
    for version in [1, 2] {
        let (a, b) = tokio::io::duplex(256 * 1024);
        let config = Config::builder().version(version).build().unwrap();
        let client = client(a, config.clone()).unwrap();
        let server = server(b, config).unwrap();
        // The server answers every frame with the same frame, reversed, then ends the
        // stream once the client has.
        tokio::spawn(async move {
            while let Ok(Some(stream)) = server.accept_stream().await {
                tokio::spawn(async move {
                    let mut framed = Framed::new(stream, LengthDelimitedCodec::new());
                    while let Some(frame) = framed.next().await {
                        let mut frame = frame.unwrap().to_vec();
                        frame.reverse();
                        framed.send(Bytes::from(frame)).await.unwrap();
                    }
                    SinkExt::<Bytes>::close(&mut framed).await.unwrap();
                });
            }
        });
        let mut tasks = Vec::new();
        for i in 0..STREAMS {
            let stream = client.open_stream().await.unwrap();
            tasks.push(tokio::spawn(async move {
                let mut framed = Framed::new(stream, LengthDelimitedCodec::new());
                let mut rng = Rng::for_stream(version.into(), i);
                for _ in 0..FRAMES {
                    let len = rng.range(0, 20_000);
                    let frame = rng.bytes(len);
                    framed.send(Bytes::from(frame.clone())).await.unwrap();
                    let mut back = framed.next().await.expect("a reply").unwrap().to_vec();
                    back.reverse();
                    assert!(
                        back == frame,
                        "v{version} stream {i}: a frame came back wrong"
                    );
                }
                SinkExt::<Bytes>::close(&mut framed).await.unwrap();
                assert!(framed.next().await.is_none(), "the server ends its side");
            }));
        }
        for t in tasks {
            timeout(Duration::from_secs(30), t)
                .await
                .expect("the frames arrive")
                .unwrap();
        }
    }
}
