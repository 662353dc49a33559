//! The smux frame: an 8-byte little-endian header and an optional payload.
//!
//! ```text
//! | ver u8 | cmd u8 | length u16 LE | sid u32 LE | payload (length bytes) |
//! ```
//!
//! Decoding is as strict as xtaci/smux v1.5.56 and later: a version other than the
//! session's, an unknown command, a payload on SYN/FIN/NOP, an UPD whose length is not 8 and
//! an UPD on a version-1 session are each a distinct [`FrameError`]. Encoding can produce none
//! of those: SYN, FIN and NOP carry no payload by construction, and an UPD on version 1 or an
//! oversized PSH is refused with an [`EncodeError`].

use bytes::{BufMut, Bytes};
use std::fmt;

/// Length of a frame header in bytes.
pub const HEADER_LEN: usize = 8;
/// The largest payload a frame can carry (the header's length field is a `u16`).
pub const MAX_PAYLOAD_LEN: usize = u16::MAX as usize;
/// Length of an UPD frame's payload: `consumed u32 LE, window u32 LE`.
pub const UPD_PAYLOAD_LEN: usize = 8;

/// The protocol version, written in every header. There is no negotiation: both sides must
/// be configured with the same one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    /// Version 1: one session-wide receive budget, no per-stream flow control.
    V1 = 1,
    /// Version 2: adds per-stream windows, reported by UPD frames.
    V2 = 2,
}

impl Version {
    /// The version's byte on the wire.
    pub const fn as_u8(self) -> u8 {
        self as u8
    }

    /// The version for a wire byte, if it names one.
    pub const fn from_u8(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(Self::V1),
            2 => Some(Self::V2),
            _ => None,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_u8())
    }
}

/// A frame's command byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cmd {
    /// Open stream `sid`.
    Syn = 0,
    /// End of data in the sender's direction of stream `sid`.
    Fin = 1,
    /// Data for stream `sid`.
    Psh = 2,
    /// Keepalive; not answered.
    Nop = 3,
    /// Version 2 flow-control report: bytes consumed and the receiver's window.
    Upd = 4,
}

impl Cmd {
    /// The command's byte on the wire.
    pub const fn as_u8(self) -> u8 {
        self as u8
    }

    /// The command for a wire byte, if it names one.
    pub const fn from_u8(byte: u8) -> Option<Self> {
        match byte {
            0 => Some(Self::Syn),
            1 => Some(Self::Fin),
            2 => Some(Self::Psh),
            3 => Some(Self::Nop),
            4 => Some(Self::Upd),
            _ => None,
        }
    }

    /// The payload lengths a valid frame of this command may have, given the session version.
    fn check_length(self, version: Version, sid: u32, length: u16) -> Result<(), FrameError> {
        match self {
            Cmd::Syn | Cmd::Fin | Cmd::Nop if length != 0 => Err(FrameError::UnexpectedPayload {
                cmd: self,
                sid,
                length,
            }),
            Cmd::Upd if version == Version::V1 => Err(FrameError::UpdOnV1 { sid }),
            Cmd::Upd if usize::from(length) != UPD_PAYLOAD_LEN => {
                Err(FrameError::BadUpdLength { sid, length })
            }
            _ => Ok(()),
        }
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Cmd::Syn => "SYN",
            Cmd::Fin => "FIN",
            Cmd::Psh => "PSH",
            Cmd::Nop => "NOP",
            Cmd::Upd => "UPD",
        })
    }
}

