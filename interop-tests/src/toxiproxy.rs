//! A harness for toxiproxy (`github.com/Shopify/toxiproxy/v2`, built by
//! `interop-tests/toxiproxy/build.sh`): a TCP proxy that delays, slices, throttles, black-holes,
//! truncates and resets connections in user space, driven over its HTTP API.
//!
//! [`Toxiproxy::start`] runs `toxiproxy-server -host 127.0.0.1 -port P` as a child process
//! (killed on drop) on a free port and waits for its API; [`Toxiproxy::proxy`] creates a proxy
//! that listens on a free loopback port; [`Proxy::add`], [`Proxy::update`] and
//! [`Proxy::remove`] manage its toxics. The HTTP client is a few lines of HTTP/1.1 over a
//! blocking [`TcpStream`] (one request per connection), so call it from a blocking thread
//! (`tokio::task::spawn_blocking`) inside an async test: toxiproxy answers a toxic change only
//! once every connection of the proxy has taken it.
//!
//! Toxiproxy's behaviour that the tests rely on (v2.5.0):
//! * a toxic added to a proxy applies to its open connections at once, from their next chunk;
//! * `reset_peer` sets `SO_LINGER` 0 (a real RST) only on connections that start while it is
//!   in the chain: add it with toxicity 0 before connecting and [`Proxy::update`] its
//!   toxicity to 1 to reset mid-transfer;
//! * `timeout` drops what it reads (the sender's writes never block) and, when removed,
//!   closes the connection; the end of one direction closes both.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The direction a toxic acts on, as toxiproxy names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the client (the proxy's listener) to the upstream server.
    Upstream,
    /// From the upstream server to the client.
    Downstream,
}

impl Direction {
    /// Toxiproxy's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Upstream => "upstream",
            Direction::Downstream => "downstream",
        }
    }
}

/// A toxic's type and attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Each chunk delayed by `latency` ± `jitter` milliseconds.
    Latency {
        /// Milliseconds.
        latency_ms: u64,
        /// Milliseconds either way.
        jitter_ms: u64,
    },
    /// At most `rate_kb` KB (1000 bytes) per second, in pieces every 100 ms.
    Bandwidth {
        /// KB per second.
        rate_kb: u64,
    },
    /// Every chunk cut into pieces of about `average_size` ± `size_variation` bytes, each
    /// `delay_us` microseconds after the last.
    Slicer {
        /// Bytes.
        average_size: u64,
        /// Bytes either way (less than `average_size`).
        size_variation: u64,
        /// Microseconds between pieces.
        delay_us: u64,
    },
    /// The connection reset (RST where linger is set, see the module docs) `timeout_ms` after
    /// the next chunk; that chunk and later ones are dropped.
    ResetPeer {
        /// Milliseconds.
        timeout_ms: u64,
    },
    /// The connection closed after `bytes` more bytes.
    LimitData {
        /// Bytes.
        bytes: u64,
    },
    /// Nothing passes (what arrives is dropped); the connection is closed after `timeout_ms`,
    /// or never with 0: a black hole.
    Timeout {
        /// Milliseconds; 0: never.
        timeout_ms: u64,
    },
}

