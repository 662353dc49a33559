//! Session configuration: xtaci/smux's `Config` with its defaults and rules, plus a few knobs
//! Go does not have.
//!
//! # How the three buffer knobs relate
//!
//! * [`max_frame_size`](Config::max_frame_size) is how a *sender* cuts its data: each PSH
//!   frame carries at most this many bytes. A receiver takes any frame up to 65535 bytes
//!   whatever its own setting, so the two sides need not agree.
//! * [`max_receive_buffer`](Config::max_receive_buffer) is a *session-wide* receive budget
//!   (a token bucket, in both versions): every byte that arrives for a stream and has not yet
//!   been read by the application spends it; reading refunds it. While it is spent the
//!   connection is not read at all, so one stream nobody reads stalls the whole session in
//!   version 1.
//! * [`max_stream_buffer`](Config::max_stream_buffer) is the *per-stream* window, and only
//!   version 2 uses it: the receiver tells the sender (in UPD frames) that it may have this
//!   many bytes in flight on that stream. A slow reader then stalls only its own stream.
//!
//! Worked example, version 2 with the defaults (frame 32 KiB, receive buffer 4 MiB, stream
//! buffer 64 KiB): each stream may have at most 64 KiB unread at the receiver (the very first
//! burst may reach 256 KiB, because a sender starts from Go's assumed window of 262144 until
//! the first UPD arrives), cut into frames of at most 32 KiB. 64 streams whose readers all
//! stall hold 64 × 64 KiB = 4 MiB, the whole session budget: only then does the session stop
//! reading. In version 1 a single stalled stream can take the full 4 MiB. To carry one fast
//! stream over a long fat pipe, raise the stream buffer towards the bandwidth-delay product
//! (e.g. 100 Mbit/s × 80 ms ≈ 1 MiB) and the receive buffer to a multiple of it.
//!
//! # Coming from the crate `smux` 0.2
//!
//! Its `ConfigBuilder` methods keep their names here: `version`, `keep_alive_interval`,
//! `keep_alive_timeout`, `max_frame_size`, `max_receive_buffer`, `max_stream_buffer` and
//! `enable_keep_alive`. Durations are [`Duration`]s and sizes `usize`s; `build()` returns
//! a `Result` instead of panicking on a bad value.

use crate::frame::{Version, MAX_PAYLOAD_LEN};
use std::time::Duration;

/// A validated session configuration. Build one with [`Config::builder`], or take
/// [`Config::default`] (Go's defaults).
///
/// ```
/// use std::time::Duration;
/// use smux_core::Config;
///
/// let config = Config::builder()
///     .version(2)
///     .keep_alive_interval(Duration::from_secs(5))
///     .max_stream_buffer(256 * 1024)
///     .build()?;
/// assert_eq!(config.max_frame_size(), 32768);
/// # Ok::<(), smux_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    version: Version,
    keep_alive: bool,
    keep_alive_interval: Duration,
    keep_alive_timeout: Duration,
    max_frame_size: usize,
    max_receive_buffer: usize,
    max_stream_buffer: usize,
    max_stream_send_buffer: usize,
    max_send_buffer: usize,
    accept_backlog: usize,
    max_streams: usize,
    close_timeout: Duration,
    first_stream_id: Option<u32>,
    max_write_size: Option<usize>,
    vectored_writes: Option<bool>,
    write_timeout: Option<Duration>,
    window_tuning: bool,
    max_stream_window: usize,
}

/// The default [`Config::max_write_size`]: 64 KiB, under what KCP takes in one send at any
/// MTU down to 576 (127 segments of MTU − 24 bytes: 70104 bytes at 576, 168 KB at 1350).
pub const DEFAULT_MAX_WRITE_SIZE: usize = 64 * 1024;

