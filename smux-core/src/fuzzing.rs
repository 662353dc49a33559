//! Fuzz harnesses: the bodies of the cargo-fuzz targets in `fuzz/`, kept here so that
//! `cargo test` replays the stored corpus through exactly the same code. Each takes raw
//! bytes, must never panic, and checks the engine's invariants and memory bound as it goes.

use crate::frame::{Frame, Version, WindowUpdate};
use crate::proto::{Engine, Role, StreamId, Transmit};
use crate::Config;
use arbitrary::{Arbitrary, Unstructured};
use bytes::Buf;
use std::time::{Duration, Instant};

/// Decodes arbitrary bytes as a frame of either version; whatever decodes must re-encode to
/// the same bytes, and decoding never reads past the input.
pub fn frame_decode(data: &[u8]) {
    for version in [Version::V1, Version::V2] {
        if let Ok(Some((frame, used))) = Frame::decode(data, version) {
            assert!(used <= data.len());
            let mut again = Vec::new();
            frame
                .encode(version, &mut again)
                .expect("a decoded frame encodes");
            assert_eq!(&again[..], &data[..used]);
        }
    }
}

fn small_config(v2: bool) -> Config {
    Config::builder()
        .version(if v2 { 2 } else { 1 })
        .max_receive_buffer(8192)
        .max_stream_buffer(2048)
        .max_stream_send_buffer(4096)
        .accept_backlog(4)
        .max_streams(16)
        .keep_alive_interval(Duration::from_millis(100))
        .keep_alive_timeout(Duration::from_millis(300))
        .build()
        .expect("valid")
}

/// Feeds arbitrary peer bytes to an engine (the first byte picks the role, the version and
/// the chunk size), reading what it accepts, transmitting and keeping time.
pub fn session_input(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let role = if flags & 1 == 0 {
        Role::Client
    } else {
        Role::Server
    };
    let chunk = 1 + usize::from(flags >> 2) * 11;
    let mut now = Instant::now();
    let mut engine = Engine::new(role, small_config(flags & 2 != 0), now);
    let mut inbox = Vec::new();
    let mut out = Transmit::new();
    let mut accepted = Vec::new();
    let mut buf = [0u8; 512];
    for piece in rest.chunks(chunk) {
        inbox.extend_from_slice(piece);
        let used = engine.handle_input(now, &inbox);
        assert!(used <= inbox.len());
        inbox.drain(..used);
        engine.assert_invariants();
        while let Ok(Some(id)) = engine.accept() {
            accepted.push(id);
        }
        for &id in &accepted {
            let _ = engine.read(id, &mut buf);
            let _ = engine.write(id, b"reply");
        }
        let _ = engine.poll_transmit(now, &mut out, 1 << 16);
        out.advance(out.len());
        while engine.poll_event().is_some() {}
        now += Duration::from_millis(7);
        if engine.poll_timeout().is_some_and(|t| t <= now) {
            engine.handle_timeout(now);
        }
        engine.assert_invariants();
    }
}

/// A frame the fuzzer makes the peer send.
#[derive(Debug, Arbitrary)]
enum PeerFrame {
    Syn(u8),
    Fin(u8),
    Psh(u8, u16),
    Nop,
    Upd(u8, u32, u32),
    Raw(Vec<u8>),
}

/// One step of a stream_ops run.
#[derive(Debug, Arbitrary)]
enum Op {
    Open,
    Accept,
    Write(u8, u16),
    Read(u8, u16),
    ReadChunk(u8, u16),
    Finish(u8),
    CloseStream(u8),
    StopReading(u8),
    Flushed(u8),
    Peer(PeerFrame),
    Transmit(u16),
    Tick(u16),
    Eof,
    Close,
    Shutdown,
    /// Frames queued but not written yet: they stay in flight across later operations.
    TransmitHeld(u16),
    /// Part of the queued frames written.
    Written(u16),
}

