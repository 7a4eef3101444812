//! HTTP building blocks: JSON answers with body faults, connection drops, Range serving.

use crate::faults::BodyFault;
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use bytes::Bytes;
use serde_json::Value;

/// Marker in a response's extensions: the connection is dropped instead of answering.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DropConnection;

/// The error the connection service returns to make hyper close the connection.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by fault injection")]
pub(crate) struct Dropped;

/// A response that makes the server drop the connection without answering.
pub(crate) fn drop_connection() -> Response {
    let mut r = Response::new(Body::empty());
    r.extensions_mut().insert(DropConnection);
    r
}

/// A body that sends `head` and then fails, so hyper aborts mid-body (Content-Length is set to
/// the full length so the client sees a short read, not a clean end).
fn broken_body(full_len: usize, head: Bytes) -> (Body, HeaderValue) {
    use futures::StreamExt;
    let head = futures::stream::once(async move { Ok::<Bytes, std::io::Error>(head) });
    // The pause lets hyper flush the headers and the first half before the failure, so the
    // client really sees a connection that dies mid-body (not one that never answered).
    let fail = futures::stream::once(async {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "reset by fault injection",
        ))
    });
    (
        Body::from_stream(head.chain(fail)),
        HeaderValue::from(full_len),
    )
}

/// A JSON answer, damaged per `fault`, with an optional `Retry-After`.
pub(crate) fn json(
    status: StatusCode,
    body: &Value,
    fault: Option<BodyFault>,
    retry_after: Option<u64>,
) -> Response {
    let text = serde_json::to_vec(body).unwrap_or_default();
    let mut resp = match fault {
        None => Response::new(Body::from(text)),
        Some(BodyFault::Malformed) => {
            // What a misbehaving gateway sends: HTML where JSON was promised.
            let mut r = Response::new(Body::from(
                "<html><body><h1>502 Bad Gateway</h1></body></html>{\"code\":",
            ));
            *r.status_mut() = StatusCode::OK;
            r
        }
        Some(BodyFault::Truncated) => {
            let cut = text.len() / 2;
            Response::new(Body::from(text[..cut].to_vec()))
        }
        Some(BodyFault::ResetMidBody) => {
            let cut = text.len() / 2;
            let (b, len) = broken_body(text.len(), Bytes::copy_from_slice(&text[..cut]));
            let mut r = Response::new(b);
            r.headers_mut().insert(header::CONTENT_LENGTH, len);
            r
        }
    };
    if !matches!(fault, Some(BodyFault::Malformed)) {
        *resp.status_mut() = status;
    }
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(secs) = retry_after {
        if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
    }
    resp
}

/// Parses a single `Range: bytes=...` against `len`: `Ok(None)` = whole file,
/// `Err(())` = unsatisfiable (416). Multiple ranges are served as the whole file.
pub(crate) fn parse_range(headers: &HeaderMap, len: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(v) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let Some(spec) = v.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| ())?;
        if n == 0 || len == 0 {
            return Err(());
        }
        (len.saturating_sub(n), len - 1)
    } else {
        let start: u64 = a.parse().map_err(|_| ())?;
        let end = if b.is_empty() {
            len.saturating_sub(1)
        } else {
            b.parse::<u64>().map_err(|_| ())?.min(len.saturating_sub(1))
        };
        if start >= len || end < start {
            return Err(());
        }
        (start, end)
    };
    Ok(Some(range))
}

/// How a served file is damaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Damage {
    None,
    /// Only the first half, with a matching Content-Length.
    Truncated,
    /// Bytes flipped in the middle, length unchanged.
    Corrupted,
    /// Half the body, then the connection drops.
    Reset,
}

/// Serves `bytes` with Range/HEAD support (axum answers HEAD with the GET headers and no body).
/// `sha256_hex`, when given, is announced as `Repr-Digest` (the digest of the whole, undamaged
/// file, also on ranges and damaged answers). Returns the response and the number of body
/// bytes it carries.
pub(crate) fn serve_file(
    headers: &HeaderMap,
    bytes: &Bytes,
    content_type: &str,
    damage: Damage,
    sha256_hex: Option<&str>,
) -> (Response, u64) {
    let len = bytes.len() as u64;
    let (status, start, end) = match parse_range(headers, len) {
        Ok(None) => (StatusCode::OK, 0, len.saturating_sub(1)),
        Ok(Some((s, e))) => (StatusCode::PARTIAL_CONTENT, s, e),
        Err(()) => {
            let mut r = (StatusCode::RANGE_NOT_SATISFIABLE, "").into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return (r, 0);
        }
    };
    let slice = if len == 0 {
        Bytes::new()
    } else {
        bytes.slice(start as usize..=end as usize)
    };
    let full = slice.len();
    let (body, sent, content_length) = match damage {
        Damage::None => (Body::from(slice.clone()), full, full),
        Damage::Truncated => {
            let cut = slice.slice(..full / 2);
            (Body::from(cut), full / 2, full / 2)
        }
        Damage::Corrupted => {
            let mut v = slice.to_vec();
            let mid = v.len() / 2;
            for b in v.iter_mut().skip(mid).take(64) {
                *b ^= 0xA5;
            }
            (Body::from(v), full, full)
        }
        Damage::Reset => {
            let (b, _) = broken_body(full, slice.slice(..full / 2));
            (b, full / 2, full)
        }
    };
    let mut r = Response::new(body);
    *r.status_mut() = status;
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(content_length));
    if let Some(digest) = sha256_hex.and_then(|x| hex::decode(x).ok()) {
        let value = format!(
            "sha-256=:{}:",
            base64::engine::general_purpose::STANDARD.encode(digest)
        );
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert("repr-digest", v);
        }
    }
    if status == StatusCode::PARTIAL_CONTENT {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{len}")) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    (r, sent as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(v: &str, len: u64) -> Result<Option<(u64, u64)>, ()> {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, HeaderValue::from_str(v).unwrap());
        parse_range(&h, len)
    }

    #[test]
    fn ranges() {
        assert_eq!(range("bytes=0-9", 100), Ok(Some((0, 9))));
        assert_eq!(range("bytes=90-", 100), Ok(Some((90, 99))));
        assert_eq!(range("bytes=-10", 100), Ok(Some((90, 99))));
        assert_eq!(range("bytes=50-500", 100), Ok(Some((50, 99))));
        assert_eq!(range("bytes=100-", 100), Err(()));
        assert_eq!(range("bytes=5-1", 100), Err(()));
        assert_eq!(range("bytes=0-1,5-6", 100), Ok(None));
        assert_eq!(parse_range(&HeaderMap::new(), 100), Ok(None));
    }
}