impl Default for Config {
    fn default() -> Self {
        Self {
            version: Version::V1,
            keep_alive: true,
            keep_alive_interval: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(30),
            max_frame_size: 32768,
            max_receive_buffer: 4 * 1024 * 1024,
            max_stream_buffer: 65536,
            max_stream_send_buffer: 256 * 1024,
            max_send_buffer: 4 << 20,
            accept_backlog: 1024,
            max_streams: 65536,
            close_timeout: Duration::from_secs(30),
            first_stream_id: None,
            max_write_size: None,
            vectored_writes: None,
            write_timeout: None,
            window_tuning: true,
            max_stream_window: 16 * 1024 * 1024,
        }
    }
}

impl Config {
    /// A builder starting from the defaults.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder {
            config: Self::default(),
            invalid_version: None,
        }
    }

    /// A builder starting from this configuration, to change a few fields.
    pub fn to_builder(&self) -> ConfigBuilder {
        ConfigBuilder {
            config: self.clone(),
            invalid_version: None,
        }
    }

    /// The protocol version (Go: `Version`, default 1). Both sides must use the same.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Whether keepalive is on (Go: `!KeepAliveDisabled`, default on).
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// How often a NOP is sent (Go: `KeepAliveInterval`, default 10 s).
    pub fn keep_alive_interval(&self) -> Duration {
        self.keep_alive_interval
    }

    /// How long the session waits for any frame from the peer before it closes
    /// (Go: `KeepAliveTimeout`, default 30 s). The clock runs only while the session is
    /// willing to read, so a slow local reader never gets its own session closed.
    pub fn keep_alive_timeout(&self) -> Duration {
        self.keep_alive_timeout
    }

    /// The largest PSH payload this side sends (Go: `MaxFrameSize`, default 32768).
    pub fn max_frame_size(&self) -> usize {
        self.max_frame_size
    }

    /// The session-wide receive budget in bytes (Go: `MaxReceiveBuffer`, default 4 MiB).
    pub fn max_receive_buffer(&self) -> usize {
        self.max_receive_buffer
    }

    /// The per-stream window advertised in version 2 (Go: `MaxStreamBuffer`, default 64 KiB).
    pub fn max_stream_buffer(&self) -> usize {
        self.max_stream_buffer
    }

    /// Not in Go: how many bytes a stream's writes may queue before `write` waits for the
    /// connection (default 256 KiB). Bounds outbound memory per stream.
    pub fn max_stream_send_buffer(&self) -> usize {
        self.max_stream_send_buffer
    }

    /// Not in Go: how many bytes the writes of all streams together may queue (default
    /// 4 MiB). Past it a write waits, except that each stream may always queue one frame's
    /// worth (`max_frame_size`, or `max_stream_send_buffer` if smaller), so that a stream
    /// is never stalled by others whose peer grants no window.
    ///
    /// It bounds outbound memory per session, and keeps what waits for the connection
    /// small enough to stay in the CPU's cache: 256 streams each queueing 256 KiB are
    /// 64 MiB, copied once on write and again, cold, into the kernel.
    pub fn max_send_buffer(&self) -> usize {
        self.max_send_buffer
    }

    /// Not in Go: how many incoming streams may wait to be accepted (default 1024, Go's
    /// fixed backlog). Past it a peer's SYN is refused with a FIN instead of stalling the
    /// session as Go does. 0 refuses every incoming stream.
    pub fn accept_backlog(&self) -> usize {
        self.accept_backlog
    }

    /// Not in Go: the most streams open at once, both directions together (default 65536).
    /// Past it a local open fails and a peer's SYN is refused.
    pub fn max_streams(&self) -> usize {
        self.max_streams
    }

    /// Not in Go: how long closing a session may spend flushing queued frames before it
    /// closes the connection anyway (default 30 s).
    pub fn close_timeout(&self) -> Duration {
        self.close_timeout
    }

    /// Not in Go: the id of the first stream this end opens; later ones follow by 2 (default
    /// `None`: Go's 3 for a client, 2 for a server). An id of the other side's parity is
    /// raised by one (a client opens odd ids, a server even ones). Ids end at `u32::MAX`:
    /// after that, opening fails with [`OpenError::IdsExhausted`](crate::OpenError::IdsExhausted) and a
    /// long-lived application must start a new session. Starting near the top lets it test
    /// that path without opening two billion streams.
    pub fn first_stream_id(&self) -> Option<u32> {
        self.first_stream_id
    }

    /// Not in Go: the most bytes the driver hands to one `poll_write` or
    /// `poll_write_vectored` call on the connection (default
    /// [`DEFAULT_MAX_WRITE_SIZE`], 64 KiB). Frames are still batched, up to 256 KiB at a
    /// time; this caps each call. It exists for transports that refuse large writes:
    /// **KCP** (`tokio_kcp` hands a whole write to one `Kcp::send`, which refuses anything
    /// needing 128 or more segments: 127 × (MTU − 24) bytes, about 168 KB at MTU 1350 and
    /// 70 KB at 576) and message-based wrappers; **TLS** takes any size (it cuts records of
    /// 16 KiB itself), as does TCP. At least one 8-byte frame header.
    ///
    /// Unless set, the cap applies only to a connection that writes no vectors (declared by
    /// [`vectored_writes`](Self::vectored_writes) or learned: KCP and most TLS streams are
    /// such), whose frames are packed into one buffer: a connection that writes vectors
    /// (TCP, a Unix socket) takes a whole batch per `writev`, which the kernel splits as it
    /// must. Set it to cap every write.
    pub fn max_write_size(&self) -> usize {
        self.max_write_size.unwrap_or(DEFAULT_MAX_WRITE_SIZE)
    }

    /// Whether [`max_write_size`](Self::max_write_size) was set (then it caps every write).
    pub fn max_write_size_is_set(&self) -> bool {
        self.max_write_size.is_some()
    }

    /// Not in Go: whether the connection writes vectors (`poll_write_vectored` with several
    /// buffers at once). `None` (the default) lets the driver learn it from the first
    /// writes; `Some(false)` declares a transport that writes only the first buffer of a
    /// vectored write (futures-io's default, most TLS and KCP wrappers) so that frames are
    /// packed into one contiguous buffer from the start; `Some(true)` keeps headers and
    /// payloads in separate buffers, never packing them. smux-tokio sets it from the
    /// connection's `is_write_vectored()` unless it is set here.
    pub fn vectored_writes(&self) -> Option<bool> {
        self.vectored_writes
    }

    /// Not in Go: how long the connection may take no byte at all while frames wait to be
    /// written before the session ends with
    /// [`CloseReason::WriteTimeout`](crate::CloseReason::WriteTimeout) (default: the
    /// keepalive timeout, 30 s unless changed, whether keepalive is on or not). Keepalive
    /// notices a peer that sends nothing; this notices one that takes nothing, which would
    /// otherwise hold every writer of the session forever. A peer that pauses its reading
    /// for less than this survives.
    pub fn write_timeout(&self) -> Duration {
        self.write_timeout.unwrap_or(self.keep_alive_timeout)
    }

    /// Not in Go: whether a version-2 stream's window grows to the path (default on). The
    /// window offered starts at [`max_stream_buffer`](Self::max_stream_buffer) and doubles
    /// while the sender is held back by it and the reader keeps up, until doubling no
    /// longer speeds the stream up, taking only session budget no other stream was
    /// promised; the wire is unchanged (Go's sender honours any window). Off: every stream
    /// offers `max_stream_buffer` always, as Go does. The rule is documented in
    /// `smux_core::proto`'s flow-control module.
    pub fn window_tuning(&self) -> bool {
        self.window_tuning
    }

    /// Not in Go: the largest window a tuned stream may offer (default 16 MiB; at least
    /// `max_stream_buffer`, at most `i32::MAX`, since Go reads the window as `int32`). The
    /// session receive budget bounds it too.
    pub fn max_stream_window(&self) -> usize {
        self.max_stream_window
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let nonzero = |field, value: Duration| {
            check(field, value, !value.is_zero(), "must be greater than zero")
        };
        nonzero("keep_alive_interval", self.keep_alive_interval)?;
        nonzero("keep_alive_timeout", self.keep_alive_timeout)?;
        nonzero("close_timeout", self.close_timeout)?;
        if let Some(timeout) = self.write_timeout {
            nonzero("write_timeout", timeout)?;
        }
        if self.keep_alive {
            check(
                "keep_alive_timeout",
                self.keep_alive_timeout,
                self.keep_alive_timeout >= self.keep_alive_interval,
                "must be at least keep_alive_interval when keepalive is on",
            )?;
        }
        check(
            "max_frame_size",
            self.max_frame_size,
            (1..=MAX_PAYLOAD_LEN).contains(&self.max_frame_size),
            "must be between 1 and 65535",
        )?;
        let i32_max = i32::MAX as usize;
        check(
            "max_receive_buffer",
            self.max_receive_buffer,
            (1..=i32_max).contains(&self.max_receive_buffer),
            "must be between 1 and 2147483647 (i32::MAX)",
        )?;
        check(
            "max_stream_buffer",
            self.max_stream_buffer,
            self.max_stream_buffer >= 1 && self.max_stream_buffer <= self.max_receive_buffer,
            "must be between 1 and max_receive_buffer",
        )?;
        check(
            "max_stream_send_buffer",
            self.max_stream_send_buffer,
            (1..=i32_max).contains(&self.max_stream_send_buffer),
            "must be between 1 and 2147483647 (i32::MAX)",
        )?;
        check(
            "max_send_buffer",
            self.max_send_buffer,
            self.max_send_buffer >= 1,
            "must be at least 1",
        )?;
        check(
            "max_streams",
            self.max_streams,
            self.max_streams >= 1,
            "must be at least 1",
        )?;
        check(
            "max_stream_window",
            self.max_stream_window,
            self.max_stream_window >= self.max_stream_buffer
                && self.max_stream_window <= i32::MAX as usize,
            "must be at least max_stream_buffer and at most i32::MAX",
        )?;
        check(
            "max_write_size",
            self.max_write_size(),
            self.max_write_size() >= crate::frame::HEADER_LEN,
            "must be at least 8 (one frame header)",
        )?;
        if let Some(id) = self.first_stream_id {
            // Go never opens 0 or 1; 0 is also the id of keepalive frames.
            check("first_stream_id", id, id >= 2, "must be at least 2")?;
        }
        Ok(())
    }
}

