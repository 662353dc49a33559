//! Property tests: any chunking and interleaving delivers every byte once and in order, the
//! memory bound holds at every step, and arbitrary input never panics.

use super::pair::{quiet, Pair, Rng};
use crate::proto::{Engine, Role, StreamId};
use crate::StreamError;
use bytes::BytesMut;
use proptest::prelude::*;
use std::time::{Duration, Instant};

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn every_byte_arrives_once_in_order(
        version in 1u8..=2,
        seed in any::<u64>(),
        streams in 1usize..6,
        chunk in prop_oneof![Just(1usize), 2usize..64, 64usize..70_000],
        capacity in 1usize..200_000,
        latency_ms in 0u64..3,
        frame in prop_oneof![Just(1usize), 2usize..1000, Just(65535)],
        rx_buffer in 70_000usize..300_000,
        stream_buffer in 1usize..70_000,
        send_buffer in 1usize..100_000,
    ) {
        let config = quiet(version)
            .max_frame_size(frame)
            .max_receive_buffer(rx_buffer)
            .max_stream_buffer(stream_buffer.min(rx_buffer))
            .max_stream_send_buffer(send_buffer)
            .build()
            .unwrap();
        let mut pair = Pair::with(config);
        pair.chunk = chunk;
        pair.capacity = capacity;
        pair.latency = Duration::from_millis(latency_ms);
        let mut rng = Rng::new(seed);
        let data: Vec<Vec<u8>> = (0..streams).map(|_| {
            let len = rng.range(0, 30_000);
            rng.bytes(len)
        }).collect();
        // Streams opened from both sides, alternating.
        let mut plan = Vec::new();
        for i in 0..streams {
            let from_client = i % 2 == 0;
            let id = if from_client { pair.client.engine.open() } else { pair.server.engine.open() };
            plan.push((from_client, id.unwrap()));
        }
        let mut sent = vec![0usize; streams];
        let mut finished = vec![false; streams];
        let mut got: Vec<Vec<u8>> = vec![Vec::new(); streams];
        let mut eof = vec![false; streams];
        let mut accepted: Vec<Option<StreamId>> = vec![None; streams];
        let mut t = 0u64;
        loop {
            let mut acted = false;
            for i in 0..streams {
                let (from_client, id) = plan[i];
                let writer = if from_client { &mut pair.client } else { &mut pair.server };
                if sent[i] < data[i].len() {
                    let len = rng.range(1, 20_000).min(data[i].len() - sent[i]);
                    let w = writer.write_some(id, &data[i][sent[i]..sent[i] + len]);
                    sent[i] += w;
                    acted |= w > 0;
                } else if !finished[i] {
                    writer.engine.finish(id).unwrap();
                    finished[i] = true;
                    acted = true;
                }
            }
            for side_is_client in [false, true] {
                let side = if side_is_client { &mut pair.client } else { &mut pair.server };
                while let Some(id) = side.accept() {
                    let i = plan.iter().position(|&(fc, pid)| fc != side_is_client && pid == id).unwrap();
                    accepted[i] = Some(id);
                    acted = true;
                }
            }
            for i in 0..streams {
                let Some(id) = accepted[i] else { continue };
                if eof[i] { continue }
                let reader = if plan[i].0 { &mut pair.server } else { &mut pair.client };
                // Read in random sizes, sometimes not at all (a slow reader).
                if rng.range(0, 3) == 0 { continue }
                let mut buf = vec![0u8; rng.range(1, 30_000)];
                match reader.engine.read(id, &mut buf) {
                    Ok(0) => { eof[i] = true; acted = true; }
                    Ok(n) => { got[i].extend_from_slice(&buf[..n]); acted = true; }
                    Err(StreamError::Blocked) => {}
                    Err(e) => panic!("read: {e}"),
                }
            }
            let moved = pair.step();
            if !moved && !acted {
                if eof.iter().all(|&e| e) { break; }
                // Only latency can be pending: move the clock on.
                t += 1;
                pair.advance(Duration::from_millis(1));
                prop_assert!(t < 100_000, "stuck");
            }
        }
        for i in 0..streams {
            prop_assert_eq!(got[i].len(), data[i].len());
            prop_assert!(got[i] == data[i], "stream {} content", i);
        }
        prop_assert!(!pair.client.engine.is_closed());
        prop_assert!(!pair.server.engine.is_closed());
    }

    #[test]
    fn arbitrary_input_never_panics(
        version in 1u8..=2,
        client in any::<bool>(),
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..20),
        valid_prefix in any::<bool>(),
    ) {
        let now = Instant::now();
        let role = if client { Role::Client } else { Role::Server };
        let config = quiet(version).max_receive_buffer(1000).max_stream_buffer(100).accept_backlog(2).build().unwrap();
        let mut e = Engine::new(role, config, now);
        let mut inbox = BytesMut::new();
        if valid_prefix {
            // Start from a plausible stream so that PSH/FIN/UPD hit a live sid.
            inbox.extend_from_slice(&[version, 0, 0, 0, 3, 0, 0, 0]);
        }
        let mut out = crate::proto::Transmit::new();
        for c in chunks {
            inbox.extend_from_slice(&c);
            let used = e.handle_input(now, &inbox);
            prop_assert!(used <= inbox.len());
            bytes::Buf::advance(&mut inbox, used);
            e.assert_invariants();
            let _ = e.poll_transmit(now, &mut out, usize::MAX);
            while e.poll_event().is_some() {}
            if let Ok(Some(id)) = e.accept() {
                let _ = e.read(id, &mut [0; 64]);
                let _ = e.write(id, b"reply");
            }
            e.assert_invariants();
        }
    }
}
