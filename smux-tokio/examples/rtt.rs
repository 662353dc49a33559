//! Round-trip latency of a 64-byte echo over one smux stream, next to raw TCP in the same
//! runtime, on a current-thread runtime and on multi-thread runtimes with 1 and 2 workers.
//! The multi-thread figures show what cross-thread wake-ups cost on the machine (raw TCP
//! pays them too), the current-thread ones what smux itself adds.
//!
//! `cargo run --release -p smux-tokio --example rtt`
use smux_tokio::{client, server, Config};
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn main() {
    for threads in [0usize, 1, 2] {
        let rt = if threads == 0 {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
        } else {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .enable_all()
                .build()
                .unwrap()
        };
        rt.block_on(async {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = l.local_addr().unwrap();
            let (a, b) = tokio::join!(tokio::net::TcpStream::connect(addr), l.accept());
            let (a, b) = (a.unwrap(), b.unwrap().0);
            a.set_nodelay(true).unwrap();
            b.set_nodelay(true).unwrap();
            let c = client(a, Config::default()).unwrap();
            let s = server(b, Config::default()).unwrap();
            tokio::spawn(async move {
                let mut st = s.accept_stream().await.unwrap().expect("a stream");
                let mut buf = [0u8; 64];
                loop {
                    if st.read_exact(&mut buf).await.is_err() {
                        break;
                    }
                    st.write_all(&buf).await.unwrap();
                }
            });
            let mut st = c.open_stream().await.unwrap();
            let mut buf = [0u8; 64];
            let n = 5000;
            let t = Instant::now();
            for _ in 0..n {
                st.write_all(&buf.clone()).await.unwrap();
                st.read_exact(&mut buf).await.unwrap();
            }
            println!("workers {threads}: rtt {:?}", t.elapsed() / n);
            // raw TCP for reference
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = l.local_addr().unwrap();
            let (a, b) = tokio::join!(tokio::net::TcpStream::connect(addr), l.accept());
            let (mut a, mut b) = (a.unwrap(), b.unwrap().0);
            a.set_nodelay(true).unwrap();
            b.set_nodelay(true).unwrap();
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                loop {
                    if b.read_exact(&mut buf).await.is_err() {
                        break;
                    }
                    b.write_all(&buf).await.unwrap();
                }
            });
            let t = Instant::now();
            for _ in 0..n {
                a.write_all(&buf.clone()).await.unwrap();
                a.read_exact(&mut buf).await.unwrap();
            }
            println!("workers {threads}: raw tcp rtt {:?}", t.elapsed() / n);
        });
    }
}
