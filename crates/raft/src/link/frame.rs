//! Frames on a node link: a 4-byte big-endian length, then a bincode value. The length is
//! checked before anything is allocated, so a peer cannot make us reserve more than
//! [`MAX_FRAME`].

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest frame: a whole message body (up to the message size limit) plus headroom, or a
/// snapshot chunk.
pub const MAX_FRAME: usize = 256 * 1024 * 1024;

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The socket failed or closed.
    #[error("link i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The peer announced a frame over [`MAX_FRAME`].
    #[error("frame of {0} bytes is over the limit")]
    TooLarge(usize),
    /// The bytes are not a valid message.
    #[error("undecodable frame: {0}")]
    Decode(String),
}

/// bincode's standard layout, with a limit: a length inside a frame (of a string, a body, a
/// list) cannot make the decoder reserve more than [`MAX_FRAME`] in all. Without it a 16-byte
/// frame announcing a 2^62-byte string aborted the node on the allocation (found by fuzzing).
fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_FRAME>()
}

/// Encodes `value` as one frame (length prefix included).
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, FrameError> {
    let mut out = vec![0u8; 4];
    bincode::serde::encode_into_std_write(value, &mut out, config())
        .map_err(|e| FrameError::Decode(e.to_string()))?;
    let len = out.len() - 4;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    out[..4].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(out)
}

/// Writes one encoded frame.
pub async fn write<W: AsyncWrite + Unpin>(writer: &mut W, frame: &[u8]) -> Result<(), FrameError> {
    writer.write_all(frame).await?;
    writer.flush().await?;
    Ok(())
}

/// Reads one frame; `Ok(None)` on a clean end of stream between frames.
pub async fn read<R: AsyncRead + Unpin, T: DeserializeOwned>(
    reader: &mut R,
) -> Result<Option<T>, FrameError> {
    let mut len = [0u8; 4];
    match reader.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).await?;
    bincode::serde::decode_from_slice(&body, config())
        .map(|(value, _)| Some(value))
        .map_err(|e| FrameError::Decode(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trip_and_limits() {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        let frame = encode(&(7u64, "hello".to_string())).unwrap();
        write(&mut a, &frame).await.unwrap();
        let got: Option<(u64, String)> = read(&mut b).await.unwrap();
        assert_eq!(got, Some((7, "hello".into())));

        // An oversized length is refused before any allocation.
        write(&mut a, &u32::MAX.to_be_bytes()).await.unwrap();
        let refused = read::<_, (u64, String)>(&mut b).await;
        assert!(matches!(refused, Err(FrameError::TooLarge(_))));

        // A clean close between frames is the end, not an error.
        drop(a);
        assert!(read::<_, (u64, String)>(&mut b).await.unwrap().is_none());
    }

    /// fuzz/regressions/link_frame/huge-string-length: a `Join` whose address announces
    /// 2^62 bytes is refused, not allocated.
    #[tokio::test]
    async fn a_length_inside_a_frame_cannot_reserve_more_than_the_limit() {
        let body = [0, 6, 1, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0x40];
        let mut frame = (body.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&body);
        let got =
            read::<_, crate::link::rpc::Tagged<crate::link::rpc::Request>>(&mut frame.as_slice())
                .await;
        assert!(matches!(got, Err(FrameError::Decode(_))), "{got:?}");
    }

    #[tokio::test]
    async fn garbage_is_a_decode_error() {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        write(&mut a, &[0, 0, 0, 3, 0xff, 0xff, 0xff])
            .await
            .unwrap();
        let got = read::<_, (u64, String)>(&mut b).await;
        assert!(matches!(got, Err(FrameError::Decode(_))));
    }
}
