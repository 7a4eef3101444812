//! [`ProbeError`] and the URL redaction used in every message.

use url::Url;

/// Why a probe failed. Every variant names the probed URL (redacted: no query string, no
/// credentials, see [`redact`]) and what went wrong.
///
/// The prober itself never retries; the notes on each variant tell a caller (e.g. `validate`)
/// whether trying again later can help. [`ProbeError::is_transient`] encodes the same rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// No usable answer: DNS failure, connection refused or reset, TLS failure, too many
    /// redirects, the body broke off, or the whole probe ran past [`crate::ProbeOptions::timeout`].
    /// Transient: worth retrying later (a redirect loop will not heal, but is rare).
    #[error("{url}: unreachable: {reason}")]
    Unreachable {
        /// The probed URL, redacted.
        url: String,
        /// What failed, e.g. "connection refused", "timed out after 20s".
        reason: String,
    },
    /// The server answered with an HTTP error status (404, 403 for an expired signed URL, 5xx).
    /// Transient only for 408, 429 and 5xx.
    #[error("{url}: HTTP status {status}")]
    HttpStatus {
        /// The probed URL, redacted.
        url: String,
        /// The status code, e.g. 404.
        status: u16,
    },
    /// The bytes are not an image format the prober recognises (e.g. an HTML error page or a
    /// video). Not transient.
    #[error("{url}: not an image: {detail}")]
    NotImage {
        /// The probed URL, redacted.
        url: String,
        /// What the bytes look like instead.
        detail: String,
    },
    /// The bytes are not an ISO-BMFF (MP4/MOV) file. Not transient.
    #[error("{url}: not a video: {detail}")]
    NotVideo {
        /// The probed URL, redacted.
        url: String,
        /// What the bytes look like instead.
        detail: String,
    },
    /// A video format the prober recognises but cannot read (QuickTime compressed `cmov`
    /// headers). Not transient.
    #[error("{url}: unsupported format: {format}")]
    Unsupported {
        /// The probed URL, redacted.
        url: String,
        /// The format found.
        format: String,
    },
    /// The file ends before a header or box it declares (an interrupted upload or copy).
    /// Not transient (unless the file is still being written).
    #[error("{url}: truncated: {detail}")]
    Truncated {
        /// The probed URL, redacted.
        url: String,
        /// Which structure is cut, at which offset.
        detail: String,
    },
    /// A header is malformed (impossible box size, missing `moov`, zero timescale...).
    /// Not transient.
    #[error("{url}: corrupt header: {detail}")]
    Corrupt {
        /// The probed URL, redacted.
        url: String,
        /// What is malformed.
        detail: String,
    },
    /// Reading the header would need more than [`crate::ProbeOptions::max_bytes`] (a huge
    /// `moov`, a JPEG with an enormous EXIF block, or a server that ignores Range requests on a
    /// file whose `moov` sits at the end). Not transient; raise the limit to read it.
    #[error("{url}: header too large: {detail}")]
    TooLarge {
        /// The probed URL, redacted.
        url: String,
        /// How many bytes were needed and the limit.
        detail: String,
    },
    /// The input is not something the prober can fetch: not an http(s)/data URL, invalid base64,
    /// a `data:` URL without `;base64`. Not transient.
    #[error("invalid media reference {input}: {reason}")]
    InvalidInput {
        /// The input, shortened and redacted.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl ProbeError {
    /// The redacted URL (or input) the error is about.
    pub fn url(&self) -> &str {
        match self {
            ProbeError::Unreachable { url, .. }
            | ProbeError::HttpStatus { url, .. }
            | ProbeError::NotImage { url, .. }
            | ProbeError::NotVideo { url, .. }
            | ProbeError::Unsupported { url, .. }
            | ProbeError::Truncated { url, .. }
            | ProbeError::Corrupt { url, .. }
            | ProbeError::TooLarge { url, .. } => url,
            ProbeError::InvalidInput { input, .. } => input,
        }
    }

    /// Whether probing again later may succeed (network trouble, 408, 429, 5xx).
    pub fn is_transient(&self) -> bool {
        match self {
            ProbeError::Unreachable { .. } => true,
            ProbeError::HttpStatus { status, .. } => {
                *status == 408 || *status == 429 || *status >= 500
            }
            _ => false,
        }
    }

    /// A short, stable name of the variant, for metrics labels and reports.
    pub fn kind(&self) -> &'static str {
        match self {
            ProbeError::Unreachable { .. } => "unreachable",
            ProbeError::HttpStatus { .. } => "http_status",
            ProbeError::NotImage { .. } => "not_image",
            ProbeError::NotVideo { .. } => "not_video",
            ProbeError::Unsupported { .. } => "unsupported",
            ProbeError::Truncated { .. } => "truncated",
            ProbeError::Corrupt { .. } => "corrupt",
            ProbeError::TooLarge { .. } => "too_large",
            ProbeError::InvalidInput { .. } => "invalid_input",
        }
    }
}

