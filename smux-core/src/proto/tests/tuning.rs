//! Version-2 window tuning on the simulated clock, over a link with a rate and a latency:
//! the window grows to the bandwidth-delay product and no further, not for a slow reader,
//! and only from budget no other stream was promised.

use super::pair::{quiet, Pair};
use crate::proto::StreamId;
use std::time::{Duration, Instant};

const RTT: Duration = Duration::from_millis(100);
/// 20 MB/s, each way.
const RATE: u64 = 20_000_000;
/// The bandwidth-delay product: 2 MB.
const BDP: u64 = RATE / 10;

fn link(tuning: bool) -> Pair {
    let config = quiet(2).window_tuning(tuning).build().unwrap();
    let mut pair = Pair::with(config);
    pair.latency = RTT / 2;
    pair.rate = Some(RATE);
    pair.capacity = 256 * 1024; // a modest socket buffer: a short queue at the link
    pair
}

fn open(pair: &mut Pair) -> (StreamId, StreamId) {
    let c = pair.client.engine.open().unwrap();
    pair.drive();
    pair.advance(RTT);
    (c, pair.server.accept().unwrap())
}

/// Moves `total` bytes from the client on `c` to the server on `s`, the server reading
/// `read_per_ms` bytes per millisecond of simulated time at most (`None`: all it has).
/// Returns when the data arrived and the simulated time it took, with the server's window
/// sampled at each step.
fn transfer(
    pair: &mut Pair,
    (c, s): (StreamId, StreamId),
    total: usize,
    read_per_ms: Option<usize>,
) -> (Duration, Vec<(Instant, u32, usize)>) {
    let chunk = vec![0x5A; 256 * 1024];
    let (mut sent, mut got) = (0, 0);
    let start = pair.now;
    let mut windows = Vec::new();
    let mut last_read = pair.now;
    while got < total {
        pair.drive_app(|p| {
            let mut acted = false;
            if sent < total {
                let n = p
                    .client
                    .write_some(c, &chunk[..chunk.len().min(total - sent)]);
                sent += n;
                acted |= n > 0;
            }
            let allowed = match read_per_ms {
                None => usize::MAX,
                Some(per_ms) => {
                    let ms = (p.now - last_read).as_millis() as usize;
                    per_ms * ms
                }
            };
            if allowed > 0 {
                let mut buf = vec![0u8; allowed.min(1 << 20)];
                if let Ok(n @ 1..) = p.server.engine.read(s, &mut buf) {
                    got += n;
                    last_read = p.now;
                    acted = true;
                }
            }
            acted
        });
        let w = pair.server.engine.stream_window(s).unwrap();
        if windows.last().is_none_or(|&(_, last, _)| last != w) {
            eprintln!("{:?}: window {w}, {got} read", pair.now - start);
        }
        windows.push((pair.now, w, got));
        let next = pair
            .next_due()
            .unwrap_or(pair.now + Duration::from_millis(1))
            .min(pair.now + Duration::from_millis(1));
        pair.advance_to(next.max(pair.now + Duration::from_micros(100)));
        assert!(
            pair.now - start < Duration::from_secs(120),
            "stuck at {got} of {total}"
        );
    }
    (pair.now - start, windows)
}

#[test]
fn the_window_grows_to_between_one_and_two_bandwidth_delay_products() {
    let mut pair = link(true);
    let ids = open(&mut pair);
    let total = 100_000_000;
    let (_, windows) = transfer(&mut pair, ids, total, None);
    let last = windows.last().unwrap().1;
    assert!(
        u64::from(last) >= BDP && u64::from(last) <= 2 * BDP,
        "window {last}, BDP {BDP}"
    );
    let start = windows[0].0;
    let (reached_at, _, read_then) = *windows
        .iter()
        .find(|(_, w, _)| u64::from(*w) >= BDP)
        .unwrap();
    assert!(
        reached_at - start < RTT * 30,
        "reached the BDP after {:?}",
        reached_at - start
    );
    // From then on the stream moves at the link's rate.
    let (end, _, _) = *windows.last().unwrap();
    let rate = (total - read_then) as f64 / (end - reached_at).as_secs_f64();
    eprintln!("after the ramp: {:.1} MB/s", rate / 1e6);
    assert!(rate >= 0.8 * RATE as f64, "{:.1} MB/s", rate / 1e6);
    // Policing follows the window: nothing tripped.
    assert!(!pair.server.engine.is_closed());
}

