//! Real components for the collector tests and the benchmark: an HTTP source server with
//! fault routes (axum on 127.0.0.1:0), a raw TCP server that resets connections mid-body,
//! and an in-process S3-compatible server (s3s-fs) with SigV4 credentials.

// Each test binary and the benchmark use a different subset of these helpers.
#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use futures::Stream;
use motionq_collect::{Storage, StorageConfig};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Static S3 credentials the in-process server checks (SigV4).
#[allow(unused_imports)] // each test binary uses a different subset
pub use motionq_testkit::{S3_ACCESS_KEY, S3_BUCKET, S3_SECRET_KEY};

/// Chunk size the generated bodies are served in.
const GEN_CHUNK: usize = 256 * 1024;

/// The first 32 bytes of a generated body: a 24-byte `ftyp` box (brand `isom`) and the
/// header of an `mdat` box spanning the rest of the body.
pub fn mp4_header(total: u64) -> Vec<u8> {
    let mut h = Vec::with_capacity(32);
    h.extend_from_slice(&24u32.to_be_bytes());
    h.extend_from_slice(b"ftypisom");
    h.extend_from_slice(&0x200u32.to_be_bytes());
    h.extend_from_slice(b"isomiso2");
    let mdat = u32::try_from(total.saturating_sub(24)).unwrap_or(1);
    h.extend_from_slice(&mdat.to_be_bytes());
    h.extend_from_slice(b"mdat");
    h
}

/// A deterministic 1 MiB block of pseudo-random payload (xorshift), shared by all bodies.
fn payload_block() -> Bytes {
    static BLOCK: std::sync::OnceLock<Bytes> = std::sync::OnceLock::new();
    BLOCK
        .get_or_init(|| {
            let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
            let mut v = Vec::with_capacity(1 << 20);
            while v.len() < (1 << 20) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                v.extend_from_slice(&x.to_le_bytes());
            }
            Bytes::from(v)
        })
        .clone()
}

/// The chunks of a generated MP4-looking body of exactly `total` bytes (≥ 32), produced on
/// the fly: memory use is one shared 1 MiB block, whatever `total` is.
pub fn generated_chunks(total: u64) -> impl Iterator<Item = Bytes> + Send + 'static {
    assert!(
        total >= 32,
        "generated bodies hold at least the 32-byte header"
    );
    let header = Bytes::from(mp4_header(total));
    let block = payload_block();
    let mut remaining = total - header.len() as u64;
    let mut offset = 0usize;
    std::iter::once(header).chain(std::iter::from_fn(move || {
        if remaining == 0 {
            return None;
        }
        let n = (GEN_CHUNK as u64)
            .min(remaining)
            .min((block.len() - offset) as u64) as usize;
        let chunk = block.slice(offset..offset + n);
        offset = (offset + n) % block.len();
        remaining -= n as u64;
        Some(chunk)
    }))
}

