//! Deterministic tests of the engine: two engines on a simulated clock, no runtime, no sockets.

mod flow;
mod hostile;
mod keepalive;
mod pair;
mod props;
mod send;
mod session;
mod tuning;

use crate::proto::StreamId;
use pair::{Pair, Rng};

/// Sends `data[i]` from the client on stream i, echoes it back on the server, and checks
/// both directions byte for byte. Writes and reads interleave as a real application's would.
pub(crate) fn echo(pair: &mut Pair, data: &[Vec<u8>], finish: bool) {
    let ids: Vec<StreamId> = data
        .iter()
        .map(|_| pair.client.engine.open().unwrap())
        .collect();
    let n = data.len();
    let mut sent = vec![0usize; n];
    let mut finished = vec![false; n];
    let mut echoed = vec![Vec::new(); n];
    let mut server_ids: Vec<Option<StreamId>> = vec![None; n];
    // Server side: bytes received but not yet written back, per stream.
    let mut pending: Vec<Vec<u8>> = vec![Vec::new(); n];
    let mut server_done = vec![false; n];
    let index: std::collections::HashMap<StreamId, usize> =
        ids.iter().enumerate().map(|(i, &id)| (id, i)).collect();
    pair.drive_app(|p| {
        let mut acted = false;
        for i in 0..n {
            if sent[i] < data[i].len() {
                let w = p.client.write_some(ids[i], &data[i][sent[i]..]);
                sent[i] += w;
                acted |= w > 0;
            }
            if finish && !finished[i] && sent[i] == data[i].len() {
                p.client.engine.finish(ids[i]).unwrap();
                finished[i] = true;
                acted = true;
            }
            let got = p.client.read_available(ids[i]).unwrap();
            acted |= !got.is_empty();
            echoed[i].extend(got);
        }
        while let Some(id) = p.server.accept() {
            server_ids[index[&id]] = Some(id);
            acted = true;
        }
        for i in 0..n {
            let Some(id) = server_ids[i] else { continue };
            let got = p.server.read_available(id).unwrap();
            acted |= !got.is_empty();
            pending[i].extend(got);
            if !pending[i].is_empty() {
                let w = p.server.write_some(id, &pending[i]);
                pending[i].drain(..w);
                acted |= w > 0;
            }
            if finish && !server_done[i] && pending[i].is_empty() && p.server.at_eof(id) {
                p.server.engine.finish(id).unwrap();
                server_done[i] = true;
                acted = true;
            }
        }
        acted
    });
    for i in 0..n {
        assert_eq!(echoed[i].len(), data[i].len(), "stream {i}: echo length");
        assert!(echoed[i] == data[i], "stream {i}: echo content differs");
        if finish {
            assert!(pair.client.at_eof(ids[i]), "stream {i}: no end of stream");
        }
    }
}

/// Moves `data` one way on a stream while the reader keeps reading: the client writes on
/// `w` when `client_writes`, else the server; the other side reads `r`. Returns what arrived.
pub(crate) fn one_way(
    pair: &mut Pair,
    client_writes: bool,
    w: StreamId,
    r: StreamId,
    data: &[u8],
) -> Vec<u8> {
    let mut sent = 0;
    let mut got = Vec::new();
    pair.drive_app(|p| {
        let (writer, reader) = if client_writes {
            (&mut p.client, &mut p.server)
        } else {
            (&mut p.server, &mut p.client)
        };
        let n = writer.write_some(w, &data[sent..]);
        sent += n;
        let more = reader.read_available(r).unwrap();
        let acted = n > 0 || !more.is_empty();
        got.extend(more);
        acted
    });
    got
}

/// `n` seeded messages with sizes in `lo..=hi`.
pub(crate) fn messages(seed: u64, n: usize, lo: usize, hi: usize) -> Vec<Vec<u8>> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| {
            let len = rng.range(lo, hi);
            rng.bytes(len)
        })
        .collect()
}