#[test]
fn without_tuning_the_window_stays_and_the_stream_crawls() {
    let mut pair = link(false);
    let ids = open(&mut pair);
    let (took, windows) = transfer(&mut pair, ids, 2_000_000, None);
    assert!(windows.iter().all(|(_, w, _)| *w == 65536));
    let rate = 2_000_000.0 / took.as_secs_f64();
    // One 64 KiB window per round trip, as Go's receiver at its defaults.
    assert!(rate < 1_000_000.0, "{:.2} MB/s", rate / 1e6);
}

#[test]
fn a_slow_readers_window_does_not_grow() {
    let mut pair = link(true);
    let ids = open(&mut pair);
    // The reader takes 200 KB/s, a hundredth of the link.
    let (_, windows) = transfer(&mut pair, ids, 1_000_000, Some(200));
    assert!(
        windows.iter().all(|(_, w, _)| *w == 65536),
        "grew to {}",
        windows.iter().map(|(_, w, _)| *w).max().unwrap()
    );
}

#[test]
fn many_streams_share_the_budget() {
    let mut pair = link(true);
    let ids: Vec<_> = (0..8).map(|_| open(&mut pair)).collect();
    // Eight streams at once: together they may not be promised more than the budget.
    let chunk = vec![1u8; 64 * 1024];
    let total = 12_000_000;
    let mut sent = vec![0; ids.len()];
    let mut got = vec![0; ids.len()];
    let start = pair.now;
    let mut half: Option<(Instant, usize)> = None;
    while got.iter().any(|&g| g < total) {
        let sum: usize = got.iter().sum();
        if half.is_none() && sum >= total * ids.len() / 2 {
            half = Some((pair.now, sum));
        }
        pair.drive_app(|p| {
            let mut acted = false;
            for (i, &(c, s)) in ids.iter().enumerate() {
                if sent[i] < total {
                    let n = p.client.write_some(c, &chunk);
                    sent[i] += n;
                    acted |= n > 0;
                }
                let n = p.server.read_available(s).unwrap().len();
                got[i] += n;
                acted |= n > 0;
            }
            acted
        });
        let promised: u64 = ids
            .iter()
            .map(|&(_, s)| u64::from(pair.server.engine.stream_window(s).unwrap()))
            .sum();
        assert!(promised <= 4 << 20, "{promised} promised");
        pair.advance(Duration::from_millis(1));
        assert!(pair.now - start < Duration::from_secs(120));
    }
    // Over the second half, once the windows have grown, the streams fill the link.
    let (at, sum) = half.unwrap();
    let rate = (total * ids.len() - sum) as f64 / (pair.now - at).as_secs_f64();
    eprintln!("8 streams, second half: {:.1} MB/s", rate / 1e6);
    assert!(rate >= 0.8 * RATE as f64, "{:.1} MB/s together", rate / 1e6);
}

#[test]
fn a_window_the_session_budget_caps_near_the_path_still_fills_it() {
    // 200 ms at 20 MB/s is a 4 MB path, and the default 4 MiB session budget caps the
    // window just above it: the UPDs must come often enough that the sender, waiting for
    // each, still has nearly the whole window in flight.
    let mut pair = link(true);
    pair.latency = RTT; // each way: a 200 ms round trip
    let c = pair.client.engine.open().unwrap();
    pair.drive();
    pair.advance(2 * RTT);
    let ids = (c, pair.server.accept().unwrap());
    let total = 120_000_000;
    let (_, windows) = transfer(&mut pair, ids, total, None);
    assert_eq!(windows.last().unwrap().1, 4 << 20, "capped by the budget");
    let (capped_at, _, read_then) = *windows.iter().find(|(_, w, _)| *w == 4 << 20).unwrap();
    let (end, _, _) = *windows.last().unwrap();
    let rate = (total - read_then) as f64 / (end - capped_at).as_secs_f64();
    eprintln!("with the window capped: {:.1} MB/s", rate / 1e6);
    assert!(rate >= 0.95 * RATE as f64, "{:.1} MB/s", rate / 1e6);
}
