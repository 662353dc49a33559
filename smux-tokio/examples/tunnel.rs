//! A port-forwarding tunnel, the kcptun shape: many TCP connections carried as streams of
//! one smux session between two tunnel ends, over TCP or KCP (`--kcp`, the crate
//! `tokio_kcp`: KCP on UDP, as kcptun does).
//!
//! ```text
//! app clients -> [client :LOCALADDR] == one smux session over TCP or KCP ==
//!                [server :LISTEN] -> target :TARGET
//! ```
//!
//! With no command it runs a self-contained demonstration on loopback: a target echo
//! server, both tunnel ends, and 50 app connections through the tunnel at once.
//!
//! ```text
//! cargo run -p smux-tokio --example tunnel               # the demonstration, over TCP
//! cargo run -p smux-tokio --example tunnel -- --kcp      # the same over KCP
//! cargo run -p smux-tokio --example tunnel -- --help     # the flags and their defaults
//! ```
//!
//! As two processes, like kcptun's client and server (here with a target on :7000):
//!
//! ```text
//! cargo run -p smux-tokio --example tunnel -- server --kcp --listen 127.0.0.1:29900 \
//!     --target 127.0.0.1:7000
//! cargo run -p smux-tokio --example tunnel -- client --kcp --localaddr 127.0.0.1:12948 \
//!     --remoteaddr 127.0.0.1:29900
//! # apps now connect to 127.0.0.1:12948 and reach 127.0.0.1:7000
//! ```
//!
//! The flags are kcptun's, with kcptun's defaults: `--smuxver`, `--smuxbuf` (the session's
//! receive buffer), `--streambuf` (a stream's window, version 2), `--framesize`,
//! `--keepalive` (seconds) for smux; `--mode`, `--mtu`, `--sndwnd`, `--rcvwnd`, `--sockbuf`
//! for KCP. Both ends must use the same `--smuxver` (and `--kcp` or not). KCP runs in stream
//! mode, as kcptun sets it, without kcptun's encryption, FEC or compression: a plain
//! `tokio_kcp` peer, not a kcptun one.

use smux_tokio::{client, server, Config, Session};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_kcp::{KcpConfig, KcpListener, KcpNoDelayConfig, KcpStream};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const USAGE: &str = "\
tunnel: many TCP connections over one smux session, the kcptun shape

usage: tunnel [demo|client|server] [--kcp] [flags]
  demo (default)      both ends and a target echo server on loopback, 50 app connections
  client              accept apps on --localaddr, carry each over the session to --remoteaddr
  server              accept sessions on --listen, connect each stream to --target

  --kcp | --tcp       the tunnel's transport (default tcp)
  --localaddr ADDR    client: where apps connect (default 127.0.0.1:12948)
  --remoteaddr ADDR   client: the server end (default 127.0.0.1:29900)
  --listen ADDR       server: where client ends connect (default 127.0.0.1:29900)
  --target ADDR       server: where streams go (default 127.0.0.1:12948)
  --smuxver N         smux protocol version, 1 or 2 (default 2)
  --smuxbuf BYTES     the session's receive buffer (default 4194304)
  --streambuf BYTES   a stream's window, version 2 (default 2097152)
  --framesize BYTES   the largest frame sent (default 8192)
  --keepalive SECS    seconds between keepalives (default 10)
  --mode MODE         KCP: normal, fast, fast2 or fast3 (default fast)
  --mtu BYTES         KCP: the largest datagram (default 1350)
  --sndwnd N          KCP: send window in segments (default 128 client, 1024 server)
  --rcvwnd N          KCP: receive window in segments (default 512 client, 1024 server)
  --sockbuf BYTES     KCP: the UDP socket's buffers (default 4194304)
";

