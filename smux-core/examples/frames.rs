//! Encodes a short exchange of smux frames, prints it as Go's xtaci/smux would put it on the
//! wire, and decodes it back.

use bytes::Bytes;
use smux_core::frame::{Frame, WindowUpdate};
use smux_core::Config;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::builder().version(2).build()?;
    let version = config.version();
    let frames = [
        Frame::Syn { sid: 3 },
        Frame::Psh {
            sid: 3,
            data: Bytes::from_static(b"hello, smux"),
        },
        Frame::Upd {
            sid: 3,
            update: WindowUpdate {
                consumed: 11,
                window: config.max_stream_buffer() as u32,
            },
        },
        Frame::Nop { sid: 0 },
        Frame::Fin { sid: 3 },
    ];
    let mut wire = Vec::new();
    for frame in &frames {
        frame.encode(version, &mut wire)?;
    }
    println!(
        "{} frames, {} bytes on the wire (version {version}):",
        frames.len(),
        wire.len()
    );
    let mut rest = &wire[..];
    while let Some((frame, used)) = Frame::decode(rest, version)? {
        let hex: Vec<String> = rest[..used].iter().map(|b| format!("{b:02x}")).collect();
        println!(
            "  {:<3} sid {:<2} {}",
            frame.cmd(),
            frame.sid(),
            hex.join(" ")
        );
        rest = &rest[used..];
    }
    assert!(rest.is_empty());
    Ok(())
}