/// The URL as it may appear in errors and logs: user name, password, query string and fragment
/// are dropped (signed URLs carry credentials in the query), `?…` marks a removed query.
/// A `data:` URL is shown as its media type and length only.
pub fn redact(url: &Url) -> String {
    if url.scheme() == "data" {
        return redact_data(url.as_str());
    }
    let mut shown = url.clone();
    let had_query = shown.query().is_some();
    shown.set_query(None);
    shown.set_fragment(None);
    // Both only fail for URLs that cannot have credentials, which then have none to remove.
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    if had_query {
        format!("{shown}?…")
    } else {
        shown.to_string()
    }
}

/// `data:image/png;base64,… (12345 chars)`.
pub(crate) fn redact_data(input: &str) -> String {
    match input.split_once(',') {
        Some((meta, payload)) => format!("{meta},… ({} chars)", payload.len()),
        None => format!("data:… ({} chars)", input.len()),
    }
}

/// How a non-URL input (raw base64) is shown: its first characters and length.
pub(crate) fn redact_raw(input: &str) -> String {
    let head: String = input.chars().take(12).collect();
    format!("\"{head}…\" ({} chars)", input.len())
}

/// Turns a reqwest error into a reason text without the URL (which may carry credentials).
pub(crate) fn describe_reqwest(err: reqwest::Error) -> String {
    let what = if err.is_timeout() {
        "timed out"
    } else if err.is_redirect() {
        "redirect failed (too many redirects?)"
    } else if err.is_connect() {
        "connection failed"
    } else if err.is_body() || err.is_decode() {
        "reading the body failed"
    } else {
        "request failed"
    };
    let err = err.without_url();
    let mut chain = Vec::new();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(&err);
    while let Some(s) = source {
        chain.push(s.to_string());
        source = s.source();
    }
    if chain.is_empty() {
        format!("{what}: {err}")
    } else {
        format!("{what}: {}", chain.join(": "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_drops_credentials_and_query() {
        let url =
            Url::parse("https://user:pw@cdn.example/a/b.mp4?X-Amz-Signature=secret#t=3").unwrap();
        assert_eq!(redact(&url), "https://cdn.example/a/b.mp4?…");
        let plain = Url::parse("http://127.0.0.1:8080/media/x.png").unwrap();
        assert_eq!(redact(&plain), "http://127.0.0.1:8080/media/x.png");
        let data = Url::parse("data:image/png;base64,iVBORw0KGgo=").unwrap();
        assert_eq!(redact(&data), "data:image/png;base64,… (12 chars)");
        assert_eq!(
            redact_raw("iVBORw0KGgoAAAANSUhEUg=="),
            "\"iVBORw0KGgoA…\" (24 chars)"
        );
    }

    #[test]
    fn transient_classification() {
        let status = |status| ProbeError::HttpStatus {
            url: "u".into(),
            status,
        };
        assert!(status(503).is_transient());
        assert!(status(429).is_transient());
        assert!(!status(404).is_transient());
        assert!(!ProbeError::Truncated {
            url: "u".into(),
            detail: "d".into()
        }
        .is_transient());
        assert_eq!(status(404).to_string(), "u: HTTP status 404");
    }
}
