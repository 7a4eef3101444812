//! A small HTTP file server on loopback for the probe tests: `/media/` honours Range,
//! `/norange/` ignores it (200, whole body with Content-Length), `/chunked/` streams without a
//! length, plus redirect, status, wrong-range and never-answering routes. It counts requests
//! and the body bytes it hands to the HTTP layer.

#![allow(dead_code)] // each test file uses a different part

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use futures::StreamExt;
use url::Url;

#[derive(Clone, Default)]
pub struct Files {
    files: Arc<HashMap<String, Vec<u8>>>,
    /// Body bytes handed to the HTTP layer, over all requests.
    served: Arc<AtomicU64>,
    requests: Arc<AtomicU64>,
}

impl Files {
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::SeqCst)
    }
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
    pub fn reset(&self) {
        self.served.store(0, Ordering::SeqCst);
        self.requests.store(0, Ordering::SeqCst);
    }
    fn get(&self, name: &str) -> Option<Vec<u8>> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        self.files.get(name).cloned()
    }
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n` → Some(Ok(inclusive range)) or Some(Err) if unsatisfiable.
fn parse_range(value: &str, len: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = value.strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let (start, end) = if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        (len.saturating_sub(n), len.saturating_sub(1))
    } else {
        let start: u64 = a.parse().ok()?;
        let end = if b.is_empty() {
            len.saturating_sub(1)
        } else {
            b.parse().ok()?
        };
        (start, end.min(len.saturating_sub(1)))
    };
    if start >= len || end < start {
        return Some(Err(()));
    }
    Some(Ok((start, end)))
}

fn not_found() -> Response {
    Response::builder()
        .status(StatusCode::NOT_FOUND)
        .body(Body::from("<!DOCTYPE html><title>404</title>"))
        .unwrap()
}

async fn ranged(State(s): State<Files>, Path(name): Path<String>, headers: HeaderMap) -> Response {
    let Some(file) = s.get(&name) else {
        return not_found();
    };
    let len = file.len() as u64;
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_range(v, len));
    match range {
        None => {
            s.served.fetch_add(len, Ordering::SeqCst);
            Response::new(Body::from(file))
        }
        Some(Ok((start, end))) => {
            let part = file[start as usize..=end as usize].to_vec();
            s.served.fetch_add(part.len() as u64, Ordering::SeqCst);
            Response::builder()
                .status(StatusCode::PARTIAL_CONTENT)
                .header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"))
                .body(Body::from(part))
                .unwrap()
        }
        Some(Err(())) => Response::builder()
            .status(StatusCode::RANGE_NOT_SATISFIABLE)
            .header(header::CONTENT_RANGE, format!("bytes */{len}"))
            .body(Body::empty())
            .unwrap(),
    }
}

/// Streams the whole file in 4 KiB chunks, counting each chunk when the server pulls it.
fn streamed(s: &Files, file: Vec<u8>) -> Body {
    let served = s.served.clone();
    let chunks: Vec<Bytes> = file.chunks(4096).map(Bytes::copy_from_slice).collect();
    Body::from_stream(futures::stream::iter(chunks).map(move |chunk| {
        served.fetch_add(chunk.len() as u64, Ordering::SeqCst);
        Ok::<_, Infallible>(chunk)
    }))
}

async fn no_range(State(s): State<Files>, Path(name): Path<String>) -> Response {
    let Some(file) = s.get(&name) else {
        return not_found();
    };
    let len = file.len();
    Response::builder()
        .header(header::CONTENT_LENGTH, len)
        .body(streamed(&s, file))
        .unwrap()
}

async fn chunked(State(s): State<Files>, Path(name): Path<String>) -> Response {
    let Some(file) = s.get(&name) else {
        return not_found();
    };
    Response::new(streamed(&s, file))
}

/// Answers 206 but from the wrong offset.
async fn wrong_range(State(s): State<Files>, Path(name): Path<String>) -> Response {
    let Some(file) = s.get(&name) else {
        return not_found();
    };
    let len = file.len();
    Response::builder()
        .status(StatusCode::PARTIAL_CONTENT)
        .header(header::CONTENT_RANGE, format!("bytes 100-199/{len}"))
        .body(Body::from(file[100..200].to_vec()))
        .unwrap()
}

async fn redirect(Path((hops, name)): Path<(u32, String)>) -> Response {
    let to = if hops == 0 {
        format!("/media/{name}")
    } else {
        format!("/redirect/{}/{name}", hops - 1)
    };
    Response::builder()
        .status(StatusCode::FOUND)
        .header(header::LOCATION, to)
        .body(Body::empty())
        .unwrap()
}

async fn redirect_loop() -> Response {
    Response::builder()
        .status(StatusCode::FOUND)
        .header(header::LOCATION, "/loop")
        .body(Body::empty())
        .unwrap()
}

async fn status(Path(code): Path<u16>) -> Response {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap())
        .body(Body::from("error"))
        .unwrap()
}

async fn never_answers() -> Response {
    std::future::pending::<()>().await;
    unreachable!()
}

pub struct TestServer {
    pub base: Url,
    pub files: Files,
}

impl TestServer {
    /// Serves every motionq-media sample plus `extra` files.
    pub async fn start(extra: Vec<(String, Vec<u8>)>) -> TestServer {
        let mut map: Vec<(String, Vec<u8>)> = motionq_media::samples()
            .into_iter()
            .map(|s| (s.name.to_string(), s.bytes))
            .collect();
        map.extend(extra);
        Self::with_files(map).await
    }

    /// Serves only `files`.
    pub async fn with_files(files: Vec<(String, Vec<u8>)>) -> TestServer {
        let map: HashMap<String, Vec<u8>> = files.into_iter().collect();
        let files = Files {
            files: Arc::new(map),
            ..Files::default()
        };
        let app = Router::new()
            .route("/media/{name}", get(ranged))
            .route("/norange/{name}", get(no_range))
            .route("/chunked/{name}", get(chunked))
            .route("/wrongrange/{name}", get(wrong_range))
            .route("/redirect/{hops}/{name}", get(redirect))
            .route("/loop", get(redirect_loop))
            .route("/status/{code}", get(status))
            .route("/slow", get(never_answers))
            .with_state(files.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        TestServer {
            base: Url::parse(&format!("http://{addr}/")).unwrap(),
            files,
        }
    }

    pub fn url(&self, path: &str) -> Url {
        self.base.join(path).unwrap()
    }
}