/// SHA-256 (hex) of the generated body of `total` bytes.
pub fn generated_sha256(total: u64) -> String {
    let mut h = Sha256::new();
    for c in generated_chunks(total) {
        h.update(&c);
    }
    hex::encode(h.finalize())
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

#[derive(Default)]
struct SourceState {
    /// Files served at `/v/<name>`.
    files: Mutex<HashMap<String, Bytes>>,
    /// Requests per path (query excluded).
    hits: Mutex<HashMap<String, u64>>,
    /// `Accept-Encoding` of every request, in arrival order (`-` when absent).
    accept_encodings: Mutex<Vec<String>>,
}

/// The vendor side: an HTTP server on 127.0.0.1:0 serving outputs and faults.
///
/// Routes: `/v/<name>` (registered files), `/redirect/<name>` (302 to `/v/<name>`), `/gen/<bytes>` (generated body with
/// Content-Length), `/unsized/<bytes>` (generated, chunked, no Content-Length),
/// `/truncated/<bytes>` (declares `<bytes>`, sends half, then closes), `/corrupt` (an HTML
/// page with 200), `/digest/<name>/<how>` (file `<name>` with the digest headers of `<how>`:
/// `good` = a true `Repr-Digest`; `flipped` = 64 bytes flipped mid-file under the true
/// `Repr-Digest`; `flipped-md5` = the same under a true `Content-MD5`; `junk` = an unreadable
/// `Repr-Digest` over the true file), `/status/<code>`, `/late-status/<ms>/<code>` (answers after `<ms>`), `/slow` (1 MiB in 32 KiB chunks, 10 ms apart),
/// `/stall` (sends the header, then nothing), `/stall-after/<total>/<sent>` (declares
/// `<total>`, sends `<sent>`, then nothing). `reset_url` is a separate raw TCP server that
/// resets the connection mid-body.
pub struct SourceServer {
    pub addr: SocketAddr,
    pub reset_addr: SocketAddr,
    state: Arc<SourceState>,
    tasks: Vec<JoinHandle<()>>,
}

impl SourceServer {
    pub async fn start() -> SourceServer {
        let state = Arc::new(SourceState::default());
        let app = Router::new()
            .route("/v/{name}", get(serve_file))
            .route("/redirect/{name}", get(serve_redirect))
            .route("/gen/{size}", get(serve_generated))
            .route("/unsized/{size}", get(serve_unsized))
            .route("/truncated/{size}", get(serve_truncated))
            .route("/corrupt", get(serve_corrupt))
            .route("/digest/{name}/{how}", get(serve_with_digest))
            .route("/status/{code}", get(serve_status))
            .route("/late-status/{ms}/{code}", get(serve_late_status))
            .route("/slow", get(serve_slow))
            .route("/stall", get(serve_stall))
            .route("/stall-after/{total}/{sent}", get(serve_stall_after))
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                count_hits,
            ))
            .with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let http = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        let reset_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let reset_addr = reset_listener.local_addr().unwrap();
        let reset = tokio::spawn(serve_resets(reset_listener));
        SourceServer {
            addr,
            reset_addr,
            state,
            tasks: vec![http, reset],
        }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> url::Url {
        url::Url::parse(&format!("http://{}{}", self.addr, path)).unwrap()
    }

    /// A URL on the reset server: it declares `declared` bytes, sends `sent`, then resets.
    pub fn reset_url(&self, declared: u64, sent: u64) -> url::Url {
        url::Url::parse(&format!(
            "http://{}/reset/{declared}/{sent}",
            self.reset_addr
        ))
        .unwrap()
    }

    /// Registers `/v/<name>` and returns its URL.
    pub fn put_file(&self, name: &str, data: impl Into<Bytes>) -> url::Url {
        self.state
            .files
            .lock()
            .unwrap()
            .insert(name.to_owned(), data.into());
        self.url(&format!("/v/{name}"))
    }

    /// The `Accept-Encoding` header of every request so far (`-` when absent).
    pub fn accept_encodings(&self) -> Vec<String> {
        self.state.accept_encodings.lock().unwrap().clone()
    }

    /// Requests seen for `path` (without query).
    pub fn hits(&self, path: &str) -> u64 {
        self.state
            .hits
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for SourceServer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn count_hits(
    State(state): State<Arc<SourceState>>,
    uri: Uri,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    *state
        .hits
        .lock()
        .unwrap()
        .entry(uri.path().to_owned())
        .or_default() += 1;
    let encoding = req
        .headers()
        .get(header::ACCEPT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").to_owned())
        .unwrap_or_else(|| "-".into());
    state.accept_encodings.lock().unwrap().push(encoding);
    next.run(req).await
}

async fn serve_file(
    State(state): State<Arc<SourceState>>,
    UrlPath(name): UrlPath<String>,
) -> Response {
    let file = state.files.lock().unwrap().get(&name).cloned();
    match file {
        Some(bytes) => ([(header::CONTENT_TYPE, "video/mp4")], bytes).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn serve_with_digest(
    State(state): State<Arc<SourceState>>,
    UrlPath((name, how)): UrlPath<(String, String)>,
) -> Response {
    use base64::Engine as _;
    let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
    let Some(file) = state.files.lock().unwrap().get(&name).cloned() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let repr = format!("sha-256=:{}:", b64(&Sha256::digest(&file)));
    let mut flipped = file.to_vec();
    let mid = flipped.len() / 2;
    for b in flipped.iter_mut().skip(mid).take(64) {
        *b ^= 0xA5;
    }
    let (name, value, body) = match how.as_str() {
        "good" => ("repr-digest", repr, file.to_vec()),
        "flipped" => ("repr-digest", repr, flipped),
        "flipped-md5" => {
            use md5::Digest as _;
            ("content-md5", b64(&md5::Md5::digest(&file)), flipped)
        }
        "junk" => ("repr-digest", "sha-256=:%%%:".to_owned(), file.to_vec()),
        _ => return StatusCode::BAD_REQUEST.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, "video/mp4".to_owned()),
            (header::HeaderName::from_static(name), value),
        ],
        body,
    )
        .into_response()
}

async fn serve_redirect(UrlPath(name): UrlPath<String>) -> Response {
    // Vendor CDNs often answer the task's URL with a redirect to a signed storage URL.
    (
        StatusCode::FOUND,
        [(header::LOCATION, format!("/v/{name}?X-Signature=abc"))],
    )
        .into_response()
}

fn stream_of(
    chunks: impl Iterator<Item = Bytes> + Send + 'static,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    futures::stream::iter(chunks.map(Ok))
}

async fn serve_generated(UrlPath(size): UrlPath<u64>) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_LENGTH, size.into());
    headers.insert(header::CONTENT_TYPE, "video/mp4".parse().unwrap());
    (
        headers,
        Body::from_stream(stream_of(generated_chunks(size))),
    )
        .into_response()
}

async fn serve_unsized(UrlPath(size): UrlPath<u64>) -> Response {
    // No Content-Length: hyper sends the stream chunked.
    Body::from_stream(stream_of(generated_chunks(size))).into_response()
}

async fn serve_truncated(UrlPath(size): UrlPath<u64>) -> Response {
    // Declare `size` bytes but end the stream after half of them: hyper then closes the
    // connection without a complete body, as a vendor CDN dropping the transfer would.
    let half = size / 2;
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_LENGTH, size.into());
    let chunks = generated_chunks(size).scan(0u64, move |sent, c| {
        if *sent >= half {
            return None;
        }
        let take = (half - *sent).min(c.len() as u64) as usize;
        *sent += take as u64;
        Some(c.slice(..take))
    });
    (headers, Body::from_stream(stream_of(chunks))).into_response()
}

