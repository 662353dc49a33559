//! The conformance harness on smol.

use conformance::{BoxFuture, BoxIo, Harness, Transport};
use smux_core::runtime::Runtime;
use smux_smol::SmolRuntime;
use std::sync::Arc;
use std::time::Duration;

pub(crate) struct Smol;

pub(crate) fn harness() -> Arc<dyn Harness> {
    Arc::new(Smol)
}

impl Harness for Smol {
    fn block_on(&self, test: BoxFuture<()>) {
        smol::block_on(async {
            let limit = async {
                smol::Timer::after(Duration::from_secs(120)).await;
                panic!("test timed out after 120 s");
            };
            smol::future::or(test, limit).await
        })
    }

    fn runtime(&self) -> Arc<dyn Runtime> {
        Arc::new(SmolRuntime)
    }

    fn connect(&self, transport: Transport) -> BoxFuture<(BoxIo, BoxIo)> {
        Box::pin(async move {
            match transport {
                Transport::Tcp => {
                    let (a, b) = conformance::tcp_pair();
                    let wrap = |s| smol::Async::new(s).expect("register with the reactor");
                    (Box::new(wrap(a)) as BoxIo, Box::new(wrap(b)) as BoxIo)
                }
                Transport::Memory => conformance::memory_pipe(256 * 1024),
                Transport::Unix => {
                    let (a, b) = smol::net::unix::UnixStream::pair().unwrap();
                    (Box::new(a) as BoxIo, Box::new(b) as BoxIo)
                }
            }
        })
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<()> {
        Box::pin(async move {
            smol::Timer::after(duration).await;
        })
    }
}
