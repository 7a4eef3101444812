//! ISO base media file format (MP4, MOV) box parsing on byte slices: box headers, `ftyp`,
//! and the facts inside `moov`. No I/O here; `video.rs` decides which bytes to fetch.

/// A box header: four-character type, header length (8, or 16 with a 64-bit size) and the
/// total box size (`None`: size 0, "extends to the end of the file/parent").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BoxHeader {
    pub kind: [u8; 4],
    pub header_len: u64,
    pub size: Option<u64>,
}

impl BoxHeader {
    pub fn name(&self) -> String {
        fourcc(&self.kind)
    }
}

pub(crate) fn fourcc(kind: &[u8]) -> String {
    kind.iter()
        .map(|&b| {
            if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '?'
            }
        })
        .collect()
}

/// Parses the header at the start of `buf`. `Ok(None)`: `buf` is too short to tell.
pub(crate) fn parse_header(buf: &[u8]) -> Result<Option<BoxHeader>, String> {
    if buf.len() < 8 {
        return Ok(None);
    }
    let size32 = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let kind = [buf[4], buf[5], buf[6], buf[7]];
    let (header_len, size) = match size32 {
        0 => (8, None),
        1 => {
            if buf.len() < 16 {
                return Ok(None);
            }
            let large = u64::from_be_bytes(buf[8..16].try_into().expect("8 bytes"));
            (16, Some(large))
        }
        n => (8, Some(u64::from(n))),
    };
    if let Some(size) = size {
        if size < header_len {
            return Err(format!(
                "box '{}' declares {size} bytes, less than its own {header_len}-byte header",
                fourcc(&kind)
            ));
        }
    }
    Ok(Some(BoxHeader {
        kind,
        header_len,
        size,
    }))
}

/// Whether `kind` looks like a box type at all: four printable ASCII characters (© allowed,
/// as in QuickTime metadata).
pub(crate) fn plausible_kind(kind: &[u8; 4]) -> bool {
    kind.iter().all(|&b| (0x20..0x7f).contains(&b) || b == 0xa9)
}

/// Box types that may open an MP4/MOV file.
pub(crate) fn is_leading_box(kind: &[u8; 4]) -> bool {
    matches!(
        kind,
        b"ftyp"
            | b"moov"
            | b"mdat"
            | b"free"
            | b"skip"
            | b"wide"
            | b"pnot"
            | b"uuid"
            | b"styp"
            | b"sidx"
            | b"pdin"
            | b"junk"
    )
}

/// `ftyp` contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ftyp {
    pub major: [u8; 4],
    pub compatible: Vec<[u8; 4]>,
}

pub(crate) fn parse_ftyp(body: &[u8]) -> Result<Ftyp, String> {
    if body.len() < 8 {
        return Err(format!("ftyp box of {} bytes is too short", body.len()));
    }
    let major = body[0..4].try_into().expect("4 bytes");
    let compatible = body[8..]
        .chunks_exact(4)
        .map(|c| c.try_into().expect("4 bytes"))
        .collect();
    Ok(Ftyp { major, compatible })
}

/// Iterates the child boxes of a container body.
fn children(body: &[u8]) -> impl Iterator<Item = Result<([u8; 4], &[u8]), String>> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        if at >= body.len() {
            return None;
        }
        let rest = &body[at..];
        if rest.len() < 8 && rest.iter().all(|&b| b == 0) {
            // QuickTime allows a 32-bit zero terminator at the end of a container.
            at = body.len();
            return None;
        }
        let header = match parse_header(rest) {
            Ok(Some(h)) => h,
            Ok(None) => {
                at = body.len();
                return Some(Err(format!(
                    "a child box header is cut at {} bytes",
                    rest.len()
                )));
            }
            Err(e) => {
                at = body.len();
                return Some(Err(e));
            }
        };
        let size = header.size.unwrap_or(rest.len() as u64);
        if size > rest.len() as u64 {
            at = body.len();
            return Some(Err(format!(
                "box '{}' declares {size} bytes but its parent has only {} left",
                header.name(),
                rest.len()
            )));
        }
        let child = &rest[header.header_len as usize..size as usize];
        at += size as usize;
        Some(Ok((header.kind, child)))
    })
}

fn child<'a>(body: &'a [u8], kind: &[u8; 4]) -> Result<Option<&'a [u8]>, String> {
    for c in children(body) {
        let (k, b) = c?;
        if &k == kind {
            return Ok(Some(b));
        }
    }
    Ok(None)
}

