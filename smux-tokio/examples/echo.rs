//! A client and a server over loopback TCP: the client opens 16 streams at once, sends
//! 8 MiB on each while reading the echo back, checks every byte and reports throughput.
//!
//! `cargo run --release -p smux-tokio --example echo`

use smux_tokio::{client, server, Config};
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const STREAMS: usize = 16;
const BYTES: usize = 8 << 20;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let (conn, _) = listener.accept().await?;
        conn.set_nodelay(true)?;
        let session = server(conn, Config::default())?;
        while let Ok(Some(stream)) = session.accept_stream().await {
            tokio::spawn(async move {
                let (mut r, mut w) = stream.into_split();
                tokio::io::copy(&mut r, &mut w).await?;
                w.shutdown().await
            });
        }
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
    });

    let conn = TcpStream::connect(addr).await?;
    conn.set_nodelay(true)?;
    let session = client(conn, Config::default())?;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..STREAMS {
        let stream = session.open_stream().await?;
        tasks.push(tokio::spawn(async move {
            let data: Vec<u8> = (0..BYTES).map(|b| (b * 31 + i) as u8).collect();
            let (mut r, mut w) = stream.into_split();
            let expected = data.clone();
            let writer = tokio::spawn(async move {
                w.write_all(&data).await?;
                w.shutdown().await
            });
            let mut echoed = Vec::with_capacity(BYTES);
            r.read_to_end(&mut echoed).await?;
            writer.await??;
            assert!(echoed == expected, "stream {i}: echo differs");
            Ok::<_, std::io::Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let secs = start.elapsed().as_secs_f64();
    let total = (STREAMS * BYTES) as f64 / (1 << 20) as f64;
    println!(
        "{STREAMS} streams x {} MiB echoed over one TCP connection in {secs:.2} s: {:.0} MiB/s each way",
        BYTES >> 20,
        total / secs
    );
    let stats = session.stats();
    println!(
        "client session: {} bytes out, {} bytes in, {} streams open",
        stats.bytes_out, stats.bytes_in, stats.open_streams
    );
    session.close().await;
    Ok(())
}
