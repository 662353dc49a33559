//! The conformance harness on tokio.

use conformance::{BoxFuture, BoxIo, Harness, Transport};
use smux_core::runtime::Runtime;
use smux_tokio::TokioRuntime;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::compat::TokioAsyncReadCompatExt;

/// A multi-threaded tokio runtime on both cores.
pub(crate) struct Tokio {
    rt: tokio::runtime::Runtime,
}

pub(crate) fn harness() -> Arc<dyn Harness> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    Arc::new(Tokio { rt })
}

impl Harness for Tokio {
    fn block_on(&self, test: BoxFuture<()>) {
        // Tests that hang fail instead.
        self.rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(120), test)
                .await
                .expect("test timed out after 120 s")
        });
    }

    fn runtime(&self) -> Arc<dyn Runtime> {
        Arc::new(TokioRuntime::from(self.rt.handle().clone()))
    }

    fn connect(&self, transport: Transport) -> BoxFuture<(BoxIo, BoxIo)> {
        Box::pin(async move {
            match transport {
                Transport::Tcp => {
                    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                    let addr = listener.local_addr().unwrap();
                    let (a, b) =
                        tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
                    let (a, b) = (a.unwrap(), b.unwrap().0);
                    a.set_nodelay(true).unwrap();
                    b.set_nodelay(true).unwrap();
                    (Box::new(a.compat()) as BoxIo, Box::new(b.compat()) as BoxIo)
                }
                Transport::Memory => {
                    let (a, b) = tokio::io::duplex(256 * 1024);
                    (Box::new(a.compat()) as BoxIo, Box::new(b.compat()) as BoxIo)
                }
                Transport::Unix => {
                    let (a, b) = tokio::net::UnixStream::pair().unwrap();
                    (Box::new(a.compat()) as BoxIo, Box::new(b.compat()) as BoxIo)
                }
            }
        })
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<()> {
        Box::pin(tokio::time::sleep(duration))
    }
}