fn be_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// (timescale, duration) from a full box laid out like `mvhd`/`mdhd`: version, flags, then
/// creation and modification times (32 or 64 bit), timescale, duration (32 or 64 bit).
/// An all-ones duration means "unknown" and is returned as `None`.
fn time_box(body: &[u8], name: &str) -> Result<(u32, Option<u64>), String> {
    let short = || format!("{name} box of {} bytes is too short", body.len());
    let version = *body.first().ok_or_else(short)?;
    let (timescale, duration) = match version {
        0 => {
            let d = be_u32(body, 16).ok_or_else(short)?;
            (
                be_u32(body, 12).ok_or_else(short)?,
                (d != u32::MAX).then_some(u64::from(d)),
            )
        }
        1 => {
            let d = be_u64(body, 24).ok_or_else(short)?;
            (
                be_u32(body, 20).ok_or_else(short)?,
                (d != u64::MAX).then_some(d),
            )
        }
        v => return Err(format!("{name} version {v} is unknown")),
    };
    Ok((timescale, duration))
}

/// What the prober learns from one video track.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TrackFacts {
    /// Display size after the track matrix (90°/270° rotation swaps the axes).
    pub width: u32,
    pub height: u32,
    /// Sample entry four-character code (`avc1`, `hvc1`, ...).
    pub codec: Option<String>,
    /// Media duration in seconds from `mdhd`, when known and non-zero.
    pub media_seconds: Option<f64>,
    /// `tkhd` track ID (movie fragments refer to the track by it).
    pub track_id: u32,
    /// `mdhd` timescale (units per second of fragment sample durations); 0 if unknown.
    pub timescale: u32,
}

/// What the prober learns from `moov`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MoovFacts {
    /// Presentation duration in seconds; `None` when no header knows it.
    pub seconds: Option<f64>,
    /// `mvex` present: samples live in movie fragments.
    pub fragmented: bool,
    /// The first video track (handler `vide`), if any.
    pub video: Option<TrackFacts>,
    /// `mvex/trex` default sample durations: (track ID, duration).
    pub trex_durations: Vec<(u32, u32)>,
}

/// Parses the body of a `moov` box (without its header).
pub(crate) fn parse_moov(moov: &[u8]) -> Result<MoovFacts, String> {
    let mut movie: Option<(u32, Option<u64>)> = None;
    let mut fragment_duration: Option<u64> = None;
    let mut fragmented = false;
    let mut video = None;
    let mut trex_durations = Vec::new();
    for c in children(moov) {
        let (kind, body) = c?;
        match &kind {
            b"mvhd" => movie = Some(time_box(body, "mvhd")?),
            b"mvex" => {
                fragmented = true;
                if let Some(mehd) = child(body, b"mehd")? {
                    fragment_duration = match mehd.first() {
                        Some(0) => be_u32(mehd, 4).map(u64::from),
                        Some(1) => be_u64(mehd, 4),
                        _ => None,
                    };
                }
                for c in children(body) {
                    let (kind, trex) = c?;
                    if &kind == b"trex" {
                        if let Some(pair) = be_u32(trex, 4).zip(be_u32(trex, 12)) {
                            trex_durations.push(pair);
                        }
                    }
                }
            }
            b"trak" if video.is_none() => video = parse_video_trak(body)?,
            b"cmov" => return Err("compressed movie header (cmov)".into()),
            _ => {}
        }
    }
    let (timescale, duration) = movie.ok_or("moov has no mvhd box")?;
    if timescale == 0 {
        return Err("mvhd timescale is 0".into());
    }
    let to_seconds = |d: u64| d as f64 / f64::from(timescale);
    let seconds = match duration {
        Some(d) if d > 0 => Some(to_seconds(d)),
        // Fragmented files keep 0 in mvhd; mehd (optional) holds the total.
        _ if fragmented => fragment_duration.filter(|d| *d > 0).map(to_seconds),
        // A progressive file with no movie duration: trust the track's own header.
        _ => video
            .as_ref()
            .and_then(|v: &TrackFacts| v.media_seconds)
            .or(Some(0.0)),
    };
    Ok(MoovFacts {
        seconds,
        fragmented,
        video,
        trex_durations,
    })
}

