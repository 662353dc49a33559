//! Two engines joined by in-memory byte pipes on a simulated clock.

use crate::proto::{Engine, Event, Role, StreamId, Transmit};
use crate::{Config, StreamError};
use bytes::{Buf, BytesMut};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// One end: its engine, what it received but has not consumed, and what it was told.
#[derive(Debug)]
pub(crate) struct Side {
    pub(crate) engine: Engine,
    /// Bytes that arrived and the engine did not take yet.
    pub(crate) inbox: BytesMut,
    /// Every event the engine reported, oldest first (the tests clear it).
    pub(crate) events: Vec<Event>,
    out: Transmit,
}

impl Side {
    fn new(role: Role, config: Config, now: Instant) -> Self {
        Self {
            engine: Engine::new(role, config, now),
            inbox: BytesMut::new(),
            events: Vec::new(),
            out: Transmit::new(),
        }
    }

    /// Reads everything buffered on `id` now.
    pub(crate) fn read_available(&mut self, id: StreamId) -> Result<Vec<u8>, StreamError> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match self.engine.read(id, &mut buf) {
                Ok(0) => return Ok(out),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(StreamError::Blocked) => return Ok(out),
                Err(e) if out.is_empty() => return Err(e),
                Err(_) => return Ok(out),
            }
        }
    }

    /// Whether `id` reports end of stream now (after all data was read).
    pub(crate) fn at_eof(&mut self, id: StreamId) -> bool {
        matches!(self.engine.read(id, &mut [0u8; 1]), Ok(0))
    }

    /// Writes as much of `data` as fits; returns how much.
    pub(crate) fn write_some(&mut self, id: StreamId, data: &[u8]) -> usize {
        match self.engine.write(id, data) {
            Ok(n) => n,
            Err(StreamError::Blocked) => 0,
            Err(e) => panic!("write on {id}: {e}"),
        }
    }

    pub(crate) fn accept(&mut self) -> Option<StreamId> {
        self.engine.accept().expect("session open")
    }
}

/// One direction of the connection: bytes in flight, each with its arrival time.
#[derive(Debug, Default)]
struct Pipe {
    queue: VecDeque<(Instant, Vec<u8>)>,
    bytes: usize,
    /// With a link rate: when the link has sent everything handed to it so far.
    free_at: Option<Instant>,
}

/// Two engines, a client and a server, joined by pipes.
#[derive(Debug)]
pub(crate) struct Pair {
    pub(crate) now: Instant,
    pub(crate) client: Side,
    pub(crate) server: Side,
    to_server: Pipe,
    to_client: Pipe,
    /// Most bytes handed to an engine's input per step.
    pub(crate) chunk: usize,
    /// Most bytes in flight per direction (the "socket buffer"); writers wait beyond it.
    pub(crate) capacity: usize,
    /// One-way delay.
    pub(crate) latency: Duration,
    /// Link rate per direction in bytes per second (`None`: infinite). With a latency it
    /// makes a bandwidth-delay product; bytes queue at the link's entrance, up to
    /// `capacity` waiting there (the latency's bytes in flight not counted).
    pub(crate) rate: Option<u64>,
    /// Whether the client / server reads its connection (false: the peer's writes back up).
    pub(crate) client_reads: bool,
    pub(crate) server_reads: bool,
    /// Steps taken, for livelock detection.
    pub(crate) steps: u64,
}

impl Pair {
    pub(crate) fn new(client: Config, server: Config) -> Self {
        let now = Instant::now();
        Self {
            now,
            client: Side::new(Role::Client, client, now),
            server: Side::new(Role::Server, server, now),
            to_server: Pipe::default(),
            to_client: Pipe::default(),
            chunk: usize::MAX,
            capacity: 1 << 20,
            latency: Duration::ZERO,
            rate: None,
            client_reads: true,
            server_reads: true,
            steps: 0,
        }
    }

    /// Both sides with the same config.
    pub(crate) fn with(config: Config) -> Self {
        Self::new(config.clone(), config)
    }

    /// Default config of the given version, keepalive off so that the clock stays put.
    pub(crate) fn version(v: u8) -> Self {
        Self::with(quiet(v).build().unwrap())
    }

    /// Moves bytes one round: both sides transmit into their pipes, both take what arrived.
    /// Returns whether anything moved.
    pub(crate) fn step(&mut self) -> bool {
        self.steps += 1;
        let now = self.now;
        let mut progress = false;
        for (side, pipe) in [
            (&mut self.client, &mut self.to_server),
            (&mut self.server, &mut self.to_client),
        ] {
            let link = Link {
                now,
                latency: self.latency,
                rate: self.rate,
                capacity: self.capacity,
            };
            progress |= transmit(side, pipe, &link);
        }
        for (side, pipe, reads) in [
            (&mut self.server, &mut self.to_server, self.server_reads),
            (&mut self.client, &mut self.to_client, self.client_reads),
        ] {
            if reads {
                progress |= receive(side, pipe, now, self.chunk);
            }
            while let Some(e) = side.engine.poll_event() {
                side.events.push(e);
            }
            side.engine.assert_invariants();
        }
        progress
    }

    /// Steps until nothing moves without the clock advancing.
    pub(crate) fn drive(&mut self) {
        self.drive_bounded(1_000_000);
    }