impl Kind {
    /// Toxiproxy's type name.
    pub fn type_name(&self) -> &'static str {
        match self {
            Kind::Latency { .. } => "latency",
            Kind::Bandwidth { .. } => "bandwidth",
            Kind::Slicer { .. } => "slicer",
            Kind::ResetPeer { .. } => "reset_peer",
            Kind::LimitData { .. } => "limit_data",
            Kind::Timeout { .. } => "timeout",
        }
    }

    /// The `attributes` object, as JSON.
    pub fn attributes(&self) -> String {
        match *self {
            Kind::Latency {
                latency_ms,
                jitter_ms,
            } => format!(r#"{{"latency":{latency_ms},"jitter":{jitter_ms}}}"#),
            Kind::Bandwidth { rate_kb } => format!(r#"{{"rate":{rate_kb}}}"#),
            Kind::Slicer {
                average_size,
                size_variation,
                delay_us,
            } => format!(
                r#"{{"average_size":{average_size},"size_variation":{size_variation},"delay":{delay_us}}}"#
            ),
            Kind::ResetPeer { timeout_ms } | Kind::Timeout { timeout_ms } => {
                format!(r#"{{"timeout":{timeout_ms}}}"#)
            }
            Kind::LimitData { bytes } => format!(r#"{{"bytes":{bytes}}}"#),
        }
    }
}

/// A toxic to add to a proxy.
#[derive(Debug, Clone, PartialEq)]
pub struct Toxic {
    /// Its name, unique in the proxy.
    pub name: String,
    /// What it does.
    pub kind: Kind,
    /// Which direction.
    pub stream: Direction,
    /// The share of connections it applies to, 0.0..=1.0 (drawn per connection, and again
    /// on each update).
    pub toxicity: f32,
}

impl Toxic {
    /// A toxic on every connection (toxicity 1).
    pub fn new(name: impl Into<String>, kind: Kind, stream: Direction) -> Self {
        Self {
            name: name.into(),
            kind,
            stream,
            toxicity: 1.0,
        }
    }

    /// The same with another toxicity.
    pub fn toxicity(mut self, toxicity: f32) -> Self {
        self.toxicity = toxicity;
        self
    }

    fn json(&self) -> String {
        format!(
            r#"{{"name":"{}","type":"{}","stream":"{}","toxicity":{},"attributes":{}}}"#,
            self.name,
            self.kind.type_name(),
            self.stream.as_str(),
            self.toxicity,
            self.kind.attributes()
        )
    }
}

/// Where `build.sh` puts the server binary.
pub fn default_binary() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("toxiproxy/bin/toxiproxy-server")
}

/// Whether `CI=true`: then a missing tool fails the tests instead of skipping them.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The toxiproxy server binary, built once by `build.sh` if it is missing and Go is
/// installed; `None` (after a message saying why) to skip. Panics under `CI=true` instead of
/// skipping.
pub fn binary() -> Option<PathBuf> {
    static FOUND: OnceLock<Option<PathBuf>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            let bin = default_binary();
            if bin.exists() {
                return Some(bin);
            }
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("toxiproxy/build.sh");
            if Command::new("go").arg("version").output().is_err() {
                assert!(
                    !in_ci(),
                    "CI=true but {} is missing and Go is not installed: the fault tests must run in CI",
                    bin.display()
                );
                eprintln!(
                    "SKIPPED: the fault tests need toxiproxy: install Go and run `bash {}`",
                    script.display()
                );
                return None;
            }
            let status = Command::new("bash")
                .arg(&script)
                .status()
                .expect("run interop-tests/toxiproxy/build.sh");
            assert!(
                status.success() && bin.exists(),
                "building toxiproxy failed ({})",
                script.display()
            );
            Some(bin)
        })
        .clone()
}

/// A free loopback port (free when this returns; another process may take it before use).
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A running toxiproxy server, killed on drop.
#[derive(Debug)]
pub struct Toxiproxy {
    child: Child,
    api: SocketAddr,
}

impl Toxiproxy {
    /// Starts the server built by `build.sh`, or `None` to skip (see [`binary`]).
    pub fn start() -> Option<Self> {
        let bin = binary()?;
        Some(Self::start_with(&bin).unwrap_or_else(|e| panic!("start {}: {e}", bin.display())))
    }

    /// Starts `bin` on a free loopback port and waits (at most 10 s) until its API answers.
    /// Its log goes to the file named by `SMUX_TOXIPROXY_LOG`, or nowhere.
    pub fn start_with(bin: &Path) -> io::Result<Self> {
        let mut last_err = None;
        for _ in 0..5 {
            let port = free_port()?;
            let log = match std::env::var_os("SMUX_TOXIPROXY_LOG") {
                Some(path) => Stdio::from(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)?,
                ),
                None => Stdio::null(),
            };
            let child = Command::new(bin)
                .args([
                    "-host",
                    "127.0.0.1",
                    "-port",
                    &port.to_string(),
                    "-seed",
                    "1",
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()?;
            let mut server = Self {
                child,
                api: SocketAddr::from(([127, 0, 0, 1], port)),
            };
            match server.wait_ready(Duration::from_secs(10)) {
                Ok(()) => return Ok(server),
                Err(e) => last_err = Some(e), // the port was taken meanwhile: try another
            }
        }
        Err(last_err.expect("tried at least once"))
    }

    fn wait_ready(&mut self, limit: Duration) -> io::Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(io::Error::other(format!(
                    "toxiproxy-server exited at start: {status}"
                )));
            }
            if let Ok((200, _)) = request(self.api, "GET", "/version", None) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "toxiproxy's API did not answer in time",
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The address of its HTTP API.
    pub fn api(&self) -> SocketAddr {
        self.api
    }

    /// A handle on its API, to share between threads.
    pub fn client(&self) -> Client {
        Client { api: self.api }
    }

    /// Creates a proxy: see [`Client::proxy`].
    pub fn proxy(&self, name: &str, upstream: SocketAddr) -> io::Result<Proxy> {
        self.client().proxy(name, upstream)
    }
}

impl Drop for Toxiproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The API of a running [`Toxiproxy`] (it does not keep the server running).
#[derive(Debug, Clone, Copy)]
pub struct Client {
    api: SocketAddr,
}

