//! A bulk stream over a real session (driver, handles, tokio TCP) allocates nothing per
//! frame once its buffers are warm: the engine's own test (smux-core/tests/allocations.rs)
//! covers the engine, this one the wake-ups and locks around it.
//! Counted with a counting global allocator over the whole process, so this file holds a
//! single test.

use smux_core::Config;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

const FRAME: usize = 32 * 1024;
const WRITE: usize = 128 * 1024;

/// The median of the measured windows is what steady state costs: a window may also pay for
/// buffers reaching a new high-water mark once (in version 1 a slow reader lets up to the
/// 4 MiB budget queue up), which is growth, not a cost per frame.
#[test]
fn a_bulk_stream_allocates_nothing_per_frame() {
    for version in [1, 2] {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mut windows = rt.block_on(bulk(version));
        let frames = WINDOW / FRAME;
        println!("v{version}: allocations per window of {frames} frames: {windows:?}");
        windows.sort_unstable();
        let median = windows[windows.len() / 2];
        assert!(
            (median as f64) < 0.05 * frames as f64,
            "v{version}: {median} allocations for {frames} frames (median of {windows:?})"
        );
    }
}

/// Bytes of one measured window, and how many windows follow the warm-up.
const WINDOW: usize = 16 << 20;
const WINDOWS: usize = 5;

/// Sends 8 MiB to warm up, then [`WINDOWS`] windows of [`WINDOW`] bytes, on one stream in
/// 128 KiB writes from a spawned task, read by another in 128 KiB reads; returns each
/// window's allocations (the whole process's: both ends, driver and runtime).
async fn bulk(version: u8) -> Vec<usize> {
    let config = Config::builder()
        .version(version)
        .max_frame_size(FRAME)
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server_config = config.clone();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let session = smux_tokio::server(tcp, server_config).unwrap();
        let mut stream = session.accept_stream().await.unwrap().unwrap();
        let mut buf = vec![0u8; WRITE];
        let mut total = 0usize;
        loop {
            let n = stream.read(&mut buf).await.unwrap();
            if n == 0 {
                return total;
            }
            total += n;
        }
    });
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let session = smux_tokio::client(tcp, config).unwrap();
    let mut stream = session.open_stream().await.unwrap();
    let warm = 8 << 20;
    let writer = tokio::spawn(async move {
        let data = vec![0x5au8; WRITE];
        for _ in 0..warm / WRITE {
            stream.write_all(&data).await.unwrap();
        }
        // Made before measuring: pushing to it allocates nothing.
        let mut windows = Vec::with_capacity(WINDOWS);
        for _ in 0..WINDOWS {
            let region = Region::new(GLOBAL);
            for _ in 0..WINDOW / WRITE {
                stream.write_all(&data).await.unwrap();
            }
            windows.push(region.change().allocations);
        }
        stream.shutdown().await.unwrap();
        windows
    });
    let windows = writer.await.unwrap();
    assert_eq!(server.await.unwrap(), warm + WINDOWS * WINDOW);
    windows
}
