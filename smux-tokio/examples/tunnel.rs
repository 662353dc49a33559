//! A port-forwarding tunnel, the kcptun shape: many TCP connections carried as streams of
//! one smux session between two tunnel ends.
//!
//! ```text
//! app clients -> [entry :LOCAL] == one smux session over TCP == [exit] -> target :TARGET
//! ```
//!
//! With no arguments it runs a self-contained demonstration on loopback: a target echo
//! server, both tunnel ends, and 50 app connections through the tunnel at once.
//! `cargo run -p smux-tokio --example tunnel`

use smux_tokio::{client, server, Config, Session};
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The entry: each accepted app connection becomes a stream of the session.
async fn entry(listener: TcpListener, session: Session) -> Result<(), BoxError> {
    loop {
        let (mut conn, _) = listener.accept().await?;
        let mut stream = session.open_stream().await?;
        tokio::spawn(async move { tokio::io::copy_bidirectional(&mut conn, &mut stream).await });
    }
}

/// The exit: each stream of the session becomes a connection to the target.
async fn exit(session: Session, target: SocketAddr) {
    while let Ok(Some(mut stream)) = session.accept_stream().await {
        tokio::spawn(async move {
            let mut conn = TcpStream::connect(target).await?;
            tokio::io::copy_bidirectional(&mut stream, &mut conn).await
        });
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // The target: an echo server.
    let target = TcpListener::bind("127.0.0.1:0").await?;
    let target_addr = target.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = target.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = conn.split();
                tokio::io::copy(&mut r, &mut w).await
            });
        }
    });

    // The tunnel's own connection, and a session on each end of it.
    let tunnel = TcpListener::bind("127.0.0.1:0").await?;
    let tunnel_addr = tunnel.local_addr()?;
    let (entry_conn, exit_conn) = tokio::join!(TcpStream::connect(tunnel_addr), tunnel.accept());
    let entry_session = client(entry_conn?, Config::default())?;
    let exit_session = server(exit_conn?.0, Config::default())?;
    tokio::spawn(exit(exit_session, target_addr));
    let local = TcpListener::bind("127.0.0.1:0").await?;
    let local_addr = local.local_addr()?;
    tokio::spawn(entry(local, entry_session.clone()));
    println!("tunnel: {local_addr} -> smux over {tunnel_addr} -> {target_addr}");

    // 50 app connections through the tunnel at once.
    let mut apps = Vec::new();
    for i in 0..50 {
        apps.push(tokio::spawn(async move {
            let mut conn = TcpStream::connect(local_addr).await?;
            let message = format!("hello from app connection {i}");
            conn.write_all(message.as_bytes()).await?;
            conn.shutdown().await?;
            let mut reply = String::new();
            conn.read_to_string(&mut reply).await?;
            assert_eq!(reply, message);
            Ok::<_, std::io::Error>(())
        }));
    }
    for app in apps {
        app.await??;
    }
    println!(
        "50 connections carried over one smux session: {} streams opened, {} bytes each way",
        50,
        entry_session.stats().bytes_out
    );
    Ok(())
}