impl Client {
    /// Creates a proxy `name` that listens on a free loopback port and forwards to `upstream`.
    pub fn proxy(&self, name: &str, upstream: SocketAddr) -> io::Result<Proxy> {
        let body = format!(
            r#"{{"name":"{name}","listen":"127.0.0.1:0","upstream":"{upstream}","enabled":true}}"#
        );
        let reply = expect(request(self.api, "POST", "/proxies", Some(&body)), 201)?;
        let listen = json_string(&reply, "listen")
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::other(format!("no listen address in {reply:?}")))?;
        Ok(Proxy {
            api: self.api,
            name: name.to_string(),
            listen,
        })
    }
}

/// A proxy of a running [`Toxiproxy`].
#[derive(Debug, Clone)]
pub struct Proxy {
    api: SocketAddr,
    name: String,
    /// Where it listens: connect here instead of to the upstream.
    pub listen: SocketAddr,
}

impl Proxy {
    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds a toxic; it applies to open connections at once.
    pub fn add(&self, toxic: &Toxic) -> io::Result<()> {
        let path = format!("/proxies/{}/toxics", self.name);
        expect(request(self.api, "POST", &path, Some(&toxic.json())), 200).map(drop)
    }

    /// Changes a toxic's toxicity (and its attributes, if given).
    pub fn update(&self, name: &str, toxicity: f32, kind: Option<Kind>) -> io::Result<()> {
        let path = format!("/proxies/{}/toxics/{name}", self.name);
        let body = match kind {
            Some(kind) => format!(
                r#"{{"toxicity":{toxicity},"attributes":{}}}"#,
                kind.attributes()
            ),
            None => format!(r#"{{"toxicity":{toxicity}}}"#),
        };
        expect(request(self.api, "POST", &path, Some(&body)), 200).map(drop)
    }

    /// Removes a toxic.
    pub fn remove(&self, name: &str) -> io::Result<()> {
        let path = format!("/proxies/{}/toxics/{name}", self.name);
        expect(request(self.api, "DELETE", &path, None), 204).map(drop)
    }

    /// Deletes the proxy, closing its connections.
    pub fn delete(&self) -> io::Result<()> {
        let path = format!("/proxies/{}", self.name);
        expect(request(self.api, "DELETE", &path, None), 204).map(drop)
    }
}

/// `Ok(body)` if the status is `want`, else an error with what toxiproxy said.
fn expect(reply: io::Result<(u16, String)>, want: u16) -> io::Result<String> {
    match reply? {
        (status, body) if status == want => Ok(body),
        (status, body) => Err(io::Error::other(format!(
            "toxiproxy answered {status}: {}",
            body.trim()
        ))),
    }
}

/// The string value of `"key":"..."` in a flat JSON object (toxiproxy's values here need
/// no unescaping).
fn json_string(json: &str, key: &str) -> Option<String> {
    let start = json.find(&format!("\"{key}\":\""))? + key.len() + 4;
    let len = json[start..].find('"')?;
    Some(json[start..start + len].to_string())
}

/// One HTTP/1.1 request (`Connection: close`); returns the status and the body.
pub fn request(
    api: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> io::Result<(u16, String)> {
    let mut conn = TcpStream::connect_timeout(&api, Duration::from_secs(2))?;
    conn.set_read_timeout(Some(Duration::from_secs(20)))?;
    conn.set_write_timeout(Some(Duration::from_secs(5)))?;
    let body = body.unwrap_or("");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {api}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes())?;
    conn.write_all(body.as_bytes())?;
    let mut reader = BufReader::new(conn);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| io::Error::other(format!("bad status line {line:?}")))?;
    let mut chunked = false;
    let mut length = None;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse::<usize>().ok();
        } else if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
            chunked = true;
        }
    }
    let mut out = Vec::new();
    if chunked {
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| io::Error::other(format!("bad chunk size {line:?}")))?;
            if size == 0 {
                break;
            }
            let mut chunk = vec![0; size + 2]; // and its CRLF
            reader.read_exact(&mut chunk)?;
            out.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(n) = length {
        out.resize(n, 0);
        reader.read_exact(&mut out)?;
    } else {
        reader.read_to_end(&mut out)?;
    }
    Ok((status, String::from_utf8_lossy(&out).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toxics_as_json() {
        let t = Toxic::new(
            "cut",
            Kind::Slicer {
                average_size: 8,
                size_variation: 4,
                delay_us: 0,
            },
            Direction::Upstream,
        );
        assert_eq!(
            t.json(),
            r#"{"name":"cut","type":"slicer","stream":"upstream","toxicity":1,"attributes":{"average_size":8,"size_variation":4,"delay":0}}"#
        );
        let t = Toxic::new(
            "r",
            Kind::ResetPeer { timeout_ms: 0 },
            Direction::Downstream,
        )
        .toxicity(0.0);
        assert!(t.json().contains(r#""toxicity":0,"#), "{}", t.json());
        assert_eq!(
            json_string(r#"{"name":"p","listen":"127.0.0.1:4567","x":1}"#, "listen").as_deref(),
            Some("127.0.0.1:4567")
        );
    }
}
