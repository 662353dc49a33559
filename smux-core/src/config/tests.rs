//! Tests of the configuration: Go's defaults and rules, and ours.
use super::*;

#[test]
fn defaults_are_gos() {
    let c = Config::default();
    assert_eq!(c.version(), Version::V1);
    assert!(c.keep_alive());
    assert_eq!(c.keep_alive_interval(), Duration::from_secs(10));
    assert_eq!(c.keep_alive_timeout(), Duration::from_secs(30));
    assert_eq!(c.max_frame_size(), 32768);
    assert_eq!(c.max_receive_buffer(), 4194304);
    assert_eq!(c.max_stream_buffer(), 65536);
    assert_eq!(c.accept_backlog(), 1024);
    assert_eq!(c.close_timeout(), Duration::from_secs(30));
    assert_eq!(Config::builder().build().unwrap(), c);
}

fn err(b: ConfigBuilder) -> ConfigError {
    b.build().unwrap_err()
}

#[test]
fn frame_size_65536_names_65535() {
    let e = err(Config::builder().max_frame_size(65536));
    assert_eq!(e.field(), "max_frame_size");
    assert_eq!(e.value(), "65536");
    assert!(e.to_string().contains("65535"), "{e}");
    assert_eq!(
        err(Config::builder().max_frame_size(0)).field(),
        "max_frame_size"
    );
    assert!(Config::builder().max_frame_size(65535).build().is_ok());
}

#[test]
fn version_must_be_1_or_2() {
    for v in [0u8, 3, 255] {
        let e = err(Config::builder().version(v));
        assert_eq!((e.field(), e.value()), ("version", &*v.to_string()));
    }
    assert_eq!(
        Config::builder().version(2).build().unwrap().version(),
        Version::V2
    );
    // A later valid call overrides an earlier invalid one.
    assert!(Config::builder()
        .version(7)
        .version(Version::V1)
        .build()
        .is_ok());
}

#[test]
fn keepalive_rules() {
    let e = err(Config::builder()
        .keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(5)));
    assert_eq!(e.field(), "keep_alive_timeout");
    assert!(e.rule().contains("keep_alive_interval"));
    // With keepalive off, the ordering rule does not apply (as in Go)...
    assert!(Config::builder()
        .enable_keep_alive(false)
        .keep_alive_timeout(Duration::from_secs(5))
        .build()
        .is_ok());
    // ...but a zero duration is never accepted.
    for b in [
        Config::builder().keep_alive_interval(Duration::ZERO),
        Config::builder().keep_alive_timeout(Duration::ZERO),
        Config::builder().close_timeout(Duration::ZERO),
    ] {
        assert!(err(b).rule().contains("greater than zero"));
    }
}

/// The write cap defaults under what KCP takes at MTU 576, and must hold a header.
#[test]
fn the_write_cap_fits_kcp_and_holds_a_header() {
    let c = Config::default();
    assert!(c.max_write_size() <= 127 * (576 - 24));
    assert_eq!(c.vectored_writes(), None);
    let e = err(Config::builder().max_write_size(7));
    assert_eq!(e.field(), "max_write_size");
    let c = Config::builder()
        .max_write_size(8)
        .vectored_writes(false)
        .build()
        .unwrap();
    assert_eq!((c.max_write_size(), c.vectored_writes()), (8, Some(false)));
}

#[test]
fn buffer_rules() {
    assert_eq!(
        err(Config::builder().max_receive_buffer(0)).field(),
        "max_receive_buffer"
    );
    let e = err(Config::builder().max_receive_buffer(i32::MAX as usize + 1));
    assert_eq!(e.value(), "2147483648");
    assert!(Config::builder()
        .max_receive_buffer(i32::MAX as usize)
        .build()
        .is_ok());
    assert_eq!(
        err(Config::builder().max_stream_buffer(0)).field(),
        "max_stream_buffer"
    );
    // The stream buffer may not exceed the receive buffer, in version 1 too (as in Go).
    let e = err(Config::builder()
        .max_receive_buffer(1000)
        .max_stream_buffer(1001));
    assert_eq!(e.field(), "max_stream_buffer");
    assert_eq!(err(Config::builder().max_streams(0)).field(), "max_streams");
    assert_eq!(
        err(Config::builder().max_stream_send_buffer(0)).field(),
        "max_stream_send_buffer"
    );
    assert_eq!(
        err(Config::builder().max_send_buffer(0)).field(),
        "max_send_buffer"
    );
}

#[test]
fn first_stream_id_is_at_least_2() {
    assert_eq!(Config::default().first_stream_id(), None);
    for id in [0, 1] {
        let e = err(Config::builder().first_stream_id(id));
        assert_eq!(
            (e.field(), e.value()),
            ("first_stream_id", &*id.to_string())
        );
    }
    let c = Config::builder().first_stream_id(2).build().unwrap();
    assert_eq!(c.first_stream_id(), Some(2));
}

#[test]
fn to_builder_keeps_fields() {
    let c = Config::builder()
        .version(2)
        .accept_backlog(0)
        .build()
        .unwrap();
    let d = c.to_builder().max_frame_size(1000).build().unwrap();
    assert_eq!(d.version(), Version::V2);
    assert_eq!(d.accept_backlog(), 0);
    assert_eq!(d.max_frame_size(), 1000);
}