/// Arbitrary sequences of API calls interleaved with peer frames, on both versions and
/// roles, checking the invariants after every step.
pub fn stream_ops(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let (Ok(v2), Ok(server)) = (bool::arbitrary(&mut u), bool::arbitrary(&mut u)) else {
        return;
    };
    let Ok(ops) = Vec::<Op>::arbitrary(&mut u) else {
        return;
    };
    let version = if v2 { Version::V2 } else { Version::V1 };
    let role = if server { Role::Server } else { Role::Client };
    let mut now = Instant::now();
    let mut engine = Engine::new(role, small_config(v2), now);
    let mut streams: Vec<StreamId> = Vec::new();
    let mut out = Transmit::new();
    let mut pending = Vec::new();
    let pick = |streams: &[StreamId], i: u8| {
        if streams.is_empty() {
            StreamId(u32::from(i))
        } else {
            streams[usize::from(i) % streams.len()]
        }
    };
    let mut buf = vec![0u8; 70_000];
    for op in ops {
        match op {
            Op::Open => {
                if let Ok(id) = engine.open() {
                    streams.push(id);
                }
            }
            Op::Accept => {
                if let Ok(Some(id)) = engine.accept() {
                    streams.push(id);
                }
            }
            Op::Write(i, len) => {
                let _ = engine.write(pick(&streams, i), &buf[..usize::from(len)]);
            }
            Op::Read(i, len) => {
                let _ = engine.read(pick(&streams, i), &mut buf[..usize::from(len)]);
            }
            Op::ReadChunk(i, len) => {
                let _ = engine.read_chunk(pick(&streams, i), usize::from(len));
            }
            Op::Finish(i) => {
                let _ = engine.finish(pick(&streams, i));
            }
            Op::CloseStream(i) => engine.close_stream(pick(&streams, i)),
            Op::StopReading(i) => engine.stop_reading(pick(&streams, i)),
            Op::Flushed(i) => {
                let _ = engine.poll_flushed(pick(&streams, i));
            }
            Op::Peer(frame) => {
                let frame = match frame {
                    PeerFrame::Syn(s) => Frame::Syn { sid: s.into() },
                    PeerFrame::Fin(s) => Frame::Fin { sid: s.into() },
                    PeerFrame::Psh(s, len) => Frame::Psh {
                        sid: s.into(),
                        data: vec![0xA5; usize::from(len)].into(),
                    },
                    PeerFrame::Nop => Frame::Nop { sid: 0 },
                    PeerFrame::Upd(s, consumed, window) => Frame::Upd {
                        sid: s.into(),
                        update: WindowUpdate { consumed, window },
                    },
                    PeerFrame::Raw(bytes) => {
                        pending.extend_from_slice(&bytes);
                        Frame::Nop { sid: 0 }
                    }
                };
                // UPD cannot be encoded on version 1; send what can be.
                let _ = frame.encode(version, &mut pending);
                let used = engine.handle_input(now, &pending);
                pending.drain(..used);
            }
            Op::Transmit(max) => {
                let _ = engine.poll_transmit(now, &mut out, usize::from(max));
                out.advance(out.len());
            }
            Op::TransmitHeld(max) => {
                let _ = engine.poll_transmit(now, &mut out, usize::from(max));
            }
            Op::Written(n) => {
                let n = usize::from(n).min(out.len());
                out.advance(n);
            }
            Op::Tick(ms) => {
                now += Duration::from_millis(u64::from(ms));
                if engine.poll_timeout().is_some_and(|t| t <= now) {
                    engine.handle_timeout(now);
                }
            }
            Op::Eof => engine.handle_eof(0),
            Op::Close => engine.close(now),
            Op::Shutdown => engine.shutdown(now),
        }
        while engine.poll_event().is_some() {}
        engine.assert_invariants();
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Replays every input stored under `fuzz/corpus/<target>/`.
    fn replay(target: &str, run: fn(&[u8])) -> usize {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/corpus")
            .join(target);
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            run(&std::fs::read(&path).unwrap());
            n += 1;
        }
        n
    }

    #[test]
    fn corpus_replays_clean() {
        assert!(replay("frame_decode", super::frame_decode) > 0);
        assert!(replay("session_input", super::session_input) > 0);
        assert!(replay("stream_ops", super::stream_ops) > 0);
    }
}
