//! Bytes that move in the same driver poll in which a deadline fires count before the
//! deadline is judged: a frame that arrived in time keeps a session alive past its
//! keepalive timeout, and a connection that took our bytes in time is no write stall.
//! That happens for real when the process was paused longer than a timeout (a suspended
//! laptop, a stalled virtual machine): on waking, the peer's data and the expired timer are
//! both there. Driven by hand on a simulated clock, so nothing here waits or can hang.

use futures_io::{AsyncRead, AsyncWrite};
use smux_core::frame::{Frame, Version};
use smux_core::runtime::{BoxFuture, Runtime, Timer};
use smux_core::{Config, Role, Session};
use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// The simulated clock, shared by the runtime and its timers.
#[derive(Debug, Clone)]
struct Clock(Arc<Mutex<Instant>>);

impl Clock {
    fn now(&self) -> Instant {
        *self.0.lock().unwrap()
    }
    fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

#[derive(Debug)]
struct ClockTimer {
    clock: Clock,
    deadline: Instant,
}

impl Timer for ClockTimer {
    fn reset(mut self: Pin<&mut Self>, deadline: Instant) {
        self.deadline = deadline;
    }
    fn poll_expired(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        // The test moves the clock and polls the driver itself: no waker is kept.
        if self.clock.now() >= self.deadline {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Runtime for Clock {
    fn spawn(&self, _task: BoxFuture) {
        unreachable!("the test polls the driver itself");
    }
    fn timer(&self, deadline: Instant) -> Pin<Box<dyn Timer>> {
        Box::pin(ClockTimer {
            clock: self.clone(),
            deadline,
        })
    }
    fn now(&self) -> Instant {
        Clock::now(self)
    }
}

/// A connection whose input the test supplies and whose writes it can hold back.
#[derive(Debug, Default)]
struct Wire {
    input: Vec<u8>,
    written: usize,
    writes_blocked: bool,
}

#[derive(Debug, Clone, Default)]
struct Conn(Arc<Mutex<Wire>>);

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut wire = self.0.lock().unwrap();
        if wire.input.is_empty() {
            return Poll::Pending;
        }
        let n = buf.len().min(wire.input.len());
        buf[..n].copy_from_slice(&wire.input[..n]);
        wire.input.drain(..n);
        Poll::Ready(Ok(n))
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut wire = self.0.lock().unwrap();
        if wire.writes_blocked {
            return Poll::Pending;
        }
        let n: usize = bufs.iter().map(|b| b.len()).sum();
        wire.written += n;
        Poll::Ready(Ok(n))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Polls the driver until it stops waking itself (a bounded number of times).
fn run(driver: &mut Pin<Box<impl Future<Output = ()>>>) {
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..100 {
        if driver.as_mut().poll(&mut cx).is_ready() {
            return;
        }
    }
}

fn start(config: Config, conn: &Conn) -> (Session, Clock, Pin<Box<impl Future<Output = ()>>>) {
    let clock = Clock(Arc::new(Mutex::new(Instant::now())));
    let (session, driver) =
        Session::new(conn.clone(), Role::Client, config, Arc::new(clock.clone()));
    let mut driver = Box::pin(driver);
    run(&mut driver);
    (session, clock, driver)
}

#[test]
fn a_frame_that_arrived_in_time_keeps_the_session() {
    let timeout = Duration::from_secs(3);
    let config = Config::builder()
        .version(1)
        .keep_alive_interval(timeout)
        .keep_alive_timeout(timeout)
        .build()
        .unwrap();
    let conn = Conn::default();
    let (session, clock, mut driver) = start(config, &conn);
    // The peer's NOP comes just as the timeout runs out, and the driver gets to run only
    // then: it finds the frame and the expired timer in the same poll.
    clock.advance(timeout);
    Frame::Nop { sid: 0 }
        .encode(Version::V1, &mut conn.0.lock().unwrap().input)
        .unwrap();
    run(&mut driver);
    assert_eq!(session.close_reason(), None, "a live peer was timed out");
    // Silence for a whole timeout after that frame still ends the session.
    clock.advance(timeout);
    run(&mut driver);
    assert!(session.close_reason().is_some(), "a silent peer was kept");
}

#[test]
fn a_connection_that_took_our_bytes_in_time_is_no_write_stall() {
    let timeout = Duration::from_secs(5);
    let config = Config::builder()
        .version(1)
        .enable_keep_alive(false)
        .write_timeout(timeout)
        .build()
        .unwrap();
    let conn = Conn::default();
    conn.0.lock().unwrap().writes_blocked = true;
    let (session, clock, mut driver) = start(config, &conn);
    let mut stream = match Pin::new(&mut Box::pin(session.open_stream()))
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(stream) => stream.unwrap(),
        Poll::Pending => unreachable!("open never waits"),
    };
    let mut cx = Context::from_waker(Waker::noop());
    assert!(matches!(
        stream.poll_write(&mut cx, &[1u8; 1000]),
        Poll::Ready(Ok(1000))
    ));
    run(&mut driver);
    assert_eq!(conn.0.lock().unwrap().written, 0);
    // The connection takes everything just as the write timeout runs out.
    clock.advance(timeout);
    conn.0.lock().unwrap().writes_blocked = false;
    run(&mut driver);
    assert!(conn.0.lock().unwrap().written > 1000, "the frames went out");
    assert_eq!(
        session.close_reason(),
        None,
        "a connection that wrote was a stall"
    );
}
