//! The router: vendor endpoints under `/<vendor>/...`, media, downloads, admin, metrics.

use crate::engine::{Accepted, Engine, LinkLookup};
use crate::error::ApiError;
use crate::faults::{Decision, DownloadFault, PreFault};
use crate::http::{self, drop_connection, Damage};
use crate::media::MediaStore;
use crate::vendor::{Endpoint, Tier, Vendor};
use crate::vendors::{self, aivideoapi, evolink, freepik, kkiai};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

type S = State<Arc<Engine>>;

pub(crate) fn router(engine: Arc<Engine>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .route("/media/{name}", get(media))
        .route("/files/{file}", get(download))
        .route("/_sim/ledger", get(admin_ledger))
        .route("/_sim/faults", get(admin_faults).put(admin_put_faults))
        .route("/_sim/reset", post(admin_reset))
        .route("/_sim/tasks/{vendor}/{id}", get(admin_task))
        .route("/evolink/v1/videos/generations", post(evolink_create))
        .route("/evolink/v1/tasks/{id}", get(evolink_query))
        .route(
            "/kkiai/kling/v1/videos/motion-control",
            post(kkiai_create).get(kkiai_list),
        )
        .route(
            "/kkiai/kling/v1/videos/motion-control/{id}",
            get(kkiai_query),
        )
        .route("/aivideoapi/v1/videos/generations", post(aivideoapi_create))
        .route("/aivideoapi/v1/tasks/{id}", get(aivideoapi_query))
        .route("/aivideoapi/v1/credits", get(aivideoapi_credits))
        .route(
            "/highwayapi/v3/async/kling-v3.0-motion-control",
            post(highwayapi_create),
        )
        .route("/highwayapi/v3/async/task-result", get(highwayapi_query))
        .route(
            "/freepik/v1/ai/video/{model}",
            post(freepik_create).get(freepik_list),
        )
        .route("/freepik/v1/ai/video/{model}/{id}", get(freepik_query))
        .fallback(fallback)
        // Base64 images up to 10 MB arrive inside the JSON body (≈13.4 MB encoded).
        .layer(DefaultBodyLimit::max(32 << 20))
        .with_state(engine)
}

// ------------------------------------------------------------------ shared flows

fn retry_after(e: &Engine) -> Option<u64> {
    e.cfg.retry_after.then_some(e.cfg.retry_after_seconds)
}

/// The vendor's error answer (KKIAI's gateway envelope when configured).
fn render_error(e: &Engine, vendor: Vendor, err: &ApiError) -> (StatusCode, Value) {
    if vendor == Vendor::Kkiai && e.vendor_cfg(Vendor::Kkiai).gateway_errors {
        if let Some(r) = kkiai::gateway_error(err) {
            return r;
        }
    }
    vendors::error(vendor, err)
}

fn respond(e: &Engine, vendor: Vendor, r: Result<Value, ApiError>, d: &Decision) -> Response {
    let (status, body) = match r {
        Ok(v) => (StatusCode::OK, v),
        Err(err) => render_error(e, vendor, &err),
    };
    http::json(status, &body, d.body, retry_after(e))
}

/// Applies the pre-processing faults; `Some` means the call ends here.
async fn pre_fault(e: &Engine, vendor: Vendor, d: &Decision) -> Option<Response> {
    if let Some(delay) = d.slow {
        tokio::time::sleep(delay).await;
    }
    let err = match d.pre? {
        PreFault::Status(429) => ApiError::RateLimited,
        PreFault::Status(500) => ApiError::Internal,
        PreFault::Status(_) => ApiError::Unavailable,
        PreFault::Hang(hold) => {
            tokio::time::sleep(hold).await;
            return Some(drop_connection());
        }
        PreFault::Reset => return Some(drop_connection()),
    };
    let (status, body) = render_error(e, vendor, &err);
    Some(http::json(status, &body, None, retry_after(e)))
}

fn authenticate(e: &Engine, vendor: Vendor, headers: &HeaderMap) -> Result<usize, ApiError> {
    let secret = vendors::auth(vendor, headers).inspect_err(|_| e.count_auth_failure(vendor))?;
    e.authenticate(vendor, &secret)
}

