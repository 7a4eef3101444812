//! The collector: one verified, streamed, idempotent download per call.

use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use object_store::path::Path;
use object_store::WriteMultipart;
use reqwest::header::{ACCEPT_ENCODING, CONTENT_LENGTH};
use reqwest::StatusCode;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tracing::{debug, info, warn};
use url::Url;

use crate::error::CollectError;
use crate::integrity::{self, Announced, Md5Hasher};
use crate::storage::{Storage, StorageError};

/// Content type of stored videos.
const VIDEO_CONTENT_TYPE: &str = "video/mp4";
/// Bytes needed to see the `ftyp` box header: 4 bytes size + 4 bytes type.
const FTYP_PROBE_LEN: usize = 8;

/// Tuning of a [`Collector`]. `Default` gives production values.
#[derive(Debug, Clone)]
pub struct CollectOptions {
    /// Size cap in bytes (default 2 GiB). A larger `Content-Length` is refused before any
    /// byte is read; a body without one is cut off as soon as it passes the cap.
    pub max_bytes: u64,
    /// Multipart part size in bytes (default 8 MiB). Raised to the backend minimum (5 MiB on
    /// S3, GCS and Azure) by [`Collector::new`]. Peak buffer memory per collect is about
    /// `part_size × (max_concurrent_parts + 1)`.
    pub part_size: usize,
    /// Parts uploaded in parallel per collect (default 2); at least 1.
    pub max_concurrent_parts: usize,
    /// Cap on one whole download, headers to last byte (default 30 min).
    pub request_timeout: Duration,
    /// Cap on the silence between two body chunks (default 60 s): a stalled source fails
    /// fast instead of holding a worker until `request_timeout`.
    pub idle_timeout: Duration,
    /// When a job looks already collected, also re-read the stored video and compare its
    /// SHA-256 with the sidecar's (default `false`: compare sizes only, which is what
    /// `head` gives for free).
    pub verify_existing: bool,
}

impl Default for CollectOptions {
    fn default() -> Self {
        Self {
            max_bytes: 2 * 1024 * 1024 * 1024,
            part_size: 8 * 1024 * 1024,
            max_concurrent_parts: 2,
            request_timeout: Duration::from_secs(30 * 60),
            idle_timeout: Duration::from_secs(60),
            verify_existing: false,
        }
    }
}

/// One job output to collect.
#[derive(Debug, Clone)]
pub struct CollectRequest {
    /// Campaign id (sanitised into the key; must not be empty).
    pub campaign: String,
    /// Job id (sanitised into the key; must not be empty).
    pub job_id: String,
    /// The vendor's output URL (http or https).
    pub url: Url,
    /// When the vendor said the link expires, if it did.
    pub expires_at: Option<SystemTime>,
    /// The job record to store as the sidecar (a JSON object, or `null` for none). The
    /// collector adds the verification fields listed in [`SIDECAR_FIELDS`]; a top-level
    /// `task_id` in it takes part in the idempotency check.
    pub sidecar: Value,
}

/// Fields the collector writes into the sidecar, over any of the same name in the record:
/// `sha256` (hex), `bytes`, `verified_digests` (the source's announced digests the bytes
/// were checked against, e.g. `["repr-digest sha-256"]`; empty when it announced none),
/// `object_key`, `object_url`, `source_url`, `stored_at` (RFC 3339, UTC), `collect_ms`
/// (download + upload time).
pub const SIDECAR_FIELDS: &[&str] = &[
    "sha256",
    "bytes",
    "verified_digests",
    "object_key",
    "object_url",
    "source_url",
    "stored_at",
    "collect_ms",
];

