//! Image probing: the first few KB over HTTP, or the first few KB of decoded base64.

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use url::Url;

use crate::error::{redact, redact_data, redact_raw, ProbeError};
use crate::fetch::Remote;
use crate::{ImageFormat, ImageInfo, ProbeOptions};

pub(crate) async fn probe(
    client: &reqwest::Client,
    url: &Url,
    options: &ProbeOptions,
) -> Result<ImageInfo, ProbeError> {
    let shown = redact(url);
    let mut remote =
        Remote::open(client, url, options.max_bytes, options.image_initial_bytes).await?;
    let mut want = options
        .image_initial_bytes
        .clamp(64, options.max_bytes.max(64));
    loop {
        let prefix = remote.read_at(0, want).await?;
        let at_end = (prefix.len() as u64) < want;
        match read_header(prefix, at_end) {
            Ok(Some((format, width, height))) => {
                return Ok(ImageInfo {
                    format,
                    width,
                    height,
                    bytes: remote.total(),
                    bytes_read: remote.bytes_read,
                })
            }
            Ok(None) if want < options.max_bytes => {
                // The size marker lies further in (e.g. a JPEG with a large EXIF block).
                want = want.saturating_mul(4).min(options.max_bytes);
            }
            Ok(None) => {
                return Err(ProbeError::TooLarge {
                    url: shown,
                    detail: format!(
                        "no image size within the first {} bytes (the read limit)",
                        options.max_bytes
                    ),
                })
            }
            Err(HeaderError::NotImage(detail)) => {
                return Err(ProbeError::NotImage { url: shown, detail })
            }
            Err(HeaderError::Truncated(detail)) => {
                return Err(ProbeError::Truncated { url: shown, detail })
            }
        }
    }
}

enum HeaderError {
    NotImage(String),
    Truncated(String),
}

/// `Ok(None)`: the prefix is an image but too short to hold its size.
fn read_header(
    prefix: &[u8],
    at_end: bool,
) -> Result<Option<(ImageFormat, u32, u32)>, HeaderError> {
    if prefix.is_empty() {
        return Err(HeaderError::NotImage("the body is empty".into()));
    }
    if is_iso_video(prefix) {
        return Err(HeaderError::NotImage(format!(
            "looks like {}",
            describe_bytes(prefix)
        )));
    }
    let kind = match imagesize::image_type(prefix) {
        Ok(kind) => kind,
        Err(_) if prefix.len() < 32 && !at_end => return Ok(None),
        Err(_) => {
            return Err(HeaderError::NotImage(format!(
                "looks like {}",
                describe_bytes(prefix)
            )))
        }
    };
    let format = match kind {
        imagesize::ImageType::Png => ImageFormat::Png,
        imagesize::ImageType::Jpeg => ImageFormat::Jpeg,
        imagesize::ImageType::Webp => ImageFormat::Webp,
        other => ImageFormat::Other(format!("{other:?}").to_lowercase()),
    };
    match imagesize::blob_size(prefix) {
        Ok(size) if size.width > 0 && size.height > 0 => {
            Ok(Some((format, size.width as u32, size.height as u32)))
        }
        Ok(_) => Err(HeaderError::NotImage(format!(
            "{format} header states a zero width or height"
        ))),
        Err(_) if !at_end => Ok(None),
        Err(_) => Err(HeaderError::Truncated(format!(
            "the {format} file ends after {} bytes, before its size is stated",
            prefix.len()
        ))),
    }
}

/// An ISO-BMFF file whose brand is not a HEIF/AVIF still image (imagesize calls every `ftyp`
/// file HEIF).
fn is_iso_video(head: &[u8]) -> bool {
    const STILL_BRANDS: &[&[u8]] = &[
        b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis",
    ];
    head.get(4..8) == Some(b"ftyp")
        && head
            .get(8..12)
            .is_some_and(|brand| !STILL_BRANDS.contains(&brand))
}

/// A short human description of what some bytes look like, for error messages.
pub(crate) fn describe_bytes(head: &[u8]) -> String {
    let text = head.iter().skip_while(|b| b.is_ascii_whitespace());
    let first = text.clone().next().copied();
    if head.starts_with(b"\x89PNG") {
        "a PNG image".into()
    } else if head.starts_with(&[0xff, 0xd8, 0xff]) {
        "a JPEG image".into()
    } else if head.starts_with(b"RIFF") && head.get(8..12) == Some(b"WEBP") {
        "a WebP image".into()
    } else if head.starts_with(b"GIF8") {
        "a GIF image".into()
    } else if head.get(4..8) == Some(b"ftyp") {
        "an MP4/MOV file".into()
    } else if head.starts_with(&[0x1a, 0x45, 0xdf, 0xa3]) {
        "a WebM/Matroska video".into()
    } else if first == Some(b'<') {
        "HTML or XML text (an error page?)".into()
    } else if first == Some(b'{') || first == Some(b'[') {
        "JSON text".into()
    } else {
        let hex: Vec<String> = head.iter().take(8).map(|b| format!("{b:02x}")).collect();
        format!("unrecognised bytes {}", hex.join(" "))
    }
}