fn spawn_driver(e: &Arc<Engine>, vendor: Vendor, acc: &Accepted) {
    let engine = e.clone();
    let id = acc.view.id.clone();
    let (processing_at, done_at) = (acc.processing_at, acc.done_at);
    let (seconds, tier) = (acc.output_seconds, acc.tier);
    let mut stop = e.shutdown.clone();
    tokio::spawn(async move {
        let work = async {
            let output = engine.media.output(seconds, tier).await;
            engine.attach_output(vendor, &id, output);
            for at in [processing_at, done_at] {
                tokio::time::sleep_until(at.into()).await;
                engine.advance(vendor, &id);
            }
            // Completion needs the output; if it was attached late, one more tick finishes it.
            if !engine.is_settled(vendor, &id) {
                engine.advance(vendor, &id);
            }
        };
        tokio::select! {
            _ = work => {}
            _ = stop.wait_for(|s| *s) => {}
        }
    });
}

async fn create(
    e: Arc<Engine>,
    vendor: Vendor,
    headers: HeaderMap,
    body: Bytes,
    path_tier: Option<Tier>,
) -> Response {
    let d = e.decide(vendor, Endpoint::Create);
    if let Some(r) = pre_fault(&e, vendor, &d).await {
        return r;
    }
    let r = authenticate(&e, vendor, &headers).and_then(|key| {
        let r = (|| {
            e.check_access(key)?;
            e.check_rate(key, Endpoint::Create)?;
            let p = vendors::parse_create(vendor, &headers, &body, path_tier)?;
            let checked = e.check_media(vendor, &p)?;
            e.check_callback(&p)?;
            let acc = e.create_task(vendor, key, p, checked)?;
            spawn_driver(&e, vendor, &acc);
            Ok(vendors::create_body(&acc.view))
        })();
        if let Err(err) = &r {
            e.record_rejection(key, err);
        }
        r
    });
    respond(&e, vendor, r, &d)
}

async fn query(
    e: Arc<Engine>,
    vendor: Vendor,
    headers: HeaderMap,
    f: impl FnOnce(&Engine, usize) -> Result<Value, ApiError>,
) -> Response {
    let d = e.decide(vendor, Endpoint::Query);
    if let Some(r) = pre_fault(&e, vendor, &d).await {
        return r;
    }
    let r = authenticate(&e, vendor, &headers).and_then(|key| {
        let r = e
            .check_access(key)
            .and_then(|_| e.check_rate(key, Endpoint::Query))
            .and_then(|_| f(&e, key));
        if let Err(err) = &r {
            e.record_rejection(key, err);
        }
        r
    });
    respond(&e, vendor, r, &d)
}

// ------------------------------------------------------------------ EvoLink

async fn evolink_create(State(e): S, headers: HeaderMap, body: Bytes) -> Response {
    create(e, Vendor::Evolink, headers, body, None).await
}

async fn evolink_query(State(e): S, Path(id): Path<String>, headers: HeaderMap) -> Response {
    query(e, Vendor::Evolink, headers, move |e, key| {
        if !id.starts_with(evolink::ID_PREFIX) {
            return Err(ApiError::InvalidTaskId);
        }
        e.query_task(Vendor::Evolink, key, &id, None)
            .map(|v| vendors::query_body(&v))
    })
    .await
}

// ------------------------------------------------------------------ KKIAI

async fn kkiai_create(State(e): S, headers: HeaderMap, body: Bytes) -> Response {
    create(e, Vendor::Kkiai, headers, body, None).await
}

async fn kkiai_query(State(e): S, Path(id): Path<String>, headers: HeaderMap) -> Response {
    query(e, Vendor::Kkiai, headers, move |e, key| {
        let wrapped = e.vendor_cfg(Vendor::Kkiai).wrapped_queries;
        e.query_task(Vendor::Kkiai, key, &id, None).map(|v| {
            if wrapped {
                kkiai::wrapped_query_body(&v)
            } else {
                vendors::query_body(&v)
            }
        })
    })
    .await
}