async fn serve_corrupt() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html")],
        "<!DOCTYPE html><html><body>Service temporarily unavailable</body></html>",
    )
        .into_response()
}

async fn serve_status(UrlPath(code): UrlPath<u16>) -> Response {
    (StatusCode::from_u16(code).unwrap(), "status as requested").into_response()
}

async fn serve_late_status(UrlPath((ms, code)): UrlPath<(u64, u16)>) -> Response {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    serve_status(UrlPath(code)).await
}

async fn serve_slow() -> Response {
    let total: u64 = 1 << 20;
    let chunks: Vec<Bytes> = generated_chunks(total)
        .flat_map(|c| {
            (0..c.len())
                .step_by(32 * 1024)
                .map(move |i| c.slice(i..(i + 32 * 1024).min(c.len())))
                .collect::<Vec<_>>()
        })
        .collect();
    let stream = futures::stream::unfold(chunks.into_iter(), |mut it| async move {
        let c = it.next()?;
        tokio::time::sleep(Duration::from_millis(10)).await;
        Some((Ok::<_, Infallible>(c), it))
    });
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_LENGTH, total.into());
    (headers, Body::from_stream(stream)).into_response()
}

async fn serve_stall() -> Response {
    let header = Bytes::from(mp4_header(1 << 20));
    let stream = futures::stream::once(async move { Ok::<_, Infallible>(header) }).chain(
        futures::stream::once(async {
            // Longer than any idle timeout a test uses; the client gives up first.
            tokio::time::sleep(Duration::from_secs(600)).await;
            Ok::<_, Infallible>(Bytes::new())
        }),
    );
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_LENGTH, (1u64 << 20).into());
    (headers, Body::from_stream(stream)).into_response()
}

