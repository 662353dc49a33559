//! The lock the handles and the driver share: nothing foreign runs under it, and a lock
//! poisoned by a panic ends the session with a typed error instead of carrying on.

use crate::error::{CloseReason, Error};
use crate::runtime::{BoxFuture, Runtime, Timer};
use crate::{Config, Role, Session, Stream};
use futures_io::{AsyncRead, AsyncWrite};
use std::future::Future;
use std::io;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

/// A runtime for a driver polled by hand: no spawning, timers that never fire.
#[derive(Debug)]
struct ByHand;

#[derive(Debug)]
struct Never;

impl Timer for Never {
    fn reset(self: Pin<&mut Self>, _deadline: Instant) {}
    fn poll_expired(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}

impl Runtime for ByHand {
    fn spawn(&self, _task: BoxFuture) {
        unreachable!("the test polls the driver itself");
    }
    fn timer(&self, _deadline: Instant) -> Pin<Box<dyn Timer>> {
        Box::pin(Never)
    }
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A connection that takes every write and never has anything to read.
#[derive(Debug)]
struct Sink;

impl AsyncRead for Sink {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Pending
    }
}

impl AsyncWrite for Sink {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fn session() -> (Session, crate::Driver<Sink>) {
    let config = Config::builder().enable_keep_alive(false).build().unwrap();
    Session::new(Sink, Role::Client, config, Arc::new(ByHand))
}

fn poll_once<F: Future>(future: F, waker: &Waker) -> Poll<F::Output> {
    pin!(future).poll(&mut Context::from_waker(waker))
}

fn open(session: &Session) -> Stream {
    match poll_once(session.open_stream(), Waker::noop()) {
        Poll::Ready(stream) => stream.unwrap(),
        Poll::Pending => unreachable!("open never waits"),
    }
}

/// A waker that uses the session when woken, as a task woken on another thread would.
struct UsesSession {
    session: Session,
    woken: AtomicBool,
}

impl Wake for UsesSession {
    fn wake(self: Arc<Self>) {
        let _ = self.session.stats();
        self.woken.store(true, Ordering::SeqCst);
    }
}

/// A write wakes the driver after the lock is released: a waker that takes the session's
/// lock itself (a task run at once by its executor) must not deadlock.
#[test]
fn wakers_run_after_the_lock_is_released() {
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let (session, driver) = session();
        let mut driver = pin!(driver);
        let mut stream = open(&session);
        let waker = Arc::new(UsesSession {
            session: session.clone(),
            woken: AtomicBool::new(false),
        });
        let driver_waker = Waker::from(waker.clone());
        assert!(driver
            .as_mut()
            .poll(&mut Context::from_waker(&driver_waker))
            .is_pending());
        let mut cx = Context::from_waker(Waker::noop());
        assert!(matches!(
            stream.poll_write(&mut cx, b"hello"),
            Poll::Ready(Ok(5))
        ));
        done.send(waker.woken.load(Ordering::SeqCst)).unwrap();
    });
    match finished.recv_timeout(Duration::from_secs(10)) {
        Ok(woken) => assert!(woken, "the write woke the driver"),
        Err(_) => panic!("deadlock: the driver's waker was woken under the session lock"),
    }
}

/// A panic while the lock is held (a bug in smux-rs) poisons it: the session then ends
/// with `CloseReason::Poisoned`, every call reports it, and the driver finishes.
#[test]
fn a_poisoned_lock_ends_the_session() {
    let (session, driver) = session();
    let mut driver = pin!(driver);
    let mut stream = open(&session);
    let shared = session.shared.clone();
    let panicked = std::thread::spawn(move || {
        let _locked = shared.lock();
        panic!("a bug inside the lock");
    })
    .join();
    assert!(panicked.is_err());
    assert_eq!(session.close_reason(), Some(CloseReason::Poisoned));
    let mut cx = Context::from_waker(Waker::noop());
    let Poll::Ready(Err(e)) = stream.poll_write(&mut cx, b"x") else {
        panic!("a write on a poisoned session succeeded");
    };
    let inner = e.get_ref().and_then(|e| e.downcast_ref::<Error>());
    assert!(
        matches!(inner, Some(Error::Closed(CloseReason::Poisoned))),
        "{e}"
    );
    assert!(
        driver.as_mut().poll(&mut cx).is_ready(),
        "the driver finishes"
    );
    assert!(matches!(
        poll_once(session.open_stream(), Waker::noop()),
        Poll::Ready(Err(Error::Closed(CloseReason::Poisoned)))
    ));
}