fn page_param(
    q: &HashMap<String, String>,
    name: &str,
    default: usize,
    max: usize,
) -> Result<usize, ApiError> {
    match q.get(name) {
        None => Ok(default),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::value(
                name,
                format!("{name} must be an integer between 1 and {max}"),
            )),
        },
    }
}

async fn kkiai_list(
    State(e): S,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    query(e, Vendor::Kkiai, headers, move |e, key| {
        let page = page_param(&q, "pageNum", 1, 1000)?;
        let size = page_param(&q, "pageSize", 30, 500)?;
        Ok(kkiai::list_body(&e.list_tasks(key, None, page, size)))
    })
    .await
}

// ------------------------------------------------------------------ AI Video API

async fn aivideoapi_create(State(e): S, headers: HeaderMap, body: Bytes) -> Response {
    create(e, Vendor::Aivideoapi, headers, body, None).await
}

async fn aivideoapi_query(State(e): S, Path(id): Path<String>, headers: HeaderMap) -> Response {
    query(e, Vendor::Aivideoapi, headers, move |e, key| {
        e.query_task(Vendor::Aivideoapi, key, &id, None)
            .map(|v| vendors::query_body(&v))
    })
    .await
}

async fn aivideoapi_credits(State(e): S, headers: HeaderMap) -> Response {
    query(e, Vendor::Aivideoapi, headers, |e, key| {
        let (balance, purchased, consumed) = e.credits(key);
        Ok(aivideoapi::credits_body(balance, purchased, consumed))
    })
    .await
}

// ------------------------------------------------------------------ HighwayAPI

async fn highwayapi_create(State(e): S, headers: HeaderMap, body: Bytes) -> Response {
    create(e, Vendor::Highwayapi, headers, body, None).await
}

async fn highwayapi_query(
    State(e): S,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    query(e, Vendor::Highwayapi, headers, move |e, key| {
        let id = q
            .get("task_id")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::param("task_id", "task_id is required"))?;
        e.query_task(Vendor::Highwayapi, key, id, None)
            .map(|v| vendors::query_body(&v))
    })
    .await
}

// ------------------------------------------------------------------ Freepik

async fn freepik_create(
    State(e): S,
    Path(model): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match freepik::tier_of_path(&model) {
        Some(tier) => create(e, Vendor::Freepik, headers, body, Some(tier)).await,
        None => route_not_found(Vendor::Freepik),
    }
}