fn check(
    field: &'static str,
    value: impl std::fmt::Debug,
    ok: bool,
    rule: &'static str,
) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError {
            field,
            value: format!("{value:?}"),
            rule,
        })
    }
}

/// Builds a [`Config`]; [`build`](ConfigBuilder::build) validates it.
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until build() is called"]
pub struct ConfigBuilder {
    config: Config,
    /// A version byte that names no version, kept so that `build()` can report it.
    invalid_version: Option<u8>,
}

/// A value for [`ConfigBuilder::version`]: a [`Version`] or its number.
pub trait IntoVersion {
    /// The version, or the number that names none.
    fn into_version(self) -> Result<Version, u8>;
}

impl IntoVersion for Version {
    fn into_version(self) -> Result<Version, u8> {
        Ok(self)
    }
}

impl IntoVersion for u8 {
    fn into_version(self) -> Result<Version, u8> {
        Version::from_u8(self).ok_or(self)
    }
}

impl ConfigBuilder {
    /// Protocol version, 1 or 2 (a [`Version`] or its number).
    pub fn version(mut self, version: impl IntoVersion) -> Self {
        match version.into_version() {
            Ok(v) => {
                self.config.version = v;
                self.invalid_version = None;
            }
            Err(byte) => self.invalid_version = Some(byte),
        }
        self
    }

