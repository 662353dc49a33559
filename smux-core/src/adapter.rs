//! What a futures-io runtime adapter (smux-smol, smux-async-std) is made of, written once:
//! its re-exports and its entry points, [`futures_io_adapter!`](crate::futures_io_adapter).

/// Defines a futures-io runtime adapter's public face in the crate that invokes it: the
/// re-exports users match on, and `client`, `server` and `new`, with the driver spawned on
/// (or, for `new`, handed back for) the runtime `$runtime` (an expression of a type that
/// implements [`Runtime`](crate::Runtime)). `$name` is the runtime's name in the docs.
///
/// ```ignore
/// smux_core::futures_io_adapter!(SmolRuntime, "smol's global executor");
/// ```
#[macro_export]
macro_rules! futures_io_adapter {
    ($runtime:expr, $name:literal) => {
        pub use $crate::{
            CloseReason, Config, ConfigBuilder, ConfigError, Driver, Error, Incoming, OpenError,
            OwnedReadHalf, OwnedWriteHalf, ProtocolError, ReuniteError, Role, Session, Stats,
            Stream, StreamError, StreamId, Version,
        };

        #[doc = concat!("Starts the client end of a session over `io`, its driver spawned on ", $name, ".")]
        ///
        /// Never fails today; the `Result` keeps the shape of every adapter's `client`.
        pub fn client<T>(io: T, config: Config) -> Result<Session, Error>
        where
            T: $crate::__private::AsyncRead + $crate::__private::AsyncWrite + Unpin + Send + 'static,
        {
            Ok(Session::spawn(io, Role::Client, config, ::std::sync::Arc::new($runtime)))
        }

        #[doc = concat!("Starts the server end of a session over `io`, its driver spawned on ", $name, "; see [`client`].")]
        pub fn server<T>(io: T, config: Config) -> Result<Session, Error>
        where
            T: $crate::__private::AsyncRead + $crate::__private::AsyncWrite + Unpin + Send + 'static,
        {
            Ok(Session::spawn(io, Role::Server, config, ::std::sync::Arc::new($runtime)))
        }

        /// A session and its driver future, for callers who run the driver themselves:
        /// nothing happens until it is polled.
        pub fn new<T>(io: T, role: Role, config: Config) -> Result<(Session, Driver<T>), Error>
        where
            T: $crate::__private::AsyncRead + $crate::__private::AsyncWrite + Unpin,
        {
            Ok(Session::new(io, role, config, ::std::sync::Arc::new($runtime)))
        }
    };
}
