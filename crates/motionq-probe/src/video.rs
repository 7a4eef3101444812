//! Video probing: walk the top-level boxes by their sizes, fetch `moov` wherever it is.

use url::Url;

use crate::bmff::{self, BoxHeader};
use crate::error::{redact, ProbeError};
use crate::fetch::Remote;
use crate::{Container, ProbeOptions, VideoInfo};

/// Upper bound on top-level boxes visited, against files made of millions of tiny boxes.
const MAX_TOP_LEVEL_BOXES: u32 = 4096;
/// Boxes checked after `moov` (to see that `mdat` of a faststart file is complete).
const BOXES_AFTER_MOOV: u32 = 1;
/// Size of ranged reads while walking fragments (a `moof` is typically well under 1 KB).
const FRAGMENT_READAHEAD: u64 = 4096;
/// A `moof` larger than this is not read when summing fragment durations.
const MAX_MOOF_BYTES: u64 = 1 << 20;
/// A remaining tail up to this many times `initial_bytes` is read in one request.
const TAIL_FACTOR: u64 = 4;
/// Bytes of `ftyp` worth reading (major brand plus plenty of compatible brands).
const FTYP_READ: u64 = 1024;

pub(crate) async fn probe(
    client: &reqwest::Client,
    url: &Url,
    options: &ProbeOptions,
) -> Result<VideoInfo, ProbeError> {
    let shown = redact(url);
    let truncated = |detail: String| ProbeError::Truncated {
        url: shown.clone(),
        detail,
    };
    let corrupt = |detail: String| ProbeError::Corrupt {
        url: shown.clone(),
        detail,
    };

    let mut remote = Remote::open(client, url, options.max_bytes, options.initial_bytes).await?;
    let head = remote.read_at(0, 16).await?.to_vec();
    if head.starts_with(&crate::webm::EBML_MAGIC) {
        return crate::webm::probe(&mut remote, &shown, options).await;
    }
    if let Some(err) = sniff_non_bmff(&head, &shown) {
        return Err(err);
    }

    let mut offset = 0u64;
    let mut ftyp = None;
    let mut moov = None;
    let mut after_moov = 0;
    let mut previous: Option<(String, u64)> = None;
    let mut moov_end = 0;
    for visited in 0.. {
        if visited >= MAX_TOP_LEVEL_BOXES {
            return Err(corrupt(format!(
                "more than {MAX_TOP_LEVEL_BOXES} top-level boxes before the end of the header"
            )));
        }
        // A short tail (typically the moov of a moov-at-end file, once mdat is skipped) is
        // fetched whole with its header, saving a request.
        let want = match remote.total() {
            Some(total)
                if !remote.holds(offset, 16)
                    && total.saturating_sub(offset)
                        <= options.initial_bytes.saturating_mul(TAIL_FACTOR) =>
            {
                total.saturating_sub(offset).max(16)
            }
            _ => 16,
        };
        let buf = remote.read_at(offset, want).await?;
        if buf.is_empty() {
            // End of file. Only reachable past the end when the previous box was skipped in a
            // body of unknown length that then ended early.
            match (remote.total(), previous) {
                (Some(total), Some((name, start))) if offset > total => {
                    return Err(truncated(format!(
                        "box '{name}' at offset {start} declares {} bytes, but the file has only {} after it",
                        offset - start,
                        total.saturating_sub(start)
                    )))
                }
                _ => break,
            }
        }
        let header: BoxHeader = match bmff::parse_header(buf) {
            Ok(Some(h)) => h,
            Ok(None) => {
                return Err(truncated(format!(
                    "the file ends inside a box header at offset {offset}"
                )))
            }
            Err(e) => return Err(corrupt(format!("at offset {offset}: {e}"))),
        };
        if !bmff::plausible_kind(&header.kind) {
            return Err(corrupt(format!(
                "no box at offset {offset} (bytes {:02x?})",
                &header.kind
            )));
        }
        if offset == 0 && !bmff::is_leading_box(&header.kind) {
            return Err(ProbeError::NotVideo {
                url: shown.clone(),
                detail: format!("starts with '{}', not an MP4/MOV box", header.name()),
            });
        }
        let (size, to_unknown_end) = match (header.size, remote.total()) {
            (Some(size), _) => (size, false),
            (None, Some(total)) => (total.saturating_sub(offset), false),
            // Size 0 ("to the end") with an unknown end: only moov is worth reading, as far
            // as the read limit allows.
            (None, None) if &header.kind == b"moov" => (options.max_bytes, true),
            (None, None) => break,
        };
        if size < header.header_len {
            // Only possible for size 0 when the server's idea of the file size changed.
            return Err(corrupt(format!(
                "box '{}' at offset {offset} has no room for its own header",
                header.name()
            )));
        }
        let end = offset
            .checked_add(size)
            .ok_or_else(|| corrupt(format!("box '{}' size overflows", header.name())))?;
        if let Some(total) = remote.total() {
            if end > total {
                return Err(truncated(format!(
                    "box '{}' at offset {offset} declares {size} bytes, but the file has only {} after it",
                    header.name(),
                    total.saturating_sub(offset)
                )));
            }
        }

        match &header.kind {
            b"ftyp" if offset == 0 => {
                let data = remote.read_at(offset, size.min(FTYP_READ)).await?;
                let body = data.get(header.header_len as usize..).unwrap_or_default();
                ftyp = Some(bmff::parse_ftyp(body).map_err(&corrupt)?);
            }
            b"moov" if moov.is_none() => {
                if size > options.max_bytes {
                    return Err(ProbeError::TooLarge {
                        url: shown.clone(),
                        detail: format!(
                            "moov box of {size} bytes exceeds the {} byte read limit",
                            options.max_bytes
                        ),
                    });
                }
                let data = remote.read_at(offset, size).await?;
                if to_unknown_end && data.len() as u64 == size {
                    return Err(ProbeError::TooLarge {
                        url: shown.clone(),
                        detail: format!(
                            "moov box runs to the end of the file, beyond the {} byte read limit",
                            options.max_bytes
                        ),
                    });
                }
                if (data.len() as u64) < size && !to_unknown_end {
                    return Err(truncated(format!(
                        "moov box at offset {offset} declares {size} bytes, only {} arrived",
                        data.len()
                    )));
                }
                let facts = bmff::parse_moov(&data[header.header_len as usize..]).map_err(|e| {
                    match e.as_str() {
                        "compressed movie header (cmov)" => ProbeError::Unsupported {
                            url: shown.clone(),
                            format: "QuickTime compressed movie header (cmov)".into(),
                        },
                        _ => corrupt(format!("in moov: {e}")),
                    }
                })?;
                moov = Some(facts);
                moov_end = end;
            }
            _ if moov.is_some() => after_moov += 1,
            _ => {}
        }
        if after_moov >= BOXES_AFTER_MOOV {
            break;
        }
        previous = Some((header.name(), offset));
        offset = end;
    }

    let Some(mut facts) = moov else {
        return Err(corrupt(
            "no moov box in the whole file: not a complete MP4/MOV".into(),
        ));
    };
    let Some(track) = facts.video.take() else {
        return Err(ProbeError::NotVideo {
            url: shown,
            detail: "the file has no video track (audio only?)".into(),
        });
    };
    if facts.fragmented && facts.seconds.is_none() && options.max_fragment_requests > 0 {
        let trex_default = facts
            .trex_durations
            .iter()
            .find(|(id, _)| *id == track.track_id)
            .map(|(_, d)| *d);
        facts.seconds =
            sum_fragments(&mut remote, moov_end, &track, trex_default, &shown, options).await?;
    }
    let (container, brand) = match &ftyp {
        Some(f) => (container_of(f), Some(bmff::fourcc(&f.major))),
        // Classic QuickTime files may start straight with moov/mdat/wide.
        None => (Container::Mov, None),
    };
    Ok(VideoInfo {
        container,
        brand,
        codec: track.codec,
        duration_s: facts.seconds,
        width: track.width,
        height: track.height,
        bytes: remote.total(),
        fragmented: facts.fragmented,
        bytes_read: remote.bytes_read,
        requests: remote.requests,
    })
}

