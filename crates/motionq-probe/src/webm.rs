//! WebM / Matroska probing: the EBML header's DocType, then the Segment's `Info` (timecode
//! scale, duration) and `Tracks` (first video track: codec, pixel size), which muxers write
//! before the first `Cluster`. Other Segment children (SeekHead, Void, Tags, Cues...) are skipped
//! by their sizes, like `mdat` in MP4.

use crate::error::ProbeError;
use crate::fetch::Remote;
use crate::{Container, ProbeOptions, VideoInfo};

pub(crate) const EBML_MAGIC: [u8; 4] = [0x1a, 0x45, 0xdf, 0xa3];

const SEGMENT: u32 = 0x1853_8067;
const INFO: u32 = 0x1549_a966;
const TRACKS: u32 = 0x1654_ae6b;
const CLUSTER: u32 = 0x1f43_b675;
const DOC_TYPE: u32 = 0x4282;
const TIMECODE_SCALE: u32 = 0x2a_d7b1;
const DURATION: u32 = 0x4489;
const TRACK_ENTRY: u32 = 0xae;
const TRACK_TYPE: u32 = 0x83;
const CODEC_ID: u32 = 0x86;
const VIDEO: u32 = 0xe0;
const PIXEL_WIDTH: u32 = 0xb0;
const PIXEL_HEIGHT: u32 = 0xba;
/// Largest `Info`, `Tracks` or EBML header body read.
const MAX_ELEMENT: u64 = 1 << 20;
/// Segment children visited before giving up.
const MAX_CHILDREN: u32 = 1024;

/// An element header: ID (with its length marker bits, as written in the spec), data size
/// (`None`: unknown, as live streams write for Segment and Cluster), header length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Element {
    pub id: u32,
    pub size: Option<u64>,
    pub header_len: u64,
}

/// Parses the element header at the start of `buf`. `Ok(None)`: `buf` is too short.
pub(crate) fn parse_element(buf: &[u8]) -> Result<Option<Element>, String> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let id_len = first.leading_zeros() as usize + 1;
    if id_len > 4 {
        return Err(format!("invalid element ID byte {first:#04x}"));
    }
    let Some(size_first) = buf.get(id_len).copied() else {
        return Ok(None);
    };
    let size_len = size_first.leading_zeros() as usize + 1;
    if size_len > 8 {
        return Err("invalid element size (no length marker)".into());
    }
    if buf.len() < id_len + size_len {
        return Ok(None);
    }
    let id = buf[..id_len]
        .iter()
        .fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
    // The value bits of the first byte are those after the length marker (none for 8 bytes).
    let value_mask = (0xffu16 >> size_len) as u8;
    let mut size = u64::from(size_first & value_mask);
    let mut all_ones = size == u64::from(value_mask);
    for &b in &buf[id_len + 1..id_len + size_len] {
        size = (size << 8) | u64::from(b);
        all_ones &= b == 0xff;
    }
    Ok(Some(Element {
        id,
        size: (!all_ones).then_some(size),
        header_len: (id_len + size_len) as u64,
    }))
}

/// Child elements of a master element body (all of known size).
fn children(body: &[u8]) -> impl Iterator<Item = Result<(u32, &[u8]), String>> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        if at >= body.len() {
            return None;
        }
        let parsed = match parse_element(&body[at..]) {
            Ok(Some(e)) => e,
            Ok(None) => {
                at = body.len();
                return Some(Err("a child element header is cut".into()));
            }
            Err(e) => {
                at = body.len();
                return Some(Err(e));
            }
        };
        let start = at + parsed.header_len as usize;
        let Some(size) = parsed.size else {
            at = body.len();
            return Some(Err(format!(
                "element {:#x} of unknown size inside a master element",
                parsed.id
            )));
        };
        let end = (start as u64).saturating_add(size);
        if end > body.len() as u64 {
            at = body.len();
            return Some(Err(format!(
                "element {:#x} runs past its parent",
                parsed.id
            )));
        }
        at = end as usize;
        Some(Ok((parsed.id, &body[start..end as usize])))
    })
}

