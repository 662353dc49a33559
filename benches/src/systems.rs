//! The Rust systems under comparison, each as a client [`Opener`] and a server that serves
//! every accepted stream with [`serve_stream`]: raw TCP, smux-rs on tokio, smol and
//! async-std, rust-yamux and async_smux.

use crate::wire::{serve_stream, AllocCount, BoxConn, BoxFuture, Opener, Spawn};
use futures_util::{FutureExt, StreamExt};
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::task::Poll;
use tokio_util::compat::TokioAsyncReadCompatExt;

/// The settings every system gets where its protocol has them.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// smux protocol version.
    pub version: u8,
    /// Largest frame payload.
    pub frame: usize,
    /// Per-stream window (smux v2 `max_stream_buffer`, yamux's initial window).
    pub window: usize,
    /// smux session receive buffer.
    pub receive_buffer: usize,
}

/// A Rust system the peer can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum System {
    /// Plain TCP: one connection per stream.
    Raw,
    /// smux-rs through `smux-tokio`.
    SmuxTokio,
    /// smux-rs through `smux-smol`.
    SmuxSmol,
    /// smux-rs through `smux-async-std`.
    SmuxAsyncStd,
    /// The crate `yamux` (rust-yamux) on tokio.
    Yamux,
    /// The crate `async_smux` on tokio.
    AsyncSmux,
}

/// The runtime a system runs on.
pub enum Rt {
    /// A multi-threaded tokio runtime (one worker per core).
    Tokio(tokio::runtime::Runtime),
    /// smol's global executor.
    Smol,
    /// async-std's executor.
    AsyncStd,
}

impl std::fmt::Debug for Rt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Rt::Tokio(_) => "tokio",
            Rt::Smol => "smol",
            Rt::AsyncStd => "async-std",
        })
    }
}

impl Rt {
    /// The runtime `system` runs on.
    pub fn for_system(system: System) -> io::Result<Self> {
        Ok(match system {
            System::SmuxSmol => Rt::Smol,
            System::SmuxAsyncStd => Rt::AsyncStd,
            _ => Rt::Tokio(
                tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .build()?,
            ),
        })
    }

    /// Runs `fut` to completion on this runtime.
    pub fn block_on<T>(&self, fut: impl std::future::Future<Output = T>) -> T {
        match self {
            Rt::Tokio(rt) => rt.block_on(fut),
            Rt::Smol => smol::block_on(fut),
            Rt::AsyncStd => async_std::task::block_on(fut),
        }
    }

    /// A spawner for this runtime.
    pub fn spawner(&self) -> Spawn {
        match self {
            Rt::Tokio(rt) => {
                let handle = rt.handle().clone();
                Arc::new(move |f: BoxFuture<()>| drop(handle.spawn(f)))
            }
            Rt::Smol => Arc::new(|f: BoxFuture<()>| smol::spawn(f).detach()),
            Rt::AsyncStd => Arc::new(|f: BoxFuture<()>| drop(async_std::task::spawn(f))),
        }
    }

    /// A tokio TCP stream from a std one (inside this tokio runtime).
    fn tokio_tcp(&self, conn: TcpStream) -> io::Result<tokio::net::TcpStream> {
        let Rt::Tokio(rt) = self else {
            return Err(io::Error::other("not a tokio runtime"));
        };
        let _context = rt.enter();
        conn.set_nonblocking(true)?;
        tokio::net::TcpStream::from_std(conn)
    }
}