/// A malformed frame received from the peer. Each variant names the offending frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The header's version byte is not the session's.
    #[error(
        "frame with version {found} on a version {expected} session (cmd byte {cmd}, sid {sid}){}",
        if matches!(found, 1 | 2) { ": the peer speaks the other protocol version; set the same version on both ends" } else { "" }
    )]
    VersionMismatch {
        /// The session's version.
        expected: Version,
        /// The byte found in the header.
        found: u8,
        /// The header's command byte.
        cmd: u8,
        /// The header's stream id.
        sid: u32,
    },
    /// The command byte is not one of SYN, FIN, PSH, NOP, UPD.
    #[error("unknown command byte {cmd} (sid {sid}, length {length})")]
    UnknownCmd {
        /// The command byte.
        cmd: u8,
        /// The header's stream id.
        sid: u32,
        /// The header's payload length.
        length: u16,
    },
    /// A SYN, FIN or NOP frame announced a payload.
    #[error("{cmd} frame for sid {sid} carries a {length}-byte payload; it must carry none")]
    UnexpectedPayload {
        /// The frame's command.
        cmd: Cmd,
        /// The frame's stream id.
        sid: u32,
        /// The announced payload length.
        length: u16,
    },
    /// An UPD frame's payload is not exactly 8 bytes.
    #[error("UPD frame for sid {sid} has length {length}; it must be 8")]
    BadUpdLength {
        /// The frame's stream id.
        sid: u32,
        /// The announced payload length.
        length: u16,
    },
    /// An UPD frame arrived on a version-1 session, which has no per-stream windows.
    #[error("UPD frame for sid {sid} on a version 1 session")]
    UpdOnV1 {
        /// The frame's stream id.
        sid: u32,
    },
}

/// A frame that cannot be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A PSH payload longer than [`MAX_PAYLOAD_LEN`].
    #[error("PSH payload of {len} bytes exceeds the frame limit of 65535")]
    PayloadTooLarge {
        /// The payload's length.
        len: usize,
    },
    /// UPD frames exist only in version 2.
    #[error("UPD frames cannot be sent on a version 1 session")]
    UpdOnV1,
}

/// A decoded, validated frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The frame's command.
    pub cmd: Cmd,
    /// Payload length in bytes.
    pub length: u16,
    /// Stream id.
    pub sid: u32,
}

impl Header {
    /// Encodes the header for `version`.
    pub fn encode(&self, version: Version) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0] = version.as_u8();
        out[1] = self.cmd.as_u8();
        out[2..4].copy_from_slice(&self.length.to_le_bytes());
        out[4..8].copy_from_slice(&self.sid.to_le_bytes());
        out
    }

    /// Decodes and validates a header received on a session of `version`.
    ///
    /// The version is checked first, then the command, then the length rules for that
    /// command, in the same order as xtaci/smux.
    pub fn decode(bytes: &[u8; HEADER_LEN], version: Version) -> Result<Self, FrameError> {
        let length = u16::from_le_bytes([bytes[2], bytes[3]]);
        let sid = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
        if bytes[0] != version.as_u8() {
            return Err(FrameError::VersionMismatch {
                expected: version,
                found: bytes[0],
                cmd: bytes[1],
                sid,
            });
        }
        let cmd = Cmd::from_u8(bytes[1]).ok_or(FrameError::UnknownCmd {
            cmd: bytes[1],
            sid,
            length,
        })?;
        cmd.check_length(version, sid, length)?;
        Ok(Self { cmd, length, sid })
    }
}

/// The payload of an UPD frame: the receiver's flow-control report for one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WindowUpdate {
    /// Total bytes the receiver's application has read from the stream (wrapping `u32`).
    pub consumed: u32,
    /// The receiver's window: how many bytes may be in flight beyond `consumed`.
    pub window: u32,
}

impl WindowUpdate {
    /// Encodes the payload.
    pub fn encode(&self) -> [u8; UPD_PAYLOAD_LEN] {
        let mut out = [0u8; UPD_PAYLOAD_LEN];
        out[..4].copy_from_slice(&self.consumed.to_le_bytes());
        out[4..].copy_from_slice(&self.window.to_le_bytes());
        out
    }

    /// Decodes the payload.
    pub fn decode(bytes: &[u8; UPD_PAYLOAD_LEN]) -> Self {
        Self {
            consumed: u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
            window: u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
        }
    }
}

