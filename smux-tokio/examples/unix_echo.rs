//! The echo example over a Unix domain socket: one smux session, 8 streams, each sends a
//! message and reads it back.
//!
//! `cargo run -p smux-tokio --example unix_echo`

use smux_tokio::{client, server, Config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("smux-unix-echo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("socket");
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    tokio::spawn(async move {
        let (conn, _) = listener.accept().await?;
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

    let session = client(UnixStream::connect(&path).await?, Config::default())?;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let mut stream = session.open_stream().await?;
        tasks.push(tokio::spawn(async move {
            let message = format!("message {i} over {}", "a Unix socket");
            stream.write_all(message.as_bytes()).await?;
            stream.shutdown().await?;
            let mut reply = String::new();
            stream.read_to_string(&mut reply).await?;
            assert_eq!(reply, message);
            Ok::<_, std::io::Error>(reply)
        }));
    }
    for task in tasks {
        println!("echoed: {}", task.await??);
    }
    session.close().await;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