    /// [`drive`](Self::drive), but fails the test after `max_steps`.
    pub(crate) fn drive_bounded(&mut self, max_steps: u64) {
        let start = self.steps;
        while self.step() {
            assert!(
                self.steps - start < max_steps,
                "no quiescence after {max_steps} steps"
            );
        }
    }

    /// Steps, calling `app` after each step, until neither moves anything. `app` returns
    /// whether it made progress.
    /// Drives the pair while the client writes `data` on `c` for as long as any of it is
    /// taken; returns how many bytes were.
    pub(crate) fn client_writes(&mut self, c: StreamId, data: &[u8]) -> usize {
        let mut sent = 0;
        self.drive_app(|p| {
            let n = p.client.write_some(c, &data[sent..]);
            sent += n;
            n > 0
        });
        sent
    }

    pub(crate) fn drive_app(&mut self, mut app: impl FnMut(&mut Pair) -> bool) {
        let start = self.steps;
        loop {
            let moved = self.step();
            let acted = app(self);
            if !moved && !acted {
                break;
            }
            assert!(self.steps - start < 10_000_000, "livelock");
        }
    }

    /// The next time something is due: a timer of either engine or a pipe arrival.
    /// Bytes already arrived but not taken (a side not reading) don't count: only the clock
    /// moving can change something.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        let arrival = |pipe: &Pipe| pipe.queue.front().map(|f| f.0).filter(|&t| t > self.now);
        [
            self.client.engine.poll_timeout(),
            self.server.engine.poll_timeout(),
            arrival(&self.to_server),
            arrival(&self.to_client),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs the simulated clock forward to `until`, firing every timer on the way.
    pub(crate) fn advance_to(&mut self, until: Instant) {
        self.drive();
        while let Some(due) = self.next_due().filter(|&t| t <= until) {
            self.now = self.now.max(due);
            let now = self.now;
            for side in [&mut self.client, &mut self.server] {
                if side.engine.poll_timeout().is_some_and(|t| t <= now) {
                    side.engine.handle_timeout(now);
                }
            }
            self.drive();
        }
        self.now = self.now.max(until);
    }

    /// [`advance_to`](Self::advance_to) `now + by`.
    pub(crate) fn advance(&mut self, by: Duration) {
        self.advance_to(self.now + by);
    }
}

/// The test config: keepalive off so only latency moves the clock.
pub(crate) fn quiet(version: u8) -> crate::ConfigBuilder {
    Config::builder().version(version).enable_keep_alive(false)
}

/// One direction's link, as [`transmit`] sees it this step.
struct Link {
    now: Instant,
    latency: Duration,
    rate: Option<u64>,
    capacity: usize,
}

/// The most bytes one transmit puts on a rate-limited link at once, so that arrivals
/// spread over time as a real link's packets do.
const LINK_CHUNK: usize = 16 * 1024;

fn transmit(side: &mut Side, pipe: &mut Pipe, link: &Link) -> bool {
    let mut room = link.capacity.saturating_sub(pipe.bytes);
    if let Some(rate) = link.rate {
        // The capacity is the queue at the link's entrance (a socket buffer); bytes on the
        // wire, in their latency, are the path's, not the queue's.
        let backlog = pipe.free_at.map_or(0, |t| {
            (t.saturating_duration_since(link.now).as_nanos() * u128::from(rate) / 1_000_000_000)
                as usize
        });
        room = link.capacity.saturating_sub(backlog).min(LINK_CHUNK);
    }
    if room == 0 {
        return false;
    }
    let _ = side.engine.poll_transmit(link.now, &mut side.out, room);
    let n = side.out.len().min(room);
    if n == 0 {
        return false;
    }
    let mut bytes = vec![0u8; n];
    side.out.copy_to_slice(&mut bytes);
    pipe.bytes += n;
    let sent = match link.rate {
        None => link.now,
        Some(rate) => {
            let start = pipe.free_at.map_or(link.now, |t| t.max(link.now));
            let done = start + Duration::from_nanos(n as u64 * 1_000_000_000 / rate);
            pipe.free_at = Some(done);
            done
        }
    };
    pipe.queue.push_back((sent + link.latency, bytes));
    true
}

fn receive(side: &mut Side, pipe: &mut Pipe, now: Instant, chunk: usize) -> bool {
    let mut progress = false;
    let mut budget = chunk;
    // The inbox stands for the kernel's receive buffer: bounded, whatever the chunk.
    while budget > 0 && side.inbox.len() < 1 << 20 {
        let Some((at, bytes)) = pipe.queue.front_mut() else {
            break;
        };
        if *at > now {
            break;
        }
        let take = bytes.len().min(budget);
        side.inbox.extend_from_slice(&bytes[..take]);
        bytes.drain(..take);
        pipe.bytes -= take;
        budget -= take;
        if bytes.is_empty() {
            pipe.queue.pop_front();
        }
        progress = true;
    }
    if side.engine.wants_input() && !side.inbox.is_empty() {
        let used = side.engine.handle_input(now, &side.inbox);
        side.inbox.advance(used);
        progress |= used > 0;
    }
    progress
}

pub(crate) use test_rng::Rng;
