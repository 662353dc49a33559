//! smux-rs over loopback TCP on tokio, smol and async-std, versions 1 and 2: one stream
//! with 128 KiB writes (the shape of Go's BenchmarkConnSmux), 16 and 256 parallel streams,
//! 64-byte round trips, and stream open + accept + close. The side-by-side comparison with
//! other multiplexers is `cargo run --release -p benches --bin compare`.

// criterion_group! defines an undocumented public function.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use futures_util::io::{AsyncReadExt, AsyncWriteExt};
use smux_core::{Config, Session, Stream};
use std::future::Future;
use std::time::{Duration, Instant};

const WRITE: usize = 128 * 1024;
const PER_ITER: usize = 64 * WRITE; // 8 MiB per iteration

/// The runtime-specific part: a runtime, a connected pair of sessions, and `block_on`.
trait Rt {
    fn name(&self) -> &'static str;
    fn block_on<T>(&self, fut: impl Future<Output = T>) -> T;
    fn sessions(&self, config: Config) -> (Session, Session);
}

struct Tokio(tokio::runtime::Runtime);

impl Rt for Tokio {
    fn name(&self) -> &'static str {
        "tokio"
    }
    fn block_on<T>(&self, fut: impl Future<Output = T>) -> T {
        self.0.block_on(fut)
    }
    fn sessions(&self, config: Config) -> (Session, Session) {
        self.0.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (a, b) = tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
            let (a, b) = (a.unwrap(), b.unwrap().0);
            a.set_nodelay(true).unwrap();
            b.set_nodelay(true).unwrap();
            let client = smux_tokio::client(a, config.clone()).unwrap();
            let server = smux_tokio::server(b, config).unwrap();
            (client.as_core().clone(), server.as_core().clone())
        })
    }
}

struct Smol;

impl Rt for Smol {
    fn name(&self) -> &'static str {
        "smol"
    }
    fn block_on<T>(&self, fut: impl Future<Output = T>) -> T {
        smol::block_on(fut)
    }
    fn sessions(&self, config: Config) -> (Session, Session) {
        smol::block_on(async {
            let listener = smol::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (a, b) =
                smol::future::zip(smol::net::TcpStream::connect(addr), listener.accept()).await;
            let (a, b) = (a.unwrap(), b.unwrap().0);
            a.set_nodelay(true).unwrap();
            b.set_nodelay(true).unwrap();
            (
                smux_smol::client(a, config.clone()).unwrap(),
                smux_smol::server(b, config).unwrap(),
            )
        })
    }
}

struct AsyncStd;

impl Rt for AsyncStd {
    fn name(&self) -> &'static str {
        "async-std"
    }
    fn block_on<T>(&self, fut: impl Future<Output = T>) -> T {
        async_std::task::block_on(fut)
    }
    fn sessions(&self, config: Config) -> (Session, Session) {
        async_std::task::block_on(async {
            let listener = async_std::net::TcpListener::bind("127.0.0.1:0")
                .await
                .unwrap();
            let addr = listener.local_addr().unwrap();
            let (a, b) = futures_util::future::join(
                async_std::net::TcpStream::connect(addr),
                listener.accept(),
            )
            .await;
            let (a, b) = (a.unwrap(), b.unwrap().0);
            a.set_nodelay(true).unwrap();
            b.set_nodelay(true).unwrap();
            (
                smux_async_std::client(a, config.clone()).unwrap(),
                smux_async_std::server(b, config).unwrap(),
            )
        })
    }
}

fn config(version: u8) -> Config {
    Config::builder().version(version).build().unwrap()
}

/// A connected stream pair: (client's, server's).
fn stream_pair(rt: &impl Rt, client: &Session, server: &Session) -> (Stream, Stream) {
    rt.block_on(async {
        let mut c = client.open_stream().await.unwrap();
        c.write_all(b"x").await.unwrap();
        let mut s = server.accept_stream().await.unwrap().expect("a stream");
        let mut one = [0u8; 1];
        s.read_exact(&mut one).await.unwrap();
        (c, s)
    })
}

/// Moves `PER_ITER` bytes over `pairs`, split evenly, all streams at once.
async fn transfer(pairs: &mut [(Stream, Stream)]) {
    let per_stream = PER_ITER / pairs.len();
    let chunk = vec![0u8; WRITE.min(per_stream)];
    let moves = pairs.iter_mut().map(|(writer, reader)| {
        let chunk = &chunk;
        async move {
            let mut buf = vec![0u8; WRITE];
            let write = async {
                let mut sent = 0;
                while sent < per_stream {
                    writer.write_all(chunk).await.unwrap();
                    sent += chunk.len();
                }
            };
            let read = async {
                let mut got = 0;
                while got < per_stream {
                    got += reader.read(&mut buf).await.unwrap();
                }
            };
            futures_util::future::join(write, read).await;
        }
    });
    futures_util::future::join_all(moves).await;
}

fn loopback_on(c: &mut Criterion, rt: &impl Rt) {
    let mut g = c.benchmark_group(format!("loopback {}", rt.name()));
    g.measurement_time(Duration::from_secs(4));
    for version in [1u8, 2] {
        let (client, server) = rt.sessions(config(version));
        g.throughput(Throughput::Bytes(PER_ITER as u64));
        for streams in [1usize, 16, 256] {
            let mut pairs: Vec<(Stream, Stream)> = (0..streams)
                .map(|_| stream_pair(rt, &client, &server))
                .collect();
            let name = if streams == 1 {
                "one stream, 128 KiB writes".to_string()
            } else {
                format!("{streams} parallel streams")
            };
            g.bench_function(BenchmarkId::new(name, format!("v{version}")), |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let start = Instant::now();
                        for _ in 0..iters {
                            transfer(&mut pairs).await;
                        }
                        start.elapsed()
                    })
                })
            });
        }
        let (mut a, mut b2) = stream_pair(rt, &client, &server);
        g.throughput(Throughput::Elements(1));
        g.bench_function(
            BenchmarkId::new("64-byte round trip", format!("v{version}")),
            |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let msg = [5u8; 64];
                        let mut buf = [0u8; 64];
                        let start = Instant::now();
                        for _ in 0..iters {
                            a.write_all(&msg).await.unwrap();
                            b2.read_exact(&mut buf).await.unwrap();
                            b2.write_all(&buf).await.unwrap();
                            a.read_exact(&mut buf).await.unwrap();
                        }
                        start.elapsed()
                    })
                })
            },
        );
        g.bench_function(
            BenchmarkId::new("open + accept + close", format!("v{version}")),
            |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let start = Instant::now();
                        for _ in 0..iters {
                            let mut s = client.open_stream().await.unwrap();
                            s.write_all(b"!").await.unwrap();
                            let accepted = server.accept_stream().await.unwrap().expect("a stream");
                            drop((s, accepted));
                        }
                        start.elapsed()
                    })
                })
            },
        );
    }
    g.finish();
}

fn loopback(c: &mut Criterion) {
    let tokio = Tokio(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap(),
    );
    loopback_on(c, &tokio);
    loopback_on(c, &Smol);
    loopback_on(c, &AsyncStd);
}

criterion_group!(benches, loopback);
criterion_main!(benches);
