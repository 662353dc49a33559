//! smux over TLS (tokio-rustls with the ring provider) over loopback TCP, with a
//! self-signed certificate made at test time (rcgen):
//!
//! * many streams at once, echoed and checked byte for byte, in both versions;
//! * the TLS records under the session during a bulk transfer: the client's TCP stream is
//!   wrapped *below* TLS in an adapter that keeps every byte written, and the records'
//!   5-byte headers (content type, version, length) are parsed afterwards. Application-data
//!   records must be large (about 16 KiB, TLS's most), not one record per 8-byte frame
//!   header: smux hands TLS whole batches of frames, vectored (tokio-rustls writes vectors
//!   into one record).

mod echo;

use smux_tokio::{client, server, Config, Session};
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use test_rng::Rng;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use tokio_rustls::rustls::crypto::ring::default_provider;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

const LIMIT: Duration = Duration::from_secs(30);

/// A TLS acceptor and connector that trust one self-signed certificate for "localhost".
fn tls_pair() -> (TlsAcceptor, TlsConnector) {
    let key = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert = key.cert.der().clone();
    let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.signing_key.serialize_der()));
    let provider = Arc::new(default_provider());
    let server = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], private)
        .unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(cert).unwrap();
    let client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (
        TlsAcceptor::from(Arc::new(server)),
        TlsConnector::from(Arc::new(client)),
    )
}

/// A client and a server session over TLS over loopback TCP. `wrap` sits between the
/// client's TCP stream and its TLS layer.
async fn sessions<T>(version: u8, wrap: impl FnOnce(TcpStream) -> T) -> (Session, Session)
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (acceptor, connector) = tls_pair();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accept = async {
        let (tcp, _) = listener.accept().await.unwrap();
        tcp.set_nodelay(true).unwrap();
        acceptor.accept(tcp).await.unwrap()
    };
    let connect = async {
        let tcp = TcpStream::connect(addr).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        connector.connect(name, wrap(tcp)).await.unwrap()
    };
    let (server_tls, client_tls) = tokio::join!(accept, connect);
    let config = Config::builder().version(version).build().unwrap();
    (
        client(client_tls, config.clone()).unwrap(),
        server(server_tls, config).unwrap(),
    )
}

async fn many_streams(version: u8) {
    const STREAMS: u64 = 64;
    const LEN: usize = 256 * 1024;
    let (client, server) = sessions(version, |tcp| tcp).await;
    echo::serve(server);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..STREAMS {
        let stream = client.open_stream().await.unwrap();
        let data = Rng::for_stream(0x715, i).bytes(LEN);
        tasks.push(tokio::spawn(echo::checked(stream, data)));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    let bytes = STREAMS as usize * LEN;
    println!(
        "TLS v{version}: {STREAMS} streams x {} KiB echoed in {:.0} ms: {:.1} MB/s each way",
        LEN / 1024,
        secs * 1e3,
        bytes as f64 / secs / 1e6
    );
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_streams_v1() {
    timeout(LIMIT, many_streams(1)).await.expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_streams_v2() {
    timeout(LIMIT, many_streams(2)).await.expect("timed out");
}

/// A TCP stream that keeps every byte written to it.
struct Recorder {
    inner: TcpStream,
    written: Arc<Mutex<Vec<u8>>>,
}

impl AsyncRead for Recorder {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Recorder {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = poll {
            self.written.lock().unwrap().extend_from_slice(&buf[..n]);
        }
        poll
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(mut n)) = poll {
            let mut written = self.written.lock().unwrap();
            for buf in bufs {
                let take = n.min(buf.len());
                written.extend_from_slice(&buf[..take]);
                n -= take;
            }
        }
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The (content type, length) of each TLS record in `bytes`, which must hold whole records.
fn records(bytes: &[u8]) -> Vec<(u8, usize)> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        assert!(rest.len() >= 5, "a cut record header");
        let (kind, version) = (rest[0], u16::from_be_bytes([rest[1], rest[2]]));
        assert!(matches!(kind, 20..=23), "not a TLS record: type {kind}");
        assert_eq!(version >> 8, 3, "not a TLS record version: {version:#06x}");
        let len = u16::from_be_bytes([rest[3], rest[4]]) as usize;
        assert!(rest.len() >= 5 + len, "a cut record");
        out.push((kind, len));
        rest = &rest[5 + len..];
    }
    out
}

async fn record_sizes(version: u8) {
    const LEN: usize = 8 << 20;
    let written = Arc::new(Mutex::new(Vec::new()));
    let log = written.clone();
    let (client, server) = sessions(version, move |inner| Recorder {
        inner,
        written: log,
    })
    .await;
    let receiver = tokio::spawn(async move {
        let mut stream = server.accept_stream().await.unwrap().unwrap();
        let mut got = Vec::with_capacity(LEN);
        stream.read_to_end(&mut got).await.unwrap();
        assert!(got == Rng::new(8).bytes(LEN), "the bulk data differs");
        stream.write_all(b"ok").await.unwrap();
        stream.shutdown().await.unwrap();
    });
    let data = Rng::new(8).bytes(LEN);
    let start = Instant::now();
    let mut stream = client.open_stream().await.unwrap();
    stream.write_all(&data).await.unwrap();
    stream.shutdown().await.unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).await.unwrap();
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(reply, b"ok");
    receiver.await.unwrap();
    client.close().await;

    let records = records(&written.lock().unwrap());
    let app: Vec<usize> = records
        .iter()
        .filter(|(kind, _)| *kind == 23)
        .map(|&(_, len)| len)
        .collect();
    let total: usize = app.iter().sum();
    let average = total / app.len();
    let small = app.iter().filter(|&&len| len < 1024).count();
    let largest = *app.iter().max().unwrap();
    let full = app.iter().filter(|&&len| len == largest).count();
    let mut smalls: Vec<usize> = app.iter().copied().filter(|&len| len < 1024).collect();
    smalls.sort_unstable();
    smalls.dedup();
    println!(
        "TLS v{version}: 8 MiB on one stream in {:.0} ms ({:.1} MB/s); the client wrote {} \
         records, {} of application data averaging {average} bytes ({full} of the largest, \
         {largest} bytes; {small} under 1 KiB, of sizes {smalls:?})",
        secs * 1e3,
        LEN as f64 / secs / 1e6,
        records.len(),
        app.len(),
    );
    assert!(total >= LEN, "the records hold less than the data");
    assert!(
        average >= 8 * 1024,
        "application-data records average {average} bytes, under 8 KiB"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_large_v1() {
    timeout(LIMIT, record_sizes(1)).await.expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_large_v2() {
    timeout(LIMIT, record_sizes(2)).await.expect("timed out");
}
