//! smux-rs over loopback TCP on tokio and smol: one stream with 128 KiB writes (the shape of
//! Go's BenchmarkConnSmux), 64-byte round trips, and stream open + accept + close.

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

fn config(version: u8) -> Config {
    Config::builder().version(version).build().unwrap()
}

/// A connected stream pair: (client's, server's).
fn stream_pair(rt: &impl Rt, client: &Session, server: &Session) -> (Stream, Stream) {
    rt.block_on(async {
        let mut c = client.open_stream().await.unwrap();
        c.write_all(b"x").await.unwrap();
        let mut s = server.accept_stream().await.unwrap();
        let mut one = [0u8; 1];
        s.read_exact(&mut one).await.unwrap();
        (c, s)
    })
}

fn bulk(c: &mut Criterion, rt: &impl Rt) {
    let mut g = c.benchmark_group(format!("loopback {}", rt.name()));
    g.throughput(Throughput::Bytes(PER_ITER as u64));
    g.measurement_time(Duration::from_secs(4));
    for version in [1u8, 2] {
        let (client, server) = rt.sessions(config(version));
        let (mut reader, mut writer) = stream_pair(rt, &client, &server);
        g.bench_function(
            BenchmarkId::new("one stream, 128 KiB writes", format!("v{version}")),
            |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let start = Instant::now();
                        for _ in 0..iters {
                            let chunk = vec![0u8; WRITE];
                            let mut buf = vec![0u8; WRITE];
                            let write = async {
                                for _ in 0..PER_ITER / WRITE {
                                    writer.write_all(&chunk).await.unwrap();
                                }
                            };
                            let read = async {
                                let mut got = 0;
                                while got < PER_ITER {
                                    got += reader.read(&mut buf).await.unwrap();
                                }
                            };
                            futures_util::future::join(write, read).await;
                        }
                        start.elapsed()
                    })
                })
            },
        );
    }
    let (client, server) = rt.sessions(config(1));
    let (mut a, mut b2) = stream_pair(rt, &client, &server);
    g.throughput(Throughput::Elements(1));
    g.bench_function("64-byte round trip", |b| {
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
    });
    g.bench_function("open + accept + close", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let mut s = client.open_stream().await.unwrap();
                    s.write_all(b"!").await.unwrap();
                    let accepted = server.accept_stream().await.unwrap();
                    drop((s, accepted));
                }
                start.elapsed()
            })
        })
    });
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
    bulk(c, &tokio);
    bulk(c, &Smol);
}

criterion_group!(benches, loopback);
criterion_main!(benches);