fn uint(data: &[u8]) -> Result<u64, String> {
    if data.len() > 8 {
        return Err(format!("{}-byte unsigned integer", data.len()));
    }
    Ok(data.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

fn float(data: &[u8]) -> Result<f64, String> {
    match data.len() {
        0 => Ok(0.0),
        4 => Ok(f64::from(f32::from_be_bytes(
            data.try_into().expect("4 bytes"),
        ))),
        8 => Ok(f64::from_be_bytes(data.try_into().expect("8 bytes"))),
        n => Err(format!("{n}-byte float")),
    }
}

/// `Info`: duration in seconds (`None` when absent, as in live recordings).
pub(crate) fn parse_info(body: &[u8]) -> Result<Option<f64>, String> {
    let mut scale = 1_000_000u64; // nanoseconds per timecode unit (the spec default)
    let mut duration = None;
    for child in children(body) {
        match child? {
            (TIMECODE_SCALE, data) => scale = uint(data)?,
            (DURATION, data) => duration = Some(float(data)?),
            _ => {}
        }
    }
    Ok(duration
        .filter(|d| d.is_finite() && *d > 0.0)
        .map(|d| d * scale as f64 / 1e9))
}

/// First video track of `Tracks`: (codec ID, pixel width, pixel height).
pub(crate) fn parse_tracks(body: &[u8]) -> Result<Option<(String, u32, u32)>, String> {
    for child in children(body) {
        let (id, entry) = child?;
        if id != TRACK_ENTRY {
            continue;
        }
        let (mut kind, mut codec, mut size) = (0, String::new(), None);
        for field in children(entry) {
            match field? {
                (TRACK_TYPE, data) => kind = uint(data)?,
                (CODEC_ID, data) => {
                    codec = String::from_utf8_lossy(data)
                        .trim_end_matches('\0')
                        .to_string()
                }
                (VIDEO, video) => {
                    let (mut w, mut h) = (0, 0);
                    for v in children(video) {
                        match v? {
                            (PIXEL_WIDTH, data) => w = uint(data)?,
                            (PIXEL_HEIGHT, data) => h = uint(data)?,
                            _ => {}
                        }
                    }
                    size = Some((w, h));
                }
                _ => {}
            }
        }
        // TrackType 1 is video.
        if kind == 1 {
            let (w, h) = size.ok_or("video track without a Video element")?;
            let w = u32::try_from(w).map_err(|_| "pixel width out of range")?;
            let h = u32::try_from(h).map_err(|_| "pixel height out of range")?;
            return Ok(Some((codec, w, h)));
        }
    }
    Ok(None)
}

pub(crate) async fn probe(
    remote: &mut Remote<'_>,
    shown: &str,
    options: &ProbeOptions,
) -> Result<VideoInfo, ProbeError> {
    let truncated = |detail: String| ProbeError::Truncated {
        url: shown.into(),
        detail,
    };
    let corrupt = |detail: String| ProbeError::Corrupt {
        url: shown.into(),
        detail,
    };

    // Reads a whole element (header and body) at `offset`; `None` at end of file.
    let mut doc_type = None;
    let mut info: Option<Option<f64>> = None;
    let mut track: Option<(String, u32, u32)> = None;
    let mut offset = 0u64;
    let mut segment_end = u64::MAX;
    let mut in_segment = false;
    for _ in 0..MAX_CHILDREN {
        if offset >= segment_end || remote.total().is_some_and(|t| offset >= t) {
            break;
        }
        let buf = remote.read_at(offset, 12).await?;
        if buf.is_empty() {
            break;
        }
        let element = match parse_element(buf) {
            Ok(Some(e)) => e,
            Ok(None) => {
                return Err(truncated(format!(
                    "the file ends inside an element header at offset {offset}"
                )))
            }
            Err(e) => return Err(corrupt(format!("at offset {offset}: {e}"))),
        };
        let data_start = offset + element.header_len;
        if element.id == SEGMENT && !in_segment {
            // Descend: the Segment's children are what we walk.
            in_segment = true;
            segment_end = element
                .size
                .map_or(u64::MAX, |s| data_start.saturating_add(s));
            offset = data_start;
            continue;
        }
        if element.id == CLUSTER {
            break; // media data starts: Info and Tracks come before it
        }
        let Some(size) = element.size else {
            break; // an unknown-size element cannot be skipped
        };
        let end = data_start.saturating_add(size);
        if let Some(total) = remote.total() {
            if end > total {
                return Err(truncated(format!(
                    "element {:#x} at offset {offset} declares {size} bytes, but the file has only {} after it",
                    element.id,
                    total.saturating_sub(data_start)
                )));
            }
        }
        let wanted =
            matches!(element.id, INFO | TRACKS) || (element.id == 0x1a45_dfa3 && offset == 0);
        if wanted {
            if size > MAX_ELEMENT.min(options.max_bytes) {
                return Err(ProbeError::TooLarge {
                    url: shown.into(),
                    detail: format!("element {:#x} of {size} bytes", element.id),
                });
            }
            let data = remote.read_at(data_start, size).await?;
            if (data.len() as u64) < size {
                return Err(truncated(format!(
                    "element {:#x} at offset {offset} is cut short",
                    element.id
                )));
            }
            match element.id {
                INFO => info = Some(parse_info(data).map_err(&corrupt)?),
                TRACKS => track = parse_tracks(data).map_err(&corrupt)?,
                _ => {
                    for child in children(data) {
                        if let (DOC_TYPE, value) = child.map_err(&corrupt)? {
                            doc_type = Some(String::from_utf8_lossy(value).to_string());
                        }
                    }
                }
            }
        }
        if info.is_some() && track.is_some() {
            break;
        }
        offset = end;
    }

    let Some((codec, width, height)) = track else {
        return Err(ProbeError::NotVideo {
            url: shown.into(),
            detail: "no video track before the media data (Tracks missing or audio only)".into(),
        });
    };
    let doc_type = doc_type.unwrap_or_else(|| "matroska".into());
    Ok(VideoInfo {
        container: Container::Other(doc_type.clone()),
        brand: Some(doc_type),
        codec: Some(codec),
        duration_s: info.flatten(),
        width,
        height,
        bytes: remote.total(),
        fragmented: false,
        bytes_read: remote.bytes_read,
        requests: remote.requests,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn element_headers() {
        // EBML magic with a 1-byte size of 31.
        let e = parse_element(&[0x1a, 0x45, 0xdf, 0xa3, 0x9f])
            .unwrap()
            .unwrap();
        assert_eq!((e.id, e.size, e.header_len), (0x1a45_dfa3, Some(31), 5));
        // Segment with an 8-byte size field of all ones: unknown size.
        let mut unknown = vec![0x18, 0x53, 0x80, 0x67, 0x01];
        unknown.extend_from_slice(&[0xff; 7]);
        assert_eq!(parse_element(&unknown).unwrap().unwrap().size, None);
        assert_eq!(parse_element(&[0x18, 0x53]).unwrap(), None);
        assert!(parse_element(&[0x00, 0x81]).is_err());
    }

    #[test]
    fn info_duration_uses_the_timecode_scale() {
        // TimecodeScale 1_000_000 (3 bytes), Duration 2500.0 as a 4-byte float.
        let mut body = vec![0x2a, 0xd7, 0xb1, 0x83, 0x0f, 0x42, 0x40];
        body.extend_from_slice(&[0x44, 0x89, 0x84]);
        body.extend_from_slice(&2500.0f32.to_be_bytes());
        assert_eq!(parse_info(&body).unwrap(), Some(2.5));
        assert_eq!(parse_info(&[]).unwrap(), None);
    }
}