/// Duration of a fragmented file without `mehd`: the sum of the video track's sample durations
/// over every `moof`. Gives up (`Ok(None)`) past `max_fragment_requests` extra requests or the
/// byte limit; a file that ends inside a box is still reported as truncated.
async fn sum_fragments(
    remote: &mut Remote<'_>,
    mut offset: u64,
    track: &bmff::TrackFacts,
    trex_default: Option<u32>,
    shown: &str,
    options: &ProbeOptions,
) -> Result<Option<f64>, ProbeError> {
    if track.timescale == 0 {
        return Ok(None);
    }
    let truncated = |detail: String| ProbeError::Truncated {
        url: shown.into(),
        detail,
    };
    let corrupt = |detail: String| ProbeError::Corrupt {
        url: shown.into(),
        detail,
    };
    let first_request = remote.requests;
    // Each jump lands on a moof followed by a large mdat: read little more than the moof.
    remote.set_readahead(FRAGMENT_READAHEAD);
    let mut ticks = 0u64;
    let mut fragments = 0u32;
    for _ in 0..MAX_TOP_LEVEL_BOXES {
        if remote.requests - first_request > options.max_fragment_requests {
            return Ok(None);
        }
        let buf = match remote.read_at(offset, 16).await {
            Ok(buf) => buf,
            Err(ProbeError::TooLarge { .. }) => return Ok(None),
            Err(other) => return Err(other),
        };
        if buf.is_empty() {
            if remote.total().is_some_and(|total| offset > total) {
                return Err(truncated(format!(
                    "the last box before offset {offset} extends past the end of the file"
                )));
            }
            break;
        }
        let header = match bmff::parse_header(buf) {
            Ok(Some(h)) => h,
            Ok(None) => {
                return Err(truncated(format!(
                    "the file ends inside a box header at offset {offset}"
                )))
            }
            Err(e) => return Err(corrupt(format!("at offset {offset}: {e}"))),
        };
        let size = match (header.size, remote.total()) {
            (Some(size), _) => size,
            (None, Some(total)) => total.saturating_sub(offset),
            (None, None) => break,
        };
        if size < header.header_len {
            return Err(corrupt(format!(
                "box '{}' at offset {offset} has no room for its own header",
                header.name()
            )));
        }
        let end = offset.saturating_add(size);
        if let Some(total) = remote.total() {
            if end > total {
                return Err(truncated(format!(
                    "box '{}' at offset {offset} declares {size} bytes, but the file has only {} after it",
                    header.name(),
                    total.saturating_sub(offset)
                )));
            }
        }
        if &header.kind == b"moof" {
            if size > MAX_MOOF_BYTES {
                return Ok(None);
            }
            let data = match remote.read_at(offset, size).await {
                Ok(data) => data,
                Err(ProbeError::TooLarge { .. }) => return Ok(None),
                Err(other) => return Err(other),
            };
            if (data.len() as u64) < size {
                return Err(truncated(format!(
                    "moof box at offset {offset} declares {size} bytes, only {} arrived",
                    data.len()
                )));
            }
            ticks += bmff::fragment_ticks(
                &data[header.header_len as usize..],
                track.track_id,
                trex_default,
            )
            .map_err(|e| corrupt(format!("in moof at offset {offset}: {e}")))?;
            fragments += 1;
        }
        offset = end;
    }
    if fragments == 0 || ticks == 0 {
        return Ok(None);
    }
    Ok(Some(ticks as f64 / f64::from(track.timescale)))
}

