//! Digests a download's source may announce, and the check of the received bytes against them.
//!
//! No vendor documents a checksum of its outputs, but the servers that host them often send
//! one: an RFC 9530 `Repr-Digest` / `Content-Digest`, the older RFC 3230 `Digest`, S3's
//! `x-amz-checksum-sha256`, `Content-MD5` (Aliyun OSS, Azure) or `x-goog-hash` (Google Cloud
//! Storage). Bytes flipped in transit keep the length and the MP4 structure intact; only such
//! a digest can tell. `ETag` is not used: whether it is an MD5 of the body depends on the
//! server and on how the object was uploaded, and a wrong guess would fail every attempt.

use base64::Engine as _;
use md5::Digest as _;
use reqwest::header::HeaderMap;
use tracing::warn;

/// A hash function an announced digest uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Algorithm {
    Sha256,
    Md5,
}

impl Algorithm {
    fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha-256",
            Algorithm::Md5 => "md5",
        }
    }

    fn len(self) -> usize {
        match self {
            Algorithm::Sha256 => 32,
            Algorithm::Md5 => 16,
        }
    }
}

/// One digest the response announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Announced {
    /// The header it came from (lower case).
    pub header: &'static str,
    pub algorithm: Algorithm,
    pub digest: Vec<u8>,
}

impl Announced {
    /// How the check is described in the sidecar and in errors, e.g. `repr-digest sha-256`.
    pub fn label(&self) -> String {
        format!("{} {}", self.header, self.algorithm.name())
    }
}

/// Every usable digest in `headers`. A header that cannot be read (bad base64, wrong length)
/// is skipped with a warning rather than failing the download: a server's broken header must
/// not cost the user an output that is otherwise fine.
pub(crate) fn announced(headers: &HeaderMap) -> Vec<Announced> {
    let mut out = Vec::new();
    // RFC 9530 dictionaries: `sha-256=:<base64>:, sha-512=:<base64>:`.
    for header in ["repr-digest", "content-digest"] {
        for value in values(headers, header) {
            for member in value.split(',') {
                let Some((alg, rest)) = member.trim().split_once('=') else {
                    continue;
                };
                if !alg.trim().eq_ignore_ascii_case("sha-256") {
                    continue;
                }
                let raw = rest.trim().trim_matches(':');
                push(&mut out, header, Algorithm::Sha256, raw);
            }
        }
    }
    // RFC 3230 `Digest: SHA-256=<base64>,MD5=<base64>` and GCS `x-goog-hash: md5=<base64>`.
    for header in ["digest", "x-goog-hash"] {
        for value in values(headers, header) {
            for member in value.split(',') {
                let Some((alg, raw)) = member.trim().split_once('=') else {
                    continue;
                };
                let algorithm = match alg.trim().to_ascii_lowercase().as_str() {
                    "sha-256" => Algorithm::Sha256,
                    "md5" => Algorithm::Md5,
                    _ => continue,
                };
                push(&mut out, header, algorithm, raw.trim());
            }
        }
    }
    for value in values(headers, "x-amz-checksum-sha256") {
        push(
            &mut out,
            "x-amz-checksum-sha256",
            Algorithm::Sha256,
            value.trim(),
        );
    }
    for value in values(headers, "content-md5") {
        push(&mut out, "content-md5", Algorithm::Md5, value.trim());
    }
    out
}

fn values<'a>(headers: &'a HeaderMap, name: &str) -> impl Iterator<Item = &'a str> {
    headers.get_all(name).iter().filter_map(|v| v.to_str().ok())
}

fn push(out: &mut Vec<Announced>, header: &'static str, algorithm: Algorithm, raw: &str) {
    match base64::engine::general_purpose::STANDARD.decode(raw) {
        Ok(digest) if digest.len() == algorithm.len() => out.push(Announced {
            header,
            algorithm,
            digest,
        }),
        _ => warn!(
            header,
            algorithm = algorithm.name(),
            "ignoring an unreadable digest header (not base64 of the right length)"
        ),
    }
}

/// MD5 over the body, kept only when some announced digest needs it (SHA-256 is computed for
/// every download anyway).
pub(crate) struct Md5Hasher(Option<md5::Md5>);

impl Md5Hasher {
    pub fn for_announced(announced: &[Announced]) -> Self {
        Md5Hasher(
            announced
                .iter()
                .any(|a| a.algorithm == Algorithm::Md5)
                .then(md5::Md5::new),
        )
    }