/// A whole frame: what the peer sent, or what we are about to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Open a stream.
    Syn {
        /// Stream id.
        sid: u32,
    },
    /// End of data in the sender's direction.
    Fin {
        /// Stream id.
        sid: u32,
    },
    /// Stream data.
    Psh {
        /// Stream id.
        sid: u32,
        /// The payload, at most [`MAX_PAYLOAD_LEN`] bytes.
        data: Bytes,
    },
    /// Keepalive.
    Nop {
        /// Stream id (0 when sent by smux).
        sid: u32,
    },
    /// Version 2 window update.
    Upd {
        /// Stream id.
        sid: u32,
        /// The report.
        update: WindowUpdate,
    },
}

impl Frame {
    /// The frame's stream id.
    pub fn sid(&self) -> u32 {
        match *self {
            Frame::Syn { sid }
            | Frame::Fin { sid }
            | Frame::Psh { sid, .. }
            | Frame::Nop { sid }
            | Frame::Upd { sid, .. } => sid,
        }
    }

    /// The frame's command.
    pub fn cmd(&self) -> Cmd {
        match self {
            Frame::Syn { .. } => Cmd::Syn,
            Frame::Fin { .. } => Cmd::Fin,
            Frame::Psh { .. } => Cmd::Psh,
            Frame::Nop { .. } => Cmd::Nop,
            Frame::Upd { .. } => Cmd::Upd,
        }
    }

    fn payload_len(&self) -> usize {
        match self {
            Frame::Psh { data, .. } => data.len(),
            Frame::Upd { .. } => UPD_PAYLOAD_LEN,
            _ => 0,
        }
    }

    /// The number of bytes [`Frame::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.payload_len()
    }

    /// Appends the frame, encoded for a session of `version`, to `dst`.
    ///
    /// Nothing is written when an error is returned.
    pub fn encode(&self, version: Version, dst: &mut impl BufMut) -> Result<(), EncodeError> {
        let len = self.payload_len();
        if len > MAX_PAYLOAD_LEN {
            return Err(EncodeError::PayloadTooLarge { len });
        }
        if matches!(self, Frame::Upd { .. }) && version == Version::V1 {
            return Err(EncodeError::UpdOnV1);
        }
        let header = Header {
            cmd: self.cmd(),
            // Checked against MAX_PAYLOAD_LEN above.
            length: len as u16,
            sid: self.sid(),
        };
        dst.put_slice(&header.encode(version));
        match self {
            Frame::Psh { data, .. } => dst.put_slice(data),
            Frame::Upd { update, .. } => dst.put_slice(&update.encode()),
            _ => {}
        }
        Ok(())
    }

    /// Decodes one frame from the front of `src`, received on a session of `version`.
    ///
    /// Returns `Ok(None)` when `src` holds only part of a frame (nothing is consumed), or
    /// the frame and the number of bytes it took. It never reads past `src`. A PSH payload is
    /// copied out of `src`; the engine has its own zero-copy path.
    pub fn decode(src: &[u8], version: Version) -> Result<Option<(Frame, usize)>, FrameError> {
        let Some(head) = src.first_chunk::<HEADER_LEN>() else {
            return Ok(None);
        };
        let header = Header::decode(head, version)?;
        let total = HEADER_LEN + usize::from(header.length);
        let Some(payload) = src.get(HEADER_LEN..total) else {
            return Ok(None);
        };
        let sid = header.sid;
        let frame = match header.cmd {
            Cmd::Syn => Frame::Syn { sid },
            Cmd::Fin => Frame::Fin { sid },
            Cmd::Nop => Frame::Nop { sid },
            Cmd::Psh => Frame::Psh {
                sid,
                data: Bytes::copy_from_slice(payload),
            },
            Cmd::Upd => {
                let bytes = payload
                    .first_chunk::<UPD_PAYLOAD_LEN>()
                    .expect("UPD length was validated to be 8");
                Frame::Upd {
                    sid,
                    update: WindowUpdate::decode(bytes),
                }
            }
        };
        Ok(Some((frame, total)))
    }
}

#[cfg(test)]
mod tests;