/// `Some` when the track is a video track.
fn parse_video_trak(trak: &[u8]) -> Result<Option<TrackFacts>, String> {
    let Some(mdia) = child(trak, b"mdia")? else {
        return Ok(None);
    };
    let handler = child(mdia, b"hdlr")?.and_then(|h| h.get(8..12));
    if handler != Some(b"vide") {
        return Ok(None);
    }
    let (timescale, media_seconds) = match child(mdia, b"mdhd")? {
        Some(mdhd) => match time_box(mdhd, "mdhd")? {
            (ts, Some(d)) if ts > 0 && d > 0 => (ts, Some(d as f64 / f64::from(ts))),
            (ts, _) => (ts, None),
        },
        None => (0, None),
    };

    // Coded size from the first sample entry: 8-byte entry header, 24 bytes of reserved and
    // predefined fields, then width and height as u16.
    let entry = child(mdia, b"minf")?
        .map(|minf| child(minf, b"stbl"))
        .transpose()?
        .flatten()
        .map(|stbl| child(stbl, b"stsd"))
        .transpose()?
        .flatten()
        .and_then(|stsd| stsd.get(8..));
    let (codec, coded) = match entry {
        Some(e) if e.len() >= 36 => (Some(fourcc(&e[4..8])), be_u16(e, 32).zip(be_u16(e, 34))),
        _ => (None, None),
    };

    let tkhd = child(trak, b"tkhd")?.ok_or("video trak has no tkhd box")?;
    let base = match tkhd.first() {
        Some(0) => 40, // 4 version/flags + 20 bytes of times/ids/duration + 16 reserved/layer/...
        Some(1) => 52, // 64-bit times and duration
        Some(v) => return Err(format!("tkhd version {v} is unknown")),
        None => return Err("tkhd box is empty".into()),
    };
    let short = || format!("tkhd box of {} bytes is too short", tkhd.len());
    let track_id = be_u32(tkhd, if base == 40 { 12 } else { 20 }).ok_or_else(short)?;
    let matrix_a = be_u32(tkhd, base).ok_or_else(short)?;
    let matrix_d = be_u32(tkhd, base + 16).ok_or_else(short)?;
    let display_w = be_u32(tkhd, base + 36).ok_or_else(short)? >> 16;
    let display_h = be_u32(tkhd, base + 40).ok_or_else(short)? >> 16;
    let (mut width, mut height) = if display_w > 0 && display_h > 0 {
        (display_w, display_h)
    } else {
        let (w, h) = coded.ok_or("video track has neither a tkhd size nor a sample entry size")?;
        (u32::from(w), u32::from(h))
    };
    // A 90° or 270° rotation matrix has zero on the diagonal: the picture is shown turned.
    if matrix_a == 0 && matrix_d == 0 {
        std::mem::swap(&mut width, &mut height);
    }
    Ok(Some(TrackFacts {
        width,
        height,
        codec,
        media_seconds,
        track_id,
        timescale,
    }))
}