fn smux_config(s: &Settings) -> io::Result<smux_core::Config> {
    smux_core::Config::builder()
        .version(s.version)
        .max_frame_size(s.frame)
        .max_stream_buffer(s.window)
        .max_receive_buffer(s.receive_buffer)
        .accept_backlog(16 * 1024)
        .build()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

fn yamux_config(s: &Settings) -> yamux::Config {
    let mut c = yamux::Config::default();
    // No connection-wide cap, so that 10 000 streams may each have the default window.
    c.set_max_connection_receive_window(None);
    c.set_max_num_streams(64 * 1024);
    c.set_split_send_size(s.frame);
    c
}

/// The configuration a system actually runs with, for the report.
pub fn describe(system: System, s: &Settings) -> String {
    let kib = |n: usize| n / 1024;
    match system {
        System::Raw => "one TCP connection per stream, TCP_NODELAY".into(),
        System::SmuxTokio | System::SmuxSmol | System::SmuxAsyncStd => format!(
            "v{}, frame {} KiB, stream window {} KiB, receive buffer {} KiB, keepalive 10 s",
            s.version,
            kib(s.frame),
            kib(s.window),
            kib(s.receive_buffer)
        ),
        System::Yamux => format!(
            "yamux 0.14, split send size {} KiB, window 256 KiB (auto-tuned upward), no connection cap",
            kib(s.frame)
        ),
        System::AsyncSmux => {
            "async_smux 0.4 (smux v1 only), frames up to 64 KiB (fixed), 1024-frame queues".into()
        }
    }
}

/// Connects a client of `system` to `addr`.
pub fn connect(
    rt: &Rt,
    system: System,
    settings: &Settings,
    addr: SocketAddr,
) -> io::Result<Arc<dyn Opener>> {
    let conn = || -> io::Result<TcpStream> {
        let c = TcpStream::connect(addr)?;
        c.set_nodelay(true)?;
        Ok(c)
    };
    Ok(match system {
        System::Raw => Arc::new(RawOpener(addr)),
        System::SmuxTokio => {
            let tcp = rt.tokio_tcp(conn()?)?;
            let Rt::Tokio(tokio_rt) = rt else {
                unreachable!()
            };
            let _context = tokio_rt.enter();
            let session =
                smux_tokio::client(tcp, smux_config(settings)?).map_err(io::Error::from)?;
            Arc::new(SmuxTokioOpener(session))
        }
        System::SmuxSmol => {
            let io = smol::Async::new(conn()?)?;
            Arc::new(SmuxOpener(
                smux_smol::client(io, smux_config(settings)?).map_err(io::Error::from)?,
            ))
        }
        System::SmuxAsyncStd => {
            let io = async_std::net::TcpStream::from(conn()?);
            Arc::new(SmuxOpener(
                smux_async_std::client(io, smux_config(settings)?).map_err(io::Error::from)?,
            ))
        }
        System::Yamux => {
            let io = rt.tokio_tcp(conn()?)?.compat();
            let c = yamux::Connection::new(io, yamux_config(settings), yamux::Mode::Client);
            let (tx, rx) = futures_channel::mpsc::unbounded();
            (rt.spawner())(Box::pin(drive_yamux(c, rx, None)));
            Arc::new(YamuxOpener(tx))
        }
        System::AsyncSmux => {
            let tcp = rt.tokio_tcp(conn()?)?;
            let (connector, acceptor, worker) = async_smux::MuxBuilder::client()
                .with_connection(tcp)
                .build();
            (rt.spawner())(Box::pin(worker.map(drop)));
            Arc::new(AsyncSmuxOpener(connector, std::sync::Mutex::new(acceptor)))
        }
    })
}

struct RawOpener(SocketAddr);

impl Opener for RawOpener {
    fn open(&self) -> BoxFuture<io::Result<BoxConn>> {
        let addr = self.0;
        Box::pin(async move {
            let c = tokio::net::TcpStream::connect(addr).await?;
            c.set_nodelay(true)?;
            Ok(Box::new(c.compat()) as BoxConn)
        })
    }
}

struct SmuxTokioOpener(smux_tokio::Session);

impl Opener for SmuxTokioOpener {
    fn open(&self) -> BoxFuture<io::Result<BoxConn>> {
        let session = self.0.clone();
        Box::pin(async move {
            let s = session.open_stream().await?;
            Ok(Box::new(s.compat()) as BoxConn)
        })
    }
}

struct SmuxOpener(smux_core::Session);

impl Opener for SmuxOpener {
    fn open(&self) -> BoxFuture<io::Result<BoxConn>> {
        let session = self.0.clone();
        Box::pin(async move { Ok(Box::new(session.open_stream().await?) as BoxConn) })
    }
}

type YamuxRequest = futures_channel::oneshot::Sender<io::Result<yamux::Stream>>;

struct YamuxOpener(futures_channel::mpsc::UnboundedSender<YamuxRequest>);

impl Opener for YamuxOpener {
    fn open(&self) -> BoxFuture<io::Result<BoxConn>> {
        let (tx, rx) = futures_channel::oneshot::channel();
        let sent = self.0.unbounded_send(tx);
        Box::pin(async move {
            sent.map_err(|_| io::Error::from(io::ErrorKind::NotConnected))?;
            let s = rx
                .await
                .map_err(|_| io::Error::from(io::ErrorKind::NotConnected))??;
            Ok(Box::new(s) as BoxConn)
        })
    }
}

/// rust-yamux's `Connection` must be polled from one task: this task opens streams on
/// request and hands inbound ones to `serve` (or drops them).
async fn drive_yamux<T>(
    mut conn: yamux::Connection<T>,
    mut requests: futures_channel::mpsc::UnboundedReceiver<YamuxRequest>,
    serve: Option<(Spawn, AllocCount)>,
) where
    T: futures_util::AsyncRead + futures_util::AsyncWrite + Unpin,
{
    let mut pending: Option<YamuxRequest> = None;
    let mut requests_open = true;
    std::future::poll_fn(|cx| {
        loop {
            if pending.is_none() && requests_open {
                match requests.poll_next_unpin(cx) {
                    Poll::Ready(Some(r)) => pending = Some(r),
                    Poll::Ready(None) => requests_open = false,
                    Poll::Pending => {}
                }
            }
            let Some(req) = pending.take() else { break };
            match conn.poll_new_outbound(cx) {
                Poll::Ready(r) => drop(req.send(r.map_err(io::Error::other))),
                Poll::Pending => {
                    pending = Some(req);
                    break;
                }
            }
        }
        loop {
            match conn.poll_next_inbound(cx) {
                Poll::Ready(Some(Ok(stream))) => {
                    if let Some((spawn, allocs)) = &serve {
                        let allocs = *allocs;
                        spawn(Box::pin(serve_stream(stream, allocs).map(drop)));
                    }
                }
                Poll::Ready(Some(Err(_)) | None) => return Poll::Ready(()),
                Poll::Pending => return Poll::Pending,
            }
        }
    })
    .await;
}

struct AsyncSmuxOpener(
    async_smux::MuxConnector<tokio::net::TcpStream>,
    // Held so that the session lives; nothing is accepted on the client side.
    #[allow(dead_code)] std::sync::Mutex<async_smux::MuxAcceptor<tokio::net::TcpStream>>,
);

impl Opener for AsyncSmuxOpener {
    fn open(&self) -> BoxFuture<io::Result<BoxConn>> {
        let s = self.0.connect().map_err(io::Error::other);
        Box::pin(async move { Ok(Box::new(s?.compat()) as BoxConn) })
    }
}

/// Serves every connection on `listener` as a server session of `system`, forever.
pub fn serve(
    rt: &Rt,
    system: System,
    settings: &Settings,
    listener: TcpListener,
    allocs: AllocCount,
) -> io::Result<()> {
    let spawn = rt.spawner();
    let served =
        move |spawn: &Spawn, s: BoxConn| spawn(Box::pin(serve_stream(s, allocs).map(drop)));
    loop {
        let (conn, _) = listener.accept()?;
        conn.set_nodelay(true)?;
        match system {
            System::Raw => served(&spawn, Box::new(rt.tokio_tcp(conn)?.compat())),
            System::SmuxTokio => {
                let Rt::Tokio(tokio_rt) = rt else {
                    unreachable!()
                };
                let tcp = rt.tokio_tcp(conn)?;
                let _context = tokio_rt.enter();
                let session =
                    smux_tokio::server(tcp, smux_config(settings)?).map_err(io::Error::from)?;
                let inner = spawn.clone();
                spawn(Box::pin(async move {
                    while let Ok(Some(s)) = session.accept_stream().await {
                        served(&inner, Box::new(s.compat()));
                    }
                }));
            }
            System::SmuxSmol | System::SmuxAsyncStd => {
                let config = smux_config(settings)?;
                let session = if system == System::SmuxSmol {
                    smux_smol::server(smol::Async::new(conn)?, config)
                } else {
                    smux_async_std::server(async_std::net::TcpStream::from(conn), config)
                }
                .map_err(io::Error::from)?;
                let inner = spawn.clone();
                spawn(Box::pin(async move {
                    while let Ok(Some(s)) = session.accept_stream().await {
                        served(&inner, Box::new(s));
                    }
                }));
            }
            System::Yamux => {
                let io = rt.tokio_tcp(conn)?.compat();
                let c = yamux::Connection::new(io, yamux_config(settings), yamux::Mode::Server);
                let (_tx, rx) = futures_channel::mpsc::unbounded();
                spawn(Box::pin(drive_yamux(c, rx, Some((spawn.clone(), allocs)))));
            }
            System::AsyncSmux => {
                let tcp = rt.tokio_tcp(conn)?;
                let (connector, mut acceptor, worker) = async_smux::MuxBuilder::server()
                    .with_connection(tcp)
                    .build();
                spawn(Box::pin(worker.map(drop)));
                let inner = spawn.clone();
                spawn(Box::pin(async move {
                    let _connector = connector;
                    while let Some(s) = acceptor.accept().await {
                        served(&inner, Box::new(s.compat()));
                    }
                }));
            }
        }
    }
}
