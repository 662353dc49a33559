//! The conformance harness on async-std.

use conformance::{BoxFuture, BoxIo, Harness, Transport};
use smux_async_std::AsyncStdRuntime;
use smux_core::runtime::Runtime;
use std::sync::Arc;
use std::time::Duration;

pub(crate) struct AsyncStd;

pub(crate) fn harness() -> Arc<dyn Harness> {
    Arc::new(AsyncStd)
}

impl Harness for AsyncStd {
    fn block_on(&self, test: BoxFuture<()>) {
        async_std::task::block_on(async {
            async_std::future::timeout(Duration::from_secs(120), test)
                .await
                .expect("test timed out after 120 s")
        })
    }

    fn runtime(&self) -> Arc<dyn Runtime> {
        Arc::new(AsyncStdRuntime)
    }

    fn connect(&self, transport: Transport) -> BoxFuture<(BoxIo, BoxIo)> {
        Box::pin(async move {
            match transport {
                Transport::Tcp => {
                    let (a, b) = conformance::tcp_pair();
                    let wrap = async_std::net::TcpStream::from;
                    (Box::new(wrap(a)) as BoxIo, Box::new(wrap(b)) as BoxIo)
                }
                Transport::Memory => conformance::memory_pipe(256 * 1024),
                Transport::Unix => {
                    let (a, b) = async_std::os::unix::net::UnixStream::pair().unwrap();
                    (Box::new(a) as BoxIo, Box::new(b) as BoxIo)
                }
            }
        })
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<()> {
        Box::pin(async_std::task::sleep(duration))
    }
}