/// A stored output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collected {
    /// Key of the video inside the store (`<prefix>/<campaign>/<job>.mp4`).
    pub key: String,
    /// Key of the sidecar JSON (`<prefix>/<campaign>/<job>.json`).
    pub sidecar_key: String,
    /// Object URL, e.g. `file:///data/out/c/j.mp4` or `s3://bucket/prefix/c/j.mp4`.
    pub url: String,
    /// SHA-256 of the stored bytes, lower-case hex.
    pub sha256: String,
    /// Size of the stored video.
    pub bytes: u64,
    /// Digests announced by the source that the bytes matched (`<header> <algorithm>`, e.g.
    /// `repr-digest sha-256`). Empty: the source announced none, so bytes altered in transit
    /// with the length and MP4 structure intact could not be detected.
    pub verified_digests: Vec<String>,
    /// `true` when the job was already stored and nothing was downloaded.
    pub skipped_existing: bool,
}

/// Streams vendor outputs into a [`Storage`]. Cheap to clone; share one per worker.
#[derive(Debug, Clone)]
pub struct Collector {
    storage: Storage,
    client: reqwest::Client,
    options: CollectOptions,
}

impl Collector {
    /// A collector writing to `storage`, downloading with `client` (whose connect timeout,
    /// proxy and redirect policy apply: give it a `connect_timeout`, reqwest has none by
    /// default; redirects are followed, as vendor CDNs use them). `options.part_size` is raised to the backend's
    /// minimum part size and `max_concurrent_parts` to at least 1.
    pub fn new(storage: Storage, client: reqwest::Client, mut options: CollectOptions) -> Self {
        let min_part = storage.backend().min_part_size();
        if options.part_size < min_part {
            warn!(
                requested = options.part_size,
                used = min_part,
                "collect part_size below the backend minimum; raised"
            );
            options.part_size = min_part;
        }
        options.max_concurrent_parts = options.max_concurrent_parts.max(1);
        Self {
            storage,
            client,
            options,
        }
    }

    /// The storage outputs go to.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// The same collector writing to another storage (e.g. [`Storage::subdir`] for a
    /// campaign's output prefix); the HTTP client and options are shared.
    pub fn with_storage(&self, storage: Storage) -> Collector {
        Collector {
            storage,
            client: self.client.clone(),
            options: self.options.clone(),
        }
    }

    /// The effective options (after [`Collector::new`] adjusted them).
    pub fn options(&self) -> &CollectOptions {
        &self.options
    }