async fn freepik_query(
    State(e): S,
    Path((model, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let Some(tier) = freepik::tier_of_path(&model) else {
        return route_not_found(Vendor::Freepik);
    };
    query(e, Vendor::Freepik, headers, move |e, key| {
        e.query_task(Vendor::Freepik, key, &id, Some(tier))
            .map(|v| vendors::query_body(&v))
    })
    .await
}

async fn freepik_list(State(e): S, Path(model): Path<String>, headers: HeaderMap) -> Response {
    let Some(tier) = freepik::tier_of_path(&model) else {
        return route_not_found(Vendor::Freepik);
    };
    query(e, Vendor::Freepik, headers, move |e, key| {
        Ok(freepik::list_body(&e.list_tasks(key, Some(tier), 1, 1000)))
    })
    .await
}

// ------------------------------------------------------------------ media and downloads

fn route_not_found(vendor: Vendor) -> Response {
    let (status, body) = vendors::error(vendor, &ApiError::RouteNotFound);
    http::json(status, &body, None, None)
}

async fn fallback(uri: Uri) -> Response {
    let first = uri
        .path()
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or("");
    match Vendor::parse(first) {
        Some(v) => route_not_found(v),
        None => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}

async fn media(Path(name): Path<String>, headers: HeaderMap) -> Response {
    match MediaStore::sample(&name) {
        Some(s) => {
            let bytes = Bytes::from_static(s.bytes.as_slice());
            http::serve_file(&headers, &bytes, s.content_type, Damage::None, None).0
        }
        None => (StatusCode::NOT_FOUND, "no such sample\n").into_response(),
    }
}

/// What a CDN answers for an expired link of `vendor`.
fn expired(vendor: Vendor) -> Response {
    match vendor {
        // Presigned object-store URLs (S3/OSS/GCS style): 403 with an XML error.
        Vendor::Evolink | Vendor::Highwayapi | Vendor::Freepik => (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "application/xml")],
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>\
             <Message>Request has expired</Message></Error>\n",
        )
            .into_response(),
        // Kling deletes outputs after 30 days: the object is gone.
        Vendor::Kkiai => (StatusCode::NOT_FOUND, "Not Found\n").into_response(),
        Vendor::Aivideoapi => (StatusCode::GONE, "This link has expired\n").into_response(),
    }
}

async fn download(
    State(e): S,
    Path(file): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let token = file.strip_suffix(".mp4").unwrap_or(&file);
    let link = match e.link(token) {
        LinkLookup::Live(l) => l,
        LinkLookup::Expired(v) => return expired(v),
        LinkLookup::Unknown => return (StatusCode::NOT_FOUND, "Not Found\n").into_response(),
    };
    let d = e.decide(link.vendor, Endpoint::Download);
    if let Some(delay) = d.slow {
        tokio::time::sleep(delay).await;
    }
    match d.pre {
        Some(PreFault::Status(s)) => {
            let status = StatusCode::from_u16(s).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            let mut r = (status, status.canonical_reason().unwrap_or("error")).into_response();
            if let (Some(secs), true) = (retry_after(&e), s != 500) {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, axum::http::HeaderValue::from(secs));
            }
            return r;
        }
        Some(PreFault::Hang(hold)) => {
            tokio::time::sleep(hold).await;
            return drop_connection();
        }
        Some(PreFault::Reset) => return drop_connection(),
        None => {}
    }
    let damage = match d.download {
        None => Damage::None,
        Some(DownloadFault::Truncated) => Damage::Truncated,
        Some(DownloadFault::Corrupted) => Damage::Corrupted,
        Some(DownloadFault::ResetMidBody) => Damage::Reset,
    };
    let digest = e.cfg.download_digest.then_some(link.output.sha256.as_str());
    let (resp, sent) = http::serve_file(&headers, &link.output.bytes, "video/mp4", damage, digest);
    if method == Method::GET && resp.status().is_success() {
        e.record_download(&link, sent, damage != Damage::None);
    }
    resp
}

// ------------------------------------------------------------------ admin and metrics

fn admin_off() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

async fn admin_ledger(State(e): S) -> Response {
    if !e.cfg.admin_enabled {
        return admin_off();
    }
    axum::Json(e.ledger()).into_response()
}

async fn admin_faults(State(e): S) -> Response {
    if !e.cfg.admin_enabled {
        return admin_off();
    }
    axum::Json(e.faults()).into_response()
}

async fn admin_put_faults(State(e): S, headers: HeaderMap, body: Bytes) -> Response {
    if !e.cfg.admin_enabled {
        return admin_off();
    }
    let is_toml = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("toml"));
    let parsed: Result<crate::faults::Faults, String> = if is_toml {
        std::str::from_utf8(&body)
            .map_err(|e| e.to_string())
            .and_then(|s| toml::from_str(s).map_err(|e| e.to_string()))
    } else {
        serde_json::from_slice(&body).map_err(|e| e.to_string())
    };
    match parsed.and_then(|f| e.set_faults(f.clone()).map(|_| f)) {
        Ok(f) => axum::Json(f).into_response(),
        Err(msg) => (StatusCode::BAD_REQUEST, axum::Json(json!({ "error": msg }))).into_response(),
    }
}

async fn admin_reset(State(e): S) -> Response {
    if !e.cfg.admin_enabled {
        return admin_off();
    }
    e.reset();
    axum::Json(json!({"reset": true})).into_response()
}

async fn admin_task(State(e): S, Path((vendor, id)): Path<(String, String)>) -> Response {
    if !e.cfg.admin_enabled {
        return admin_off();
    }
    match Vendor::parse(&vendor).and_then(|v| e.debug_task(v, &id)) {
        Some(v) => axum::Json(v).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": "no such task"})),
        )
            .into_response(),
    }
}

async fn metrics(State(e): S) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::render(&e.snapshot(false)),
    )
        .into_response()
}