/// Base64 decoder accepting padded or unpadded input.
fn engine(alphabet: &alphabet::Alphabet) -> GeneralPurpose {
    GeneralPurpose::new(
        alphabet,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    )
}

/// Reads an image header from a `data:<type>;base64,<payload>` URL or from raw base64 (standard
/// or URL-safe alphabet, padding optional, whitespace ignored), decoding only as much of the
/// payload as the header needs. `bytes` is the decoded size of the whole payload.
pub(crate) fn image_info_from_base64(
    input: &str,
    options: &ProbeOptions,
) -> Result<ImageInfo, ProbeError> {
    let trimmed = input.trim();
    let (shown, payload) = if let Some(rest) = trimmed.strip_prefix("data:") {
        let shown = redact_data(trimmed);
        let Some((meta, payload)) = rest.split_once(',') else {
            return Err(ProbeError::InvalidInput {
                input: shown,
                reason: "data: URL without a comma before the payload".into(),
            });
        };
        if !meta.to_ascii_lowercase().ends_with(";base64") {
            return Err(ProbeError::InvalidInput {
                input: shown,
                reason: "only base64 data: URLs (\";base64,\") are supported".into(),
            });
        }
        (shown, payload)
    } else {
        (redact_raw(trimmed), trimmed)
    };
    let invalid = |reason: String| ProbeError::InvalidInput {
        input: shown.clone(),
        reason,
    };

    let symbols: Vec<u8> = payload
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let padding = symbols.iter().rev().take_while(|&&b| b == b'=').count();
    let data_len = symbols.len() - padding;
    let total_bytes = (data_len as u64 * 3) / 4;
    let url_safe = symbols.iter().any(|&b| b == b'-' || b == b'_');
    let engine = engine(if url_safe {
        &alphabet::URL_SAFE
    } else {
        &alphabet::STANDARD
    });

    // Decode a growing prefix (whole 4-symbol groups) until the header is complete.
    let max_symbols = (options.max_bytes.saturating_mul(4) / 3) as usize;
    let mut take = (options.image_initial_bytes as usize * 4 / 3).max(64);
    loop {
        let whole = take >= symbols.len();
        let end = if whole {
            symbols.len()
        } else {
            take - take % 4
        };
        let decoded = engine
            .decode(&symbols[..end])
            .map_err(|e| invalid(format!("not valid base64: {e}")))?;
        match read_header(&decoded, whole) {
            Ok(Some((format, width, height))) => {
                return Ok(ImageInfo {
                    format,
                    width,
                    height,
                    bytes: Some(total_bytes),
                    bytes_read: decoded.len() as u64,
                })
            }
            Ok(None) if take < max_symbols => take = take.saturating_mul(4).min(max_symbols),
            Ok(None) => {
                return Err(ProbeError::TooLarge {
                    url: shown,
                    detail: format!(
                        "no image size within the first {} decoded bytes (the read limit)",
                        options.max_bytes
                    ),
                })
            }
            Err(HeaderError::NotImage(detail)) => {
                return Err(ProbeError::NotImage { url: shown, detail })
            }
            Err(HeaderError::Truncated(detail)) => {
                return Err(ProbeError::Truncated { url: shown, detail })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_common_payloads() {
        assert_eq!(
            describe_bytes(b"  <!DOCTYPE html>"),
            "HTML or XML text (an error page?)"
        );
        assert_eq!(describe_bytes(b"{\"error\":1}"), "JSON text");
        assert_eq!(describe_bytes(b"\0\0\0\x18ftypisom"), "an MP4/MOV file");
        assert_eq!(describe_bytes(&[1, 2, 3]), "unrecognised bytes 01 02 03");
    }

    #[test]
    fn truncated_png_is_reported() {
        // PNG signature and the start of IHDR, but no size yet.
        let head = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0";
        assert!(matches!(
            read_header(head, true),
            Err(HeaderError::Truncated(_))
        ));
        assert!(matches!(read_header(head, false), Ok(None)));
    }
}