    /// Collects one output: one attempt, no retries (the caller retries on
    /// [`CollectError::class`]).
    ///
    /// Order of work: validate the request; if a matching sidecar and video exist, return
    /// them (`skipped_existing`); refuse a link whose `expires_at` has passed; GET the URL;
    /// check status and `Content-Length` against the cap; check the `ftyp` box in the first
    /// bytes; only then open a multipart upload and stream the body into it, hashing,
    /// counting and enforcing the cap on the way; check the byte count against
    /// `Content-Length`; complete the upload; write the sidecar. Any failure after the upload
    /// was opened aborts it, so the final key never shows a partial object.
    #[tracing::instrument(name = "collect", skip_all, fields(campaign = %req.campaign, job_id = %req.job_id))]
    pub async fn collect(&self, req: &CollectRequest) -> Result<Collected, CollectError> {
        let started = Instant::now();
        let record = validate(req)?;
        let (key, sidecar_key) = self.storage.object_key(&req.campaign, &req.job_id);
        let shown_url = redact_source(&req.url);

        if let Some(done) = self.existing(req, &key, &sidecar_key).await? {
            debug!(key = %key, "already collected; not downloading");
            return Ok(done);
        }
        if let Some(expires_at) = req.expires_at {
            if SystemTime::now() >= expires_at {
                return Err(CollectError::Expired {
                    url: shown_url,
                    status: None,
                    expires_at: Some(expires_at),
                });
            }
        }

        let response = self
            .client
            .get(req.url.clone())
            // The stored bytes must be the file itself and `Content-Length` its size: ask
            // for no transfer encoding (and so no client-side decompression either).
            .header(ACCEPT_ENCODING, "identity")
            .timeout(self.options.request_timeout)
            .send()
            .await
            .map_err(|e| CollectError::Request {
                url: shown_url.clone(),
                source: e.without_url(),
            })?;
        let status = response.status();
        if status != StatusCode::OK {
            return Err(status_error(status, req.expires_at, shown_url));
        }
        let declared = declared_length(&response);
        let announced = integrity::announced(response.headers());
        if let Some(size) = declared {
            if size > self.options.max_bytes {
                return Err(CollectError::TooLarge {
                    url: shown_url,
                    limit: self.options.max_bytes,
                    size,
                    declared: true,
                });
            }
        }

        let mut body = Body {
            stream: Box::pin(response.bytes_stream()),
            url: &shown_url,
            declared,
            idle: self.options.idle_timeout,
            received: 0,
            ended: false,
        };
        // Read just enough to recognise an MP4 before touching storage, so an HTML error page
        // never even opens an upload.
        let mut head: Vec<Bytes> = Vec::new();
        let mut head_len = 0usize;
        while head_len < FTYP_PROBE_LEN {
            match body.next().await? {
                Some(chunk) => {
                    head_len += chunk.len();
                    head.push(chunk);
                }
                None => break,
            }
        }
        body.check_complete()?;
        let mut probe = Vec::with_capacity(FTYP_PROBE_LEN);
        for chunk in &head {
            let take = (FTYP_PROBE_LEN - probe.len()).min(chunk.len());
            probe.extend_from_slice(&chunk[..take]);
        }
        check_ftyp(&probe).map_err(|reason| CollectError::Corrupt {
            url: shown_url.clone(),
            reason,
        })?;

        let upload = self
            .storage
            .start_multipart(&key, VIDEO_CONTENT_TYPE)
            .await?;
        let mut upload = WriteMultipart::new_with_chunk_size(upload, self.options.part_size);
        let mut hasher = Sha256::new();
        let pumped = self
            .pump(&mut upload, &mut hasher, head, &mut body, &key, &announced)
            .await;
        let verified_digests = match pumped {
            Ok(checked) => checked,
            Err(e) => {
                // Discard the parts: nothing of this attempt may become visible.
                if let Err(abort) = upload.abort().await {
                    warn!(key = %key, error = %abort, "aborting multipart upload failed; parts may linger until the bucket's lifecycle rule removes them");
                }
                return Err(e);
            }
        };
        upload
            .finish()
            .await
            .map_err(|source| StorageError::Backend {
                op: "complete multipart",
                key: key.to_string(),
                source,
            })?;
        let bytes = body.received;
        let sha256 = hex::encode(hasher.finalize());

        let object_url = self.storage.object_url(&key);
        let mut sidecar = record;
        let fields = [
            ("sha256", Value::from(sha256.clone())),
            ("bytes", Value::from(bytes)),
            ("verified_digests", Value::from(verified_digests.clone())),
            ("object_key", Value::from(key.to_string())),
            ("object_url", Value::from(object_url.clone())),
            ("source_url", Value::from(req.url.as_str())),
            (
                "stored_at",
                Value::from(
                    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                ),
            ),
            (
                "collect_ms",
                Value::from(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)),
            ),
        ];
        for (name, value) in fields {
            sidecar.insert(name.to_owned(), value);
        }
        // Serialising a `Map<String, Value>` cannot fail (string keys, no custom types).
        let json = serde_json::to_vec_pretty(&Value::Object(sidecar))
            .expect("a JSON map always serialises");
        self.storage
            .put(&sidecar_key, Bytes::from(json), "application/json")
            .await?;