    /// Turns keepalive on or off (smux 0.2's name; Go: `KeepAliveDisabled`, inverted).
    pub fn enable_keep_alive(mut self, on: bool) -> Self {
        self.config.keep_alive = on;
        self
    }

    /// See [`Config::keep_alive_interval`].
    pub fn keep_alive_interval(mut self, interval: Duration) -> Self {
        self.config.keep_alive_interval = interval;
        self
    }

    /// See [`Config::keep_alive_timeout`].
    pub fn keep_alive_timeout(mut self, timeout: Duration) -> Self {
        self.config.keep_alive_timeout = timeout;
        self
    }

    /// See [`Config::max_frame_size`].
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.config.max_frame_size = bytes;
        self
    }

    /// See [`Config::max_receive_buffer`].
    pub fn max_receive_buffer(mut self, bytes: usize) -> Self {
        self.config.max_receive_buffer = bytes;
        self
    }

    /// See [`Config::max_stream_buffer`].
    pub fn max_stream_buffer(mut self, bytes: usize) -> Self {
        self.config.max_stream_buffer = bytes;
        self
    }

    /// See [`Config::max_stream_send_buffer`].
    pub fn max_stream_send_buffer(mut self, bytes: usize) -> Self {
        self.config.max_stream_send_buffer = bytes;
        self
    }

    /// See [`Config::max_send_buffer`].
    pub fn max_send_buffer(mut self, bytes: usize) -> Self {
        self.config.max_send_buffer = bytes;
        self
    }

    /// See [`Config::accept_backlog`].
    pub fn accept_backlog(mut self, streams: usize) -> Self {
        self.config.accept_backlog = streams;
        self
    }

    /// See [`Config::max_streams`].
    pub fn max_streams(mut self, streams: usize) -> Self {
        self.config.max_streams = streams;
        self
    }

    /// See [`Config::close_timeout`].
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.config.close_timeout = timeout;
        self
    }

    /// See [`Config::window_tuning`].
    pub fn window_tuning(mut self, on: bool) -> Self {
        self.config.window_tuning = on;
        self
    }

    /// See [`Config::max_stream_window`].
    pub fn max_stream_window(mut self, bytes: usize) -> Self {
        self.config.max_stream_window = bytes;
        self
    }

    /// See [`Config::write_timeout`].
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.config.write_timeout = Some(timeout);
        self
    }

    /// See [`Config::max_write_size`].
    pub fn max_write_size(mut self, bytes: usize) -> Self {
        self.config.max_write_size = Some(bytes);
        self
    }

    /// See [`Config::vectored_writes`].
    pub fn vectored_writes(mut self, vectored: bool) -> Self {
        self.config.vectored_writes = Some(vectored);
        self
    }

    /// See [`Config::first_stream_id`].
    pub fn first_stream_id(mut self, id: u32) -> Self {
        self.config.first_stream_id = Some(id);
        self
    }

    /// Validates the configuration with Go's `VerifyConfig` rules and ours.
    pub fn build(self) -> Result<Config, ConfigError> {
        if let Some(byte) = self.invalid_version {
            return Err(ConfigError {
                field: "version",
                value: byte.to_string(),
                rule: "must be 1 or 2",
            });
        }
        self.config.validate()?;
        Ok(self.config)
    }
}

/// A configuration value that breaks a rule. The message names the field, the value and
/// the rule, e.g. `invalid config: max_frame_size = 65536: must be between 1 and 65535`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid config: {field} = {value}: {rule}")]
pub struct ConfigError {
    field: &'static str,
    value: String,
    rule: &'static str,
}

impl ConfigError {
    /// The field's name, as the builder method that sets it.
    pub fn field(&self) -> &'static str {
        self.field
    }

    /// The rejected value, as text.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The rule it breaks.
    pub fn rule(&self) -> &'static str {
        self.rule
    }
}

#[cfg(test)]
mod tests;