/// The command line.
#[derive(Debug, Clone)]
struct Args {
    command: String,
    kcp: bool,
    localaddr: String,
    remoteaddr: String,
    listen: String,
    target: String,
    smuxver: u8,
    smuxbuf: usize,
    streambuf: usize,
    framesize: usize,
    keepalive: u64,
    mode: String,
    mtu: usize,
    sndwnd: Option<u16>,
    rcvwnd: Option<u16>,
    sockbuf: usize,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        command: "demo".into(),
        kcp: false,
        localaddr: "127.0.0.1:12948".into(),
        remoteaddr: "127.0.0.1:29900".into(),
        listen: "127.0.0.1:29900".into(),
        target: "127.0.0.1:12948".into(),
        smuxver: 2,
        smuxbuf: 4194304,
        streambuf: 2097152,
        framesize: 8192,
        keepalive: 10,
        mode: "fast".into(),
        mtu: 1350,
        sndwnd: None,
        rcvwnd: None,
        sockbuf: 4194304,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        fn num<T: std::str::FromStr>(flag: &str, v: String) -> Result<T, String> {
            v.parse().map_err(|_| format!("{flag}: not a number: {v}"))
        }
        match flag.as_str() {
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            "demo" | "client" | "server" => a.command = flag,
            "--kcp" => a.kcp = true,
            "--tcp" => a.kcp = false,
            "--localaddr" => a.localaddr = value()?,
            "--remoteaddr" => a.remoteaddr = value()?,
            "--listen" => a.listen = value()?,
            "--target" => a.target = value()?,
            "--smuxver" => a.smuxver = num(&flag, value()?)?,
            "--smuxbuf" => a.smuxbuf = num(&flag, value()?)?,
            "--streambuf" => a.streambuf = num(&flag, value()?)?,
            "--framesize" => a.framesize = num(&flag, value()?)?,
            "--keepalive" => a.keepalive = num(&flag, value()?)?,
            "--mode" => a.mode = value()?,
            "--mtu" => a.mtu = num(&flag, value()?)?,
            "--sndwnd" => a.sndwnd = Some(num(&flag, value()?)?),
            "--rcvwnd" => a.rcvwnd = Some(num(&flag, value()?)?),
            "--sockbuf" => a.sockbuf = num(&flag, value()?)?,
            _ => return Err(format!("unknown argument: {flag}\n\n{USAGE}")),
        }
    }
    Ok(a)
}

/// The smux config from the flags (kcptun's `smuxConfig`).
fn smux_config(a: &Args) -> Result<Config, BoxError> {
    let mut config = Config::builder()
        .version(a.smuxver)
        .max_receive_buffer(a.smuxbuf)
        .max_stream_buffer(a.streambuf)
        .max_frame_size(a.framesize)
        .keep_alive_interval(Duration::from_secs(a.keepalive));
    if a.kcp {
        // Every write to a KCP stream is one `Kcp::send`, which takes at most 127 segments
        // of MTU - 24 bytes: more than the default cap (64 KiB) unless the MTU is under 540.
        config = config.max_write_size((127 * a.mtu.saturating_sub(24)).min(64 * 1024));
    }
    Ok(config.build()?)
}

/// The KCP config from the flags: kcptun's modes, in stream mode. `window` is the end's
/// default (send, receive) window.
fn kcp_config(a: &Args, window: (u16, u16)) -> Result<KcpConfig, BoxError> {
    let (nodelay, interval, resend, nc) = match a.mode.as_str() {
        "normal" => (false, 40, 2, true),
        "fast" => (false, 30, 2, true),
        "fast2" => (true, 20, 2, true),
        "fast3" => (true, 10, 2, true),
        mode => return Err(format!("unknown --mode {mode}").into()),
    };
    if a.mtu < 50 {
        return Err(format!("--mtu {} is under KCP's least, 50", a.mtu).into());
    }
    Ok(KcpConfig {
        mtu: a.mtu,
        nodelay: KcpNoDelayConfig {
            nodelay,
            interval,
            resend,
            nc,
        },
        wnd_size: (a.sndwnd.unwrap_or(window.0), a.rcvwnd.unwrap_or(window.1)),
        stream: true,
        ..KcpConfig::default()
    })
}

/// A UDP socket on `addr` with `--sockbuf` buffers (Linux's default, 208 KiB, overflows
/// under a full KCP window and drops datagrams).
fn udp_socket(a: &Args, addr: SocketAddr) -> Result<UdpSocket, BoxError> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, None)?;
    socket.set_recv_buffer_size(a.sockbuf)?;
    socket.set_send_buffer_size(a.sockbuf)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(UdpSocket::from_std(socket.into())?)
}

async fn lookup(addr: &str) -> Result<SocketAddr, BoxError> {
    let mut addrs = tokio::net::lookup_host(addr).await?;
    Ok(addrs.next().ok_or(format!("no address for {addr}"))?)
}