/// Sum of the sample durations of `track_id` in one `moof` body, in media timescale units.
/// Durations come from `trun` per sample, else the `tfhd` default, else `trex_default`.
pub(crate) fn fragment_ticks(
    moof: &[u8],
    track_id: u32,
    trex_default: Option<u32>,
) -> Result<u64, String> {
    let mut ticks = 0u64;
    for c in children(moof) {
        let (kind, traf) = c?;
        if &kind != b"traf" {
            continue;
        }
        let tfhd = child(traf, b"tfhd")?.ok_or("traf without tfhd")?;
        let flags = be_u32(tfhd, 0).ok_or("tfhd too short")? & 0x00ff_ffff;
        if be_u32(tfhd, 4) != Some(track_id) {
            continue;
        }
        // Optional tfhd fields, in order: base-data-offset (8 bytes), sample-description-index,
        // default-sample-duration.
        let mut at = 8;
        if flags & 0x01 != 0 {
            at += 8;
        }
        if flags & 0x02 != 0 {
            at += 4;
        }
        let tfhd_default = if flags & 0x08 != 0 {
            Some(be_u32(tfhd, at).ok_or("tfhd too short")?)
        } else {
            None
        };
        for c in children(traf) {
            let (kind, trun) = c?;
            if &kind != b"trun" {
                continue;
            }
            let short = || "trun too short".to_string();
            let flags = be_u32(trun, 0).ok_or_else(short)? & 0x00ff_ffff;
            let count = be_u32(trun, 4).ok_or_else(short)?;
            if flags & 0x100 == 0 {
                let each = tfhd_default
                    .or(trex_default)
                    .ok_or("fragment samples have no duration anywhere")?;
                ticks += u64::from(count) * u64::from(each);
                continue;
            }
            let mut at = 8;
            if flags & 0x01 != 0 {
                at += 4; // data_offset
            }
            if flags & 0x04 != 0 {
                at += 4; // first_sample_flags
            }
            let per_sample = 4 * [0x100, 0x200, 0x400, 0x800]
                .iter()
                .filter(|f| flags & **f != 0)
                .count();
            for i in 0..count as usize {
                ticks += u64::from(be_u32(trun, at + i * per_sample).ok_or_else(short)?);
            }
        }
    }
    Ok(ticks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut out = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn headers_with_large_and_zero_sizes() {
        let mut large = vec![0, 0, 0, 1];
        large.extend_from_slice(b"mdat");
        large.extend_from_slice(&(5_000_000_000u64).to_be_bytes());
        let h = parse_header(&large).unwrap().unwrap();
        assert_eq!((h.header_len, h.size), (16, Some(5_000_000_000)));
        assert_eq!(parse_header(&large[..12]).unwrap(), None);
        let zero = parse_header(b"\0\0\0\0mdat").unwrap().unwrap();
        assert_eq!(zero.size, None);
        assert!(parse_header(b"\0\0\0\x04moov").is_err());
    }

    fn mvhd_v1(timescale: u32, duration: u64) -> Vec<u8> {
        let mut b = vec![1, 0, 0, 0];
        b.extend_from_slice(&[0; 16]);
        b.extend_from_slice(&timescale.to_be_bytes());
        b.extend_from_slice(&duration.to_be_bytes());
        b.extend_from_slice(&[0; 80]);
        bx(b"mvhd", &b)
    }

    fn tkhd_v0(a: u32, d: u32, w: u32, h: u32) -> Vec<u8> {
        let mut b = vec![0u8; 84];
        b[40..44].copy_from_slice(&a.to_be_bytes());
        b[56..60].copy_from_slice(&d.to_be_bytes());
        b[76..80].copy_from_slice(&(w << 16).to_be_bytes());
        b[80..84].copy_from_slice(&(h << 16).to_be_bytes());
        bx(b"tkhd", &b)
    }

    fn video_trak(tkhd: Vec<u8>) -> Vec<u8> {
        let mut hdlr = vec![0u8; 8];
        hdlr.extend_from_slice(b"vide");
        hdlr.extend_from_slice(&[0; 13]);
        let mdia = bx(b"mdia", &bx(b"hdlr", &hdlr));
        bx(b"trak", &[tkhd, mdia].concat())
    }

    #[test]
    fn version_1_mvhd_and_rotated_track() {
        let rotated = tkhd_v0(0, 0, 1920, 1080); // 90°: a = d = 0
        let moov = [mvhd_v1(600, 600 * 45), video_trak(rotated)].concat();
        let facts = parse_moov(&moov).unwrap();
        assert_eq!(facts.seconds, Some(45.0));
        assert!(!facts.fragmented);
        let video = facts.video.unwrap();
        assert_eq!((video.width, video.height), (1080, 1920));
        assert_eq!(video.codec, None);
    }

    #[test]
    fn fragmented_without_mehd_has_unknown_duration() {
        let unity = tkhd_v0(0x1_0000, 0x1_0000, 720, 1280);
        let mvex = bx(b"mvex", &bx(b"trex", &[0; 24]));
        let moov = [mvhd_v1(1000, 0), video_trak(unity), mvex].concat();
        let facts = parse_moov(&moov).unwrap();
        assert!(facts.fragmented);
        assert_eq!(facts.seconds, None);
        assert_eq!(facts.video.map(|v| (v.width, v.height)), Some((720, 1280)));
    }

    #[test]
    fn malformed_moov_is_reported() {
        assert!(parse_moov(&mvhd_v1(0, 10))
            .unwrap_err()
            .contains("timescale"));
        assert!(parse_moov(&bx(b"free", &[])).unwrap_err().contains("mvhd"));
        let mut overlong = mvhd_v1(1000, 10);
        overlong[3] += 50;
        assert!(parse_moov(&overlong).unwrap_err().contains("declares"));
    }

    #[test]
    fn ftyp_brands() {
        let f = parse_ftyp(b"qt  \0\0\x02\0qt  ").unwrap();
        assert_eq!(&f.major, b"qt  ");
        assert_eq!(f.compatible, vec![*b"qt  "]);
        assert!(parse_ftyp(b"isom").is_err());
    }
}