        info!(key = %key, bytes, sha256 = %sha256, ms = started.elapsed().as_millis() as u64, "collected");
        Ok(Collected {
            key: key.to_string(),
            sidecar_key: sidecar_key.to_string(),
            url: object_url,
            sha256,
            bytes,
            verified_digests,
            skipped_existing: false,
        })
    }

    /// Streams the rest of the body into `upload`. Memory stays bounded because each chunk
    /// waits for upload capacity before it is buffered. Returns the announced digests the
    /// bytes were checked against.
    async fn pump(
        &self,
        upload: &mut WriteMultipart,
        hasher: &mut Sha256,
        head: Vec<Bytes>,
        body: &mut Body<'_>,
        key: &Path,
        announced: &[Announced],
    ) -> Result<Vec<String>, CollectError> {
        let storage_err = |source| StorageError::Backend {
            op: "upload part",
            key: key.to_string(),
            source,
        };
        // The head was counted by `body` already; check the cap on it too.
        self.check_cap(body)?;
        let mut boxes = BoxWalk::default();
        let mut md5 = Md5Hasher::for_announced(announced);
        for chunk in head {
            hasher.update(&chunk);
            md5.update(&chunk);
            boxes.feed(&chunk);
            upload.put(chunk);
        }
        while let Some(chunk) = body.next().await? {
            self.check_cap(body)?;
            hasher.update(&chunk);
            md5.update(&chunk);
            boxes.feed(&chunk);
            upload
                .wait_for_capacity(self.options.max_concurrent_parts)
                .await
                .map_err(storage_err)?;
            upload.put(chunk);
        }
        body.check_complete()?;
        // A file cut short whose Content-Length was cut with it passes the length check; the
        // MP4's own top-level box sizes must still tile it exactly.
        boxes
            .finish(body.received)
            .map_err(|reason| CollectError::Corrupt {
                url: body.url.to_string(),
                reason,
            })?;
        // Bytes altered in transit keep the length and the boxes; only the source's own
        // digest shows them. Checked before the upload is completed.
        let sha256 = hasher.clone().finalize();
        integrity::check(announced, &sha256, md5.finish().as_deref()).map_err(|m| {
            CollectError::DigestMismatch {
                url: body.url.to_string(),
                digest: m.label,
                announced: m.announced,
                received: m.received,
            }
        })
    }

    fn check_cap(&self, body: &Body<'_>) -> Result<(), CollectError> {
        if body.received > self.options.max_bytes {
            return Err(CollectError::TooLarge {
                url: body.url.to_owned(),
                limit: self.options.max_bytes,
                size: body.received,
                declared: false,
            });
        }
        Ok(())
    }

    /// Returns the stored result if this job is already collected from the same source.
    /// A sidecar that does not match is deleted first, so that no later crash can leave it
    /// next to a new video it does not describe.
    async fn existing(
        &self,
        req: &CollectRequest,
        key: &Path,
        sidecar_key: &Path,
    ) -> Result<Option<Collected>, CollectError> {
        let Some(raw) = self.storage.get(sidecar_key).await? else {
            return Ok(None);
        };
        match self.matching(req, key, &raw).await? {
            Some((sha256, bytes, verified_digests)) => Ok(Some(Collected {
                key: key.to_string(),
                sidecar_key: sidecar_key.to_string(),
                url: self.storage.object_url(key),
                sha256,
                bytes,
                verified_digests,
                skipped_existing: true,
            })),
            None => {
                debug!(key = %sidecar_key, "stale sidecar; collecting again");
                self.storage.delete(sidecar_key).await?;
                Ok(None)
            }
        }
    }

    /// `(sha256, bytes, verified_digests)` from the sidecar if it describes the stored video
    /// and this source.
    async fn matching(
        &self,
        req: &CollectRequest,
        key: &Path,
        raw: &[u8],
    ) -> Result<Option<(String, u64, Vec<String>)>, CollectError> {
        let Ok(Value::Object(stored)) = serde_json::from_slice::<Value>(raw) else {
            return Ok(None);
        };
        let (Some(sha256), Some(bytes)) = (
            stored.get("sha256").and_then(Value::as_str),
            stored.get("bytes").and_then(Value::as_u64),
        ) else {
            return Ok(None);
        };
        let same_url = stored.get("source_url").and_then(Value::as_str) == Some(req.url.as_str());
        // Vendors may re-sign the link of one output; the task id then says it is the same.
        let task = req.sidecar.get("task_id").filter(|t| !t.is_null());
        let same_task = task.is_some() && task == stored.get("task_id");
        if !(same_url || same_task) {
            return Ok(None);
        }
        let Some(meta) = self.storage.head(key).await? else {
            return Ok(None);
        };
        if meta.size != bytes {
            return Ok(None);
        }
        if self.options.verify_existing {
            match self.storage.sha256(key).await? {
                Some((actual, len)) if actual == sha256 && len == bytes => {}
                _ => return Ok(None),
            }
        }
        let verified = stored
            .get("verified_digests")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Some((sha256.to_owned(), bytes, verified)))
    }
}

