//! Tests of the frame codec: every command both ways, malformed headers, the round trip.
use super::*;
use proptest::prelude::*;

fn header(ver: u8, cmd: u8, len: u16, sid: u32) -> [u8; 8] {
    let mut h = [ver, cmd, 0, 0, 0, 0, 0, 0];
    h[2..4].copy_from_slice(&len.to_le_bytes());
    h[4..].copy_from_slice(&sid.to_le_bytes());
    h
}

#[test]
fn header_layout_is_little_endian() {
    let h = Header {
        cmd: Cmd::Psh,
        length: 0x0102,
        sid: 0x0304_0506,
    };
    assert_eq!(
        h.encode(Version::V2),
        [2, 2, 0x02, 0x01, 0x06, 0x05, 0x04, 0x03]
    );
}

#[test]
fn known_bytes_decode() {
    // A PSH of "hi" on sid 3, version 1, as Go writes it.
    let bytes = [1, 2, 2, 0, 3, 0, 0, 0, b'h', b'i'];
    let (frame, used) = Frame::decode(&bytes, Version::V1).unwrap().unwrap();
    assert_eq!(used, 10);
    assert_eq!(
        frame,
        Frame::Psh {
            sid: 3,
            data: Bytes::from_static(b"hi")
        }
    );
    let upd = [2, 4, 8, 0, 5, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0];
    let (frame, _) = Frame::decode(&upd, Version::V2).unwrap().unwrap();
    assert_eq!(
        frame,
        Frame::Upd {
            sid: 5,
            update: WindowUpdate {
                consumed: 1,
                window: 65536
            }
        }
    );
}

#[test]
fn version_is_checked_before_cmd() {
    let err = Header::decode(&header(2, 9, 0, 1), Version::V1).unwrap_err();
    assert!(matches!(
        err,
        FrameError::VersionMismatch {
            found: 2,
            cmd: 9,
            ..
        }
    ));
}

#[test]
fn each_malformation_has_its_error() {
    let v1 = Version::V1;
    let v2 = Version::V2;
    assert_eq!(
        Header::decode(&header(1, 5, 0, 7), v1),
        Err(FrameError::UnknownCmd {
            cmd: 5,
            sid: 7,
            length: 0
        })
    );
    for cmd in [Cmd::Syn, Cmd::Fin, Cmd::Nop] {
        assert_eq!(
            Header::decode(&header(2, cmd.as_u8(), 1, 7), v2),
            Err(FrameError::UnexpectedPayload {
                cmd,
                sid: 7,
                length: 1
            })
        );
    }
    assert_eq!(
        Header::decode(&header(2, 4, 7, 9), v2),
        Err(FrameError::BadUpdLength { sid: 9, length: 7 })
    );
    assert_eq!(
        Header::decode(&header(1, 4, 8, 9), v1),
        Err(FrameError::UpdOnV1 { sid: 9 })
    );
    // The message names the frame.
    let msg = Header::decode(&header(1, 4, 8, 9), v1)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("UPD") && msg.contains("sid 9"), "{msg}");
}

#[test]
fn encoding_refuses_what_receivers_reject() {
    let mut buf = Vec::new();
    let upd = Frame::Upd {
        sid: 3,
        update: WindowUpdate {
            consumed: 0,
            window: 0,
        },
    };
    assert_eq!(upd.encode(Version::V1, &mut buf), Err(EncodeError::UpdOnV1));
    let big = Frame::Psh {
        sid: 3,
        data: Bytes::from(vec![0; MAX_PAYLOAD_LEN + 1]),
    };
    assert_eq!(
        big.encode(Version::V1, &mut buf),
        Err(EncodeError::PayloadTooLarge { len: 65536 })
    );
    assert!(buf.is_empty());
}

#[test]
fn partial_input_is_incomplete() {
    let mut buf = Vec::new();
    Frame::Psh {
        sid: 3,
        data: Bytes::from_static(b"hello"),
    }
    .encode(Version::V1, &mut buf)
    .unwrap();
    for cut in 0..buf.len() {
        assert_eq!(
            Frame::decode(&buf[..cut], Version::V1),
            Ok(None),
            "cut {cut}"
        );
    }
}

fn any_version() -> impl Strategy<Value = Version> {
    prop_oneof![Just(Version::V1), Just(Version::V2)]
}

fn any_frame(version: Version) -> BoxedStrategy<Frame> {
    let sid = any::<u32>();
    let mut options = vec![
        sid.prop_map(|sid| Frame::Syn { sid }).boxed(),
        sid.prop_map(|sid| Frame::Fin { sid }).boxed(),
        sid.prop_map(|sid| Frame::Nop { sid }).boxed(),
        (sid, proptest::collection::vec(any::<u8>(), 0..2048))
            .prop_map(|(sid, data)| Frame::Psh {
                sid,
                data: data.into(),
            })
            .boxed(),
    ];
    if version == Version::V2 {
        options.push(
            (sid, any::<u32>(), any::<u32>())
                .prop_map(|(sid, consumed, window)| Frame::Upd {
                    sid,
                    update: WindowUpdate { consumed, window },
                })
                .boxed(),
        );
    }
    proptest::strategy::Union::new(options).boxed()
}

proptest! {
    #[test]
    fn roundtrip((version, frame) in any_version().prop_flat_map(|v| (Just(v), any_frame(v)))) {
        let mut buf = Vec::new();
        frame.encode(version, &mut buf).unwrap();
        prop_assert_eq!(buf.len(), frame.encoded_len());
        let (decoded, used) = Frame::decode(&buf, version).unwrap().unwrap();
        prop_assert_eq!(used, buf.len());
        prop_assert_eq!(decoded, frame);
    }

    #[test]
    fn oversized_payload_roundtrips_at_the_limit(sid in any::<u32>()) {
        let frame = Frame::Psh { sid, data: Bytes::from(vec![7; MAX_PAYLOAD_LEN]) };
        let mut buf = Vec::new();
        frame.encode(Version::V1, &mut buf).unwrap();
        let (decoded, _) = Frame::decode(&buf, Version::V1).unwrap().unwrap();
        prop_assert_eq!(decoded, frame);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128), version in any_version()) {
        // Decode into an exact-size copy: reading past it would panic on the bounds check.
        let src = bytes.clone().into_boxed_slice();
        match Frame::decode(&src, version) {
            Ok(Some((frame, used))) => {
                prop_assert!(used <= src.len());
                prop_assert_eq!(used, frame.encoded_len());
                // What we accept, we can send back identically.
                let mut again = Vec::new();
                frame.encode(version, &mut again).unwrap();
                prop_assert_eq!(&again[..], &src[..used]);
            }
            Ok(None) => {
                let incomplete = match src.first_chunk::<HEADER_LEN>() {
                    None => true,
                    Some(head) => {
                        let h = Header::decode(head, version).unwrap();
                        src.len() < HEADER_LEN + usize::from(h.length)
                    }
                };
                prop_assert!(incomplete);
            }
            Err(_) => prop_assert!(src.len() >= HEADER_LEN),
        }
    }
}
