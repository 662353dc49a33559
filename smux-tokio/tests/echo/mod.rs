//! Echo helpers the transport tests (TLS, KCP) share: a server side that echoes every
//! stream, and a client side that checks an echo byte for byte.

use smux_tokio::{Session, Stream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Echoes every stream the peer opens, until the session ends (spawned).
pub(crate) fn serve(session: Session) {
    tokio::spawn(async move {
        while let Ok(Some(stream)) = session.accept_stream().await {
            tokio::spawn(async move {
                let (mut r, mut w) = stream.into_split();
                tokio::io::copy(&mut r, &mut w).await?;
                w.shutdown().await
            });
        }
    });
}

/// Writes `data` on `stream`, half-closes, and checks that the echo is `data` byte for byte.
pub(crate) async fn checked(stream: Stream, data: Vec<u8>) {
    let (mut r, mut w) = stream.into_split();
    let len = data.len();
    let writer = tokio::spawn(async move {
        w.write_all(&data).await.unwrap();
        w.shutdown().await.unwrap();
        data
    });
    let mut back = Vec::with_capacity(len);
    r.read_to_end(&mut back).await.unwrap();
    let data = writer.await.unwrap();
    assert_eq!(back.len(), len);
    if let Some(at) = back.iter().zip(&data).position(|(a, b)| a != b) {
        panic!("the echo differs at byte {at} of {len}");
    }
}