/// The response body with the bookkeeping every read needs.
struct Body<'a> {
    stream: std::pin::Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    url: &'a str,
    declared: Option<u64>,
    idle: Duration,
    received: u64,
    /// The stream returned its end.
    ended: bool,
}

impl Body<'_> {
    /// The next non-empty chunk, `None` at the end of the body.
    async fn next(&mut self) -> Result<Option<Bytes>, CollectError> {
        loop {
            let item = tokio::time::timeout(self.idle, self.stream.next())
                .await
                .map_err(|_| CollectError::Stalled {
                    url: self.url.to_owned(),
                    idle: self.idle,
                    received: self.received,
                })?;
            match item {
                None => {
                    self.ended = true;
                    return Ok(None);
                }
                Some(Ok(chunk)) if chunk.is_empty() => continue,
                Some(Ok(chunk)) => {
                    self.received += chunk.len() as u64;
                    return Ok(Some(chunk));
                }
                Some(Err(e)) => return Err(self.body_error(e)),
            }
        }
    }

    /// Once the body has ended: did exactly `Content-Length` bytes arrive? (hyper stops at
    /// `Content-Length`, so in practice this catches bodies that ended short.)
    fn check_complete(&self) -> Result<(), CollectError> {
        match self.declared {
            Some(expected) if self.ended && expected != self.received => {
                Err(CollectError::Truncated {
                    url: self.url.to_owned(),
                    expected,
                    received: self.received,
                })
            }
            _ => Ok(()),
        }
    }

    fn body_error(&self, e: reqwest::Error) -> CollectError {
        let reset = is_connection_reset(&e);
        match self.declared {
            // HTTP/1 reports a clean close before `Content-Length` as a body error; that is
            // a truncation. A reset or a timeout is reported as what it is.
            Some(expected) if !reset && !e.is_timeout() && self.received < expected => {
                CollectError::Truncated {
                    url: self.url.to_owned(),
                    expected,
                    received: self.received,
                }
            }
            _ => CollectError::Interrupted {
                url: self.url.to_owned(),
                received: self.received,
                source: e.without_url(),
            },
        }
    }
}

fn is_connection_reset(e: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
            ) {
                return true;
            }
        }
        source = err.source();
    }
    false
}