async fn serve_stall_after(UrlPath((total, sent)): UrlPath<(u64, u64)>) -> Response {
    let chunks = generated_chunks(total).scan(0u64, move |done, c| {
        if *done >= sent {
            return None;
        }
        let take = (sent - *done).min(c.len() as u64) as usize;
        *done += take as u64;
        Some(c.slice(..take))
    });
    let stream = stream_of(chunks).chain(futures::stream::once(async {
        tokio::time::sleep(Duration::from_secs(600)).await;
        Ok::<_, Infallible>(Bytes::new())
    }));
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_LENGTH, total.into());
    (headers, Body::from_stream(stream)).into_response()
}

/// A reqwest client that never goes through a proxy from the environment: tests only talk
/// to loopback.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

use futures::StreamExt;

/// Raw HTTP/1.1: answer `GET /reset/<declared>/<sent>` with a 200 declaring `declared` bytes,
/// send `sent` of them, then close with SO_LINGER 0 so the kernel sends a TCP RST.
async fn serve_resets(listener: TcpListener) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(async move {
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match sock.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let line = String::from_utf8_lossy(&req);
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
            let nums: Vec<u64> = path
                .trim_start_matches("/reset/")
                .split('/')
                .filter_map(|p| p.parse().ok())
                .collect();
            let (declared, sent) = (nums[0], nums[1]);
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: video/mp4\r\ncontent-length: {declared}\r\n\r\n"
            );
            if sock.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let mut left = sent;
            for chunk in generated_chunks(declared) {
                if left == 0 {
                    break;
                }
                let n = (chunk.len() as u64).min(left) as usize;
                if sock.write_all(&chunk[..n]).await.is_err() {
                    return;
                }
                left -= n as u64;
            }
            let _ = sock.flush().await;
            // Give the client time to read what was sent, so the failure is mid-body.
            tokio::time::sleep(Duration::from_millis(100)).await;
            // SO_LINGER 0 turns the close into a RST. Tokio deprecates it because a non-zero
            // linger blocks on drop; zero does not block.
            #[allow(deprecated)]
            let _ = sock.set_linger(Some(Duration::ZERO));
            drop(sock);
        });
    }
}

/// The shared in-process S3 server of `motionq-testkit`, with this suite's storage helpers.
pub struct S3Server {
    inner: motionq_testkit::S3Server,
    pub endpoint: String,
}

impl std::ops::Deref for S3Server {
    type Target = motionq_testkit::S3Server;
    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl S3Server {
    pub async fn start() -> S3Server {
        let inner = motionq_testkit::S3Server::start().await.unwrap();
        S3Server {
            endpoint: inner.endpoint.clone(),
            inner,
        }
    }

    /// Storage config for `s3://<bucket>/<prefix>` on this server, credentials as options.
    pub fn config(&self, prefix: &str) -> StorageConfig {
        let mut c = StorageConfig::new(format!("s3://{S3_BUCKET}/{prefix}"));
        for (k, v) in self.inner.options() {
            c = c.with_option(k, v);
        }
        c
    }

    pub fn storage(&self, prefix: &str) -> Storage {
        Storage::from_config(&self.config(prefix)).unwrap()
    }
}