/// The client end's session to the server end at `remote`.
async fn dial(a: &Args, remote: SocketAddr) -> Result<Session, BoxError> {
    let config = smux_config(a)?;
    if a.kcp {
        let any = if remote.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        }
        .parse()?;
        let kcp = kcp_config(a, (128, 512))?;
        let conn = KcpStream::connect_with_socket(&kcp, udp_socket(a, any)?, remote).await?;
        Ok(client(conn, config)?)
    } else {
        let conn = TcpStream::connect(remote).await?;
        conn.set_nodelay(true)?;
        Ok(client(conn, config)?)
    }
}

/// The client end: each accepted app connection becomes a stream of the session; a
/// session that ended is dialled again (as kcptun does).
async fn entry(
    listener: TcpListener,
    mut session: Session,
    a: Args,
    remote: SocketAddr,
) -> Result<(), BoxError> {
    loop {
        let (mut conn, _) = listener.accept().await?;
        if session.is_closed() {
            session = dial(&a, remote).await?;
        }
        let mut stream = session.open_stream().await?;
        tokio::spawn(async move { tokio::io::copy_bidirectional(&mut conn, &mut stream).await });
    }
}

/// Where the server end accepts client ends' sessions.
enum Listener {
    Tcp(TcpListener),
    Kcp(KcpListener),
}

impl Listener {
    async fn bind(a: &Args, addr: SocketAddr) -> Result<Self, BoxError> {
        Ok(if a.kcp {
            let kcp = kcp_config(a, (1024, 1024))?;
            Listener::Kcp(KcpListener::from_socket(kcp, udp_socket(a, addr)?).await?)
        } else {
            Listener::Tcp(TcpListener::bind(addr).await?)
        })
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        match self {
            Listener::Tcp(l) => l.local_addr(),
            Listener::Kcp(l) => l.local_addr(),
        }
    }

    /// The next client end's session. (A KCP listener sees a client at its first datagram:
    /// the client's first stream.)
    async fn accept(&mut self, config: Config) -> Result<Session, BoxError> {
        Ok(match self {
            Listener::Tcp(l) => {
                let (conn, _) = l.accept().await?;
                conn.set_nodelay(true)?;
                server(conn, config)?
            }
            Listener::Kcp(l) => server(l.accept().await?.0, config)?,
        })
    }
}

/// The server end: each stream of each session becomes a connection to the target.
async fn exit(mut listener: Listener, config: Config, target: SocketAddr) -> Result<(), BoxError> {
    loop {
        let session = listener.accept(config.clone()).await?;
        tokio::spawn(async move {
            while let Ok(Some(mut stream)) = session.accept_stream().await {
                tokio::spawn(async move {
                    let mut conn = TcpStream::connect(target).await?;
                    tokio::io::copy_bidirectional(&mut stream, &mut conn).await
                });
            }
        });
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let a = parse().unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    let transport = if a.kcp { "KCP" } else { "TCP" };
    match a.command.as_str() {
        "client" => {
            let listener = TcpListener::bind(&a.localaddr).await?;
            let remote = lookup(&a.remoteaddr).await?;
            let session = dial(&a, remote).await?;
            println!(
                "client: {} -> smux over {transport} -> {remote}",
                listener.local_addr()?
            );
            entry(listener, session, a, remote).await
        }
        "server" => {
            let listener = Listener::bind(&a, lookup(&a.listen).await?).await?;
            let target = lookup(&a.target).await?;
            println!(
                "server: smux over {transport} on {} -> {target}",
                listener.local_addr()?
            );
            exit(listener, smux_config(&a)?, target).await
        }
        _ => demo(a).await,
    }
}

async fn demo(a: Args) -> Result<(), BoxError> {
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

    // Both tunnel ends.
    let listener = Listener::bind(&a, "127.0.0.1:0".parse()?).await?;
    let tunnel_addr = listener.local_addr()?;
    tokio::spawn(exit(listener, smux_config(&a)?, target_addr));
    let local = TcpListener::bind("127.0.0.1:0").await?;
    let local_addr = local.local_addr()?;
    let session = dial(&a, tunnel_addr).await?;
    tokio::spawn(entry(local, session.clone(), a.clone(), tunnel_addr));
    let transport = if a.kcp { "KCP" } else { "TCP" };
    println!("tunnel: {local_addr} -> smux over {transport} {tunnel_addr} -> {target_addr}");

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
        "50 connections carried over one smux session: {} payload bytes each way",
        session.stats().bytes_out
    );
    Ok(())
}