fn validate(req: &CollectRequest) -> Result<Map<String, Value>, CollectError> {
    if req.campaign.is_empty() {
        return Err(CollectError::InvalidRequest {
            field: "campaign",
            reason: "empty".into(),
        });
    }
    if req.job_id.is_empty() {
        return Err(CollectError::InvalidRequest {
            field: "job_id",
            reason: "empty".into(),
        });
    }
    if !matches!(req.url.scheme(), "http" | "https") {
        return Err(CollectError::InvalidRequest {
            field: "url",
            reason: format!("scheme `{}` is not http or https", req.url.scheme()),
        });
    }
    match &req.sidecar {
        Value::Object(map) => Ok(map.clone()),
        Value::Null => Ok(Map::new()),
        other => Err(CollectError::InvalidRequest {
            field: "sidecar",
            reason: format!("must be a JSON object or null, got {}", json_kind(other)),
        }),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn declared_length(response: &reqwest::Response) -> Option<u64> {
    response
        .headers()
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Maps a non-200 status to an error; the status → class decision lives here.
fn status_error(status: StatusCode, expires_at: Option<SystemTime>, url: String) -> CollectError {
    let past_expiry = expires_at.is_some_and(|t| SystemTime::now() >= t);
    let code = status.as_u16();
    match code {
        410 => CollectError::Expired {
            url,
            status: Some(code),
            expires_at,
        },
        403 | 404 if past_expiry => CollectError::Expired {
            url,
            status: Some(code),
            expires_at,
        },
        _ => CollectError::Status {
            url,
            status: code,
            retryable: matches!(code, 403 | 404 | 408 | 425 | 429) || status.is_server_error(),
        },
    }
}

/// Checks that `probe` (the first up to 8 bytes) starts an ISO-BMFF file: a box of type
/// `ftyp` at offset 4 whose declared size is plausible.
/// Follows the top-level ISO-BMFF boxes (`ftyp`, `moov`, `mdat`, ...) of a streamed file by
/// their declared sizes, without buffering: a complete MP4 is tiled exactly by its boxes, so a
/// file that ends inside a box was truncated (even when its `Content-Length` says otherwise).
#[derive(Debug, Default)]
struct BoxWalk {
    /// Bytes seen so far.
    seen: u64,
    /// Offset of the next box header.
    next: u64,
    /// Header bytes of the next box gathered so far (a header may span chunks).
    header: Vec<u8>,
    /// A box of size 0 ("to the end of the file") was seen: nothing follows it.
    open_ended: bool,
    /// A malformed size was seen.
    bad: Option<String>,
}

impl BoxWalk {
    fn feed(&mut self, chunk: &[u8]) {
        let start = self.seen;
        self.seen += chunk.len() as u64;
        while !self.open_ended && self.bad.is_none() && self.next < self.seen {
            let at = (self.next - start) as usize;
            let need = if self.header.len() >= 8 && be32(&self.header) == 1 {
                16
            } else {
                8
            };
            let take = (need - self.header.len()).min(chunk.len() - at);
            self.header.extend_from_slice(&chunk[at..at + take]);
            self.next += take as u64;
            if self.header.len() < need {
                continue;
            }
            let size32 = be32(&self.header);
            if size32 == 1 && need == 8 {
                continue; // a 64-bit size follows
            }
            let (size, header_len) = match size32 {
                0 => {
                    self.open_ended = true;
                    break;
                }
                1 => (
                    u64::from_be_bytes(self.header[8..16].try_into().expect("16 header bytes")),
                    16,
                ),
                n => (u64::from(n), 8),
            };
            if size < header_len {
                self.bad = Some(format!("box size {size} is smaller than its header"));
                break;
            }
            self.next += size - header_len;
            self.header.clear();
        }
    }

    fn finish(&self, total: u64) -> Result<(), String> {
        if let Some(bad) = &self.bad {
            return Err(bad.clone());
        }
        if self.open_ended {
            return Ok(());
        }
        if !self.header.is_empty() || self.next != total {
            return Err(format!(
                "the MP4 ends inside a box ({total} bytes, its boxes need {}): truncated",
                self.next.max(total + 1)
            ));
        }
        Ok(())
    }
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes(b[..4].try_into().expect("4 header bytes"))
}

pub fn check_ftyp(probe: &[u8]) -> Result<(), String> {
    if probe.len() < FTYP_PROBE_LEN {
        return Err(format!(
            "only {} bytes, an MP4 starts with an 8-byte ftyp box header",
            probe.len()
        ));
    }
    if &probe[4..8] != b"ftyp" {
        return Err(format!(
            "no ftyp box at offset 4 (first bytes {})",
            hex::encode(&probe[..FTYP_PROBE_LEN])
        ));
    }
    let size = u32::from_be_bytes([probe[0], probe[1], probe[2], probe[3]]);
    // 16 = size + type + major brand + minor version; 1 means a 64-bit size follows.
    if size != 1 && size < 16 {
        return Err(format!("ftyp box size {size} is too small"));
    }
    Ok(())
}

/// The source URL for messages: scheme, host, port and path; the query (a signature, for
/// signed links) and user info are left out.
fn redact_source(url: &Url) -> String {
    let mut shown = url.clone();
    // Setting credentials only fails on URLs that cannot carry them, where there are none.
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    if shown.query().is_some() {
        shown.set_query(Some("…"));
    }
    shown.set_fragment(None);
    shown.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ftyp_probe() {
        // Box tiling: whole files pass, cut files fail wherever the cut and chunking fall.
        let mut file = Vec::new();
        file.extend_from_slice(&[0, 0, 0, 16]);
        file.extend_from_slice(b"ftypisom\0\0\0\0");
        file.extend_from_slice(&[0, 0, 0, 1]);
        file.extend_from_slice(b"mdat");
        file.extend_from_slice(&(16u64 + 40).to_be_bytes());
        file.extend_from_slice(&[7u8; 40]);
        file.extend_from_slice(&[0, 0, 0, 12]);
        file.extend_from_slice(b"moov\0\0\0\0");
        for split in 1..file.len() {
            let mut w = BoxWalk::default();
            w.feed(&file[..split]);
            w.feed(&file[split..]);
            assert!(w.finish(file.len() as u64).is_ok(), "split at {split}");
            let mut cut = BoxWalk::default();
            cut.feed(&file[..split]);
            assert!(
                cut.finish(split as u64).is_err() || split == 16 || split == 72,
                "cut at {split}"
            );
        }
        let mut w = BoxWalk::default();
        w.feed(&[0, 0, 0, 4, b'f', b'r', b'e', b'e']);
        assert!(w.finish(8).unwrap_err().contains("smaller than its header"));
        assert!(check_ftyp(b"\0\0\0\x18ftypisom").is_ok());
        assert!(check_ftyp(b"\0\0\0\x01ftyp").is_ok());
        assert!(check_ftyp(b"<!DOCTYPE html>")
            .unwrap_err()
            .contains("no ftyp"));
        assert!(check_ftyp(b"\0\0\0\x08ftyp")
            .unwrap_err()
            .contains("too small"));
        assert!(check_ftyp(b"\0\0").unwrap_err().contains("only 2 bytes"));
    }

    #[test]
    fn status_classes() {
        let past = Some(SystemTime::now() - Duration::from_secs(1));
        let future = Some(SystemTime::now() + Duration::from_secs(3600));
        let class = |code: u16, exp| {
            status_error(StatusCode::from_u16(code).unwrap(), exp, "u".into()).class()
        };
        use crate::ErrorClass::*;
        assert_eq!(class(410, None), Expired);
        assert_eq!(class(403, past), Expired);
        assert_eq!(class(404, past), Expired);
        assert_eq!(class(403, future), Transient);
        assert_eq!(class(404, None), Transient);
        assert_eq!(class(503, None), Transient);
        assert_eq!(class(429, None), Transient);
        assert_eq!(class(400, None), Invalid);
        assert_eq!(class(401, past), Invalid);
        assert_eq!(class(204, None), Invalid);
    }

    #[test]
    fn request_validation_names_the_field() {
        let ok = CollectRequest {
            campaign: "c".into(),
            job_id: "j".into(),
            url: Url::parse("https://cdn.example/x.mp4").unwrap(),
            expires_at: None,
            sidecar: Value::Null,
        };
        assert!(validate(&ok).is_ok());
        let mut r = ok.clone();
        r.job_id.clear();
        assert!(validate(&r).unwrap_err().to_string().contains("job_id"));
        let mut r = ok.clone();
        r.url = Url::parse("ftp://x/y").unwrap();
        assert!(validate(&r).unwrap_err().to_string().contains("url"));
        let mut r = ok;
        r.sidecar = Value::from(3);
        let e = validate(&r).unwrap_err();
        assert!(e.to_string().contains("sidecar"));
        assert_eq!(e.class(), crate::ErrorClass::Invalid);
    }

    #[test]
    fn source_url_is_redacted() {
        let u = Url::parse("https://user:pw@cdn.example/a.mp4?X-Amz-Signature=abc#f").unwrap();
        let shown = redact_source(&u);
        assert!(!shown.contains("abc") && !shown.contains("pw"), "{shown}");
        assert!(shown.starts_with("https://cdn.example/a.mp4"), "{shown}");
    }
}