fn container_of(ftyp: &bmff::Ftyp) -> Container {
    const ISO_BRANDS: &[&[u8; 4]] = &[
        b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"iso7", b"iso8", b"iso9", b"mp41",
        b"mp42", b"mp71", b"avc1", b"dash", b"msdh", b"msix", b"M4V ", b"M4VH", b"M4VP", b"f4v ",
        b"cmfc", b"cmf2", b"MSNV", b"NDAS", b"XAVC", b"mmp4",
    ];
    if &ftyp.major == b"qt  " {
        Container::Mov
    } else if ISO_BRANDS.contains(&&ftyp.major) {
        Container::Mp4
    } else {
        Container::Other(bmff::fourcc(&ftyp.major))
    }
}

/// Recognises common non-MP4 payloads so the error says what the URL really serves.
fn sniff_non_bmff(head: &[u8], url: &str) -> Option<ProbeError> {
    if head.is_empty() {
        return Some(ProbeError::NotVideo {
            url: url.into(),
            detail: "the body is empty".into(),
        });
    }
    let looks = crate::image::describe_bytes(head);
    let boxed = head.len() >= 8 && bmff::is_leading_box(&head[4..8].try_into().expect("4 bytes"));
    if !boxed {
        return Some(ProbeError::NotVideo {
            url: url.into(),
            detail: format!("looks like {looks}"),
        });
    }
    None
}
