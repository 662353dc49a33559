//! smux over TLS: one TLS connection (tokio-rustls, ring provider) over loopback TCP, many
//! streams inside it. The certificate is self-signed, made at start (rcgen).
//!
//! `cargo run -p smux-tokio --example tls`

use smux_tokio::{client, server, Config};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::crypto::ring::default_provider;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // A certificate for "localhost", and TLS configs that serve and trust it.
    let key = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
    let cert = key.cert.der().clone();
    let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.signing_key.serialize_der()));
    let provider = Arc::new(default_provider());
    let server_tls = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], private)?;
    let mut roots = RootCertStore::empty();
    roots.add(cert)?;
    let client_tls = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();

    // The server: TLS on each TCP connection, then an smux session that echoes every stream.
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let acceptor = TlsAcceptor::from(Arc::new(server_tls));
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        let session = server(acceptor.accept(tcp).await?, Config::default())?;
        while let Ok(Some(stream)) = session.accept_stream().await {
            tokio::spawn(async move {
                let (mut r, mut w) = stream.into_split();
                tokio::io::copy(&mut r, &mut w).await?;
                w.shutdown().await
            });
        }
        Ok::<_, BoxError>(())
    });

    // The client: one TLS connection, one session, 8 streams at once.
    let connector = TlsConnector::from(Arc::new(client_tls));
    let tls = connector
        .connect(
            ServerName::try_from("localhost")?,
            TcpStream::connect(addr).await?,
        )
        .await?;
    let session = client(tls, Config::default())?;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let mut stream = session.open_stream().await?;
        tasks.push(tokio::spawn(async move {
            let message = format!("stream {i} over TLS ").repeat(1000);
            stream.write_all(message.as_bytes()).await?;
            stream.shutdown().await?; // half-close; the echo still comes back
            let mut reply = String::new();
            stream.read_to_string(&mut reply).await?;
            assert_eq!(reply, message);
            Ok::<_, std::io::Error>(reply.len())
        }));
    }
    for task in tasks {
        let bytes = task.await??;
        println!("echoed {bytes} bytes over TLS");
    }
    session.close().await;
    Ok(())
}
