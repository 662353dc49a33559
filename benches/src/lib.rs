//! Benchmarks of smux-rs and the side-by-side comparison runner.
//!
//! * `cargo bench -p benches`: criterion benches (frame codec, the engine in memory, smux-rs
//!   over loopback TCP on each runtime).
//! * `cargo run --release -p benches --bin compare`: the same workloads, client and server in
//!   separate processes, for raw TCP, smux-rs on tokio, smol and async-std (v1 and v2), Go's
//!   xtaci/smux and hashicorp/yamux, rust-yamux and async_smux, printed side by side.
//! * `cargo run --release -p benches --bin wan`: throughput against round trip over a thin
//!   path (toxiproxy, 20 MB/s), where windows are the limit; see [`wan`].
//!
//! [`wire`] is the bench protocol every peer speaks (the Go peer in
//! `interop-tests/go/benchpeer` speaks it too); [`systems`] builds each Rust system's client
//! and server; [`report`] turns the results into a table, JSON and an SVG chart.
//!
//! ```no_run
//! // The compare runner's peer, as a library: serve smux-rs v2 on tokio.
//! use benches::systems::{serve, Rt, Settings, System};
//! let settings = Settings { version: 2, frame: 32768, window: 262144, receive_buffer: 4 << 20 };
//! let rt = Rt::for_system(System::SmuxTokio)?;
//! let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
//! serve(&rt, System::SmuxTokio, &settings, listener, || 0)?;
//! # Ok::<(), std::io::Error>(())
//! ```

pub mod paired;
pub mod report;
pub mod systems;
pub mod wan;
pub mod wire;