    pub fn update(&mut self, chunk: &[u8]) {
        if let Some(h) = &mut self.0 {
            h.update(chunk);
        }
    }

    pub fn finish(self) -> Option<Vec<u8>> {
        self.0.map(|h| h.finalize().to_vec())
    }
}

/// A digest that did not match the bytes received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mismatch {
    pub label: String,
    pub announced: String,
    pub received: String,
}

/// Compares every announced digest with the computed ones. `Ok` carries the labels checked
/// (empty when the source announced none).
pub(crate) fn check(
    announced: &[Announced],
    sha256: &[u8],
    md5: Option<&[u8]>,
) -> Result<Vec<String>, Mismatch> {
    let mut checked = Vec::new();
    for a in announced {
        let actual = match a.algorithm {
            Algorithm::Sha256 => Some(sha256),
            Algorithm::Md5 => md5,
        };
        let Some(actual) = actual else { continue };
        if actual != a.digest.as_slice() {
            return Err(Mismatch {
                label: a.label(),
                announced: hex::encode(&a.digest),
                received: hex::encode(actual),
            });
        }
        let label = a.label();
        if !checked.contains(&label) {
            checked.push(label);
        }
    }
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn b64(b: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(b)
    }

    fn sha(b: &[u8]) -> Vec<u8> {
        use sha2::Digest as _;
        sha2::Sha256::digest(b).to_vec()
    }

    fn md5(b: &[u8]) -> Vec<u8> {
        md5::Md5::digest(b).to_vec()
    }

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn reads_every_supported_header() {
        let body = b"hello";
        let h = headers(&[
            (
                "repr-digest",
                format!("sha-512=:{}:, sha-256=:{}:", b64(&[0; 64]), b64(&sha(body))),
            ),
            ("content-digest", format!("sha-256=:{}:", b64(&sha(body)))),
            (
                "digest",
                format!("SHA-256={},MD5={}", b64(&sha(body)), b64(&md5(body))),
            ),
            (
                "x-goog-hash",
                format!("crc32c=n03x6A==,md5={}", b64(&md5(body))),
            ),
            ("x-amz-checksum-sha256", b64(&sha(body))),
            ("content-md5", b64(&md5(body))),
        ]);
        let a = announced(&h);
        let labels: Vec<String> = a.iter().map(Announced::label).collect();
        assert_eq!(
            labels,
            [
                "repr-digest sha-256",
                "content-digest sha-256",
                "digest sha-256",
                "digest md5",
                "x-goog-hash md5",
                "x-amz-checksum-sha256 sha-256",
                "content-md5 md5"
            ]
        );
        let mut m = Md5Hasher::for_announced(&a);
        m.update(body);
        let checked = check(&a, &sha(body), m.finish().as_deref()).unwrap();
        assert_eq!(checked.len(), 7, "{checked:?}");
    }

    #[test]
    fn unreadable_or_unknown_digests_are_skipped() {
        let h = headers(&[
            (
                "repr-digest",
                "sha-256=:not base64!:, unixsum=:AAA=:".into(),
            ),
            ("content-md5", b64(&[1, 2, 3])),
            ("digest", "crc32c=AAAAAA==".into()),
        ]);
        assert!(announced(&h).is_empty());
        assert!(Md5Hasher::for_announced(&[]).0.is_none());
    }

    #[test]
    fn a_flipped_byte_is_a_mismatch_naming_the_header() {
        let body = b"the file".to_vec();
        let h = headers(&[("repr-digest", format!("sha-256=:{}:", b64(&sha(&body))))]);
        let a = announced(&h);
        let mut bad = body.clone();
        bad[3] ^= 0xA5;
        let e = check(&a, &sha(&bad), None).unwrap_err();
        assert_eq!(e.label, "repr-digest sha-256");
        assert_eq!(e.announced, hex::encode(sha(&body)));
        assert_eq!(e.received, hex::encode(sha(&bad)));
        // MD5 only: a mismatch found by the MD5 hasher.
        let h = headers(&[("content-md5", b64(&md5(&body)))]);
        let a = announced(&h);
        let mut m = Md5Hasher::for_announced(&a);
        m.update(&bad);
        let e = check(&a, &sha(&bad), m.finish().as_deref()).unwrap_err();
        assert_eq!(e.label, "content-md5 md5");
    }
}
