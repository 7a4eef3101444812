//! [`VendorClient`]: the thin async executor. One HTTP call per method, no retries, no sleeping,
//! no limits (shared layers wrap it). It sends what the adapter built, hands the answer back to
//! the adapter's parser, and turns transport failures into `upstream_transient` errors.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use motionq_core::{ErrorClass, JobSpec, Tier, Vendor};
use reqwest::header::HeaderMap;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::adapter::{CreateContext, Created, FindOutcome, TaskRef, TaskState, VendorAdapter};
use crate::error::{bound, VendorError, MAX_MESSAGE_CHARS};
use crate::http::HttpRequestSpec;

/// Largest answer body read from a vendor. Their JSON answers are a few KiB; a bigger body is a
/// misbehaving server (or the wrong URL), not something to buffer.
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// HTTP settings of the shared connection pool.
///
/// Proxies come from the environment (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`), as
/// reqwest reads them by default (plus the OS settings on macOS/Windows through its
/// `system-proxy` feature).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpOptions {
    /// TCP + TLS connect timeout.
    pub connect_timeout: Duration,
    /// Whole-request timeout (connect, send, wait, read the body).
    pub request_timeout: Duration,
    /// Idle pooled connections are closed after this long.
    pub pool_idle_timeout: Duration,
    /// Idle connections kept per host.
    pub pool_max_idle_per_host: usize,
    /// `User-Agent` sent with every request.
    pub user_agent: String,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            pool_idle_timeout: Duration::from_secs(90),
            pool_max_idle_per_host: 32,
            user_agent: concat!("motionq/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

/// The HTTP client could not be built (TLS backend or proxy configuration). Never retried: the
/// environment must be fixed.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTP client: {0}")]
pub struct ClientBuildError(#[from] reqwest::Error);

impl HttpOptions {
    /// A pooled rustls client with these options. Build one and share it (it is an `Arc`
    /// inside) across every [`VendorClient`] of the process: connections are reused per host.
    ///
    /// Redirects are not followed: no vendor API redirects, and following one would resend a
    /// create call (or its key) somewhere unexpected. A 3xx is classified `upstream_transient`.
    pub fn build_client(&self) -> Result<reqwest::Client, ClientBuildError> {
        Ok(reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .timeout(self.request_timeout)
            .pool_idle_timeout(self.pool_idle_timeout)
            .pool_max_idle_per_host(self.pool_max_idle_per_host)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(self.user_agent.clone())
            .build()?)
    }
}

/// A vendor answer as received.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// HTTP status code.
    pub status: u16,
    /// Response headers (`Retry-After` is read from here).
    pub headers: HeaderMap,
    /// The whole body, at most [`MAX_RESPONSE_BYTES`].
    pub body: Vec<u8>,
}

/// One vendor, one API key, one base URL; cheap to clone (the adapter, key and connection pool
/// are shared).
///
/// `Debug` prints the vendor and base URL, never the key; error messages are scrubbed of the key.
#[derive(Clone)]
pub struct VendorClient {
    adapter: Arc<dyn VendorAdapter>,
    base_url: Url,
    key: Arc<SecretString>,
    http: reqwest::Client,
}

impl fmt::Debug for VendorClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VendorClient")
            .field("vendor", &self.adapter.vendor())
            .field("base_url", &self.base_url.as_str())
            .field("key", &"[REDACTED]")
            .finish()
    }
}

impl VendorClient {
    /// A client with its own connection pool built from `options`.
    pub fn new(
        adapter: Box<dyn VendorAdapter>,
        base_url: Url,
        key: SecretString,
        options: HttpOptions,
    ) -> Result<Self, ClientBuildError> {
        Ok(Self::with_http_client(
            Arc::from(adapter),
            base_url,
            key,
            options.build_client()?,
        ))
    }

    /// A client on a shared connection pool (see [`HttpOptions::build_client`]).
    pub fn with_http_client(
        adapter: Arc<dyn VendorAdapter>,
        base_url: Url,
        key: SecretString,
        http: reqwest::Client,
    ) -> Self {
        VendorClient {
            adapter,
            base_url,
            key: Arc::new(key),
            http,
        }
    }

    /// The adapter (for building or parsing without I/O, e.g. callbacks).
    pub fn adapter(&self) -> &dyn VendorAdapter {
        self.adapter.as_ref()
    }

    /// The vendor.
    pub fn vendor(&self) -> Vendor {
        self.adapter.vendor()
    }

    /// The base URL requests are sent to.
    pub fn base_url(&self) -> &Url {
        &self.base_url
    }

    /// Builds and sends the create call. A rejected job ([`crate::AdapterError`]) sends nothing.
    /// On error, [`VendorError::may_have_created_task`] says whether to reconcile before sending
    /// again.
    pub async fn create(&self, job: &JobSpec, ctx: &CreateContext) -> Result<Created, VendorError> {
        let spec = self.adapter.build_create(job, ctx)?;
        let r = self.send(&spec).await?;
        self.adapter
            .parse_create(r.status, &r.headers, &r.body)
            .map_err(|e| self.scrub(e))
    }

    /// Reads a task's state.
    pub async fn query(&self, task: &TaskRef) -> Result<TaskState, VendorError> {
        let spec = self.adapter.build_query(task);
        let r = self.send(&spec).await?;
        self.adapter
            .parse_query(r.status, &r.headers, &r.body)
            .map_err(|e| self.scrub(e))
    }

    /// Looks a task up by its idempotency key; `Ok(None)` when the vendor offers no lookup.
    pub async fn find_by_idempotency_key(
        &self,
        idempotency_key: &str,
        tier: Tier,
    ) -> Result<Option<FindOutcome>, VendorError> {
        let Some(spec) = self
            .adapter
            .build_find_by_idempotency_key(idempotency_key, tier)
        else {
            return Ok(None);
        };
        let r = self.send(&spec).await?;
        self.adapter
            .parse_find(r.status, &r.headers, &r.body)
            .map(Some)
            .map_err(|e| self.scrub(e))
    }

    /// Sends one request and reads the whole answer (any status). Transport failures are
    /// `upstream_transient` with code `transport_connect` (nothing was sent), `transport_timeout`,
    /// `transport_body` (the answer broke off) or `transport_error`.
    pub async fn send(&self, spec: &HttpRequestSpec) -> Result<RawResponse, VendorError> {
        let url = self.url_for(&spec.path_and_query)?;
        let headers = spec.header_map(&self.key)?;
        let mut req = self.http.request(spec.method.clone(), url).headers(headers);
        if let Some(body) = spec.body_bytes() {
            req = req.body(body);
        }
        let vendor = self.vendor();
        let mut resp = req.send().await.map_err(|e| self.transport(e))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.transport(e))? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(VendorError::new(
                    ErrorClass::UpstreamTransient,
                    format!(
                        "{}: answer larger than {MAX_RESPONSE_BYTES} bytes",
                        vendor.display_name()
                    ),
                )
                .with_status(status)
                .with_code(Some("transport_body".into())));
            }
            body.extend_from_slice(&chunk);
        }
        tracing::debug!(
            vendor = %vendor,
            method = %spec.method,
            path = %path_only(&spec.path_and_query),
            status,
            bytes = body.len(),
            "vendor call"
        );
        Ok(RawResponse {
            status,
            headers,
            body,
        })
    }

    /// `base_url` + `path_and_query`, keeping any path prefix of the base URL (a simulator or a
    /// gateway may serve a vendor under `/evolink`).
    fn url_for(&self, path_and_query: &str) -> Result<Url, VendorError> {
        let base = self.base_url.as_str().trim_end_matches('/');
        Url::parse(&format!("{base}{path_and_query}")).map_err(|e| {
            VendorError::new(
                ErrorClass::InvalidRequest,
                format!("cannot build a URL from the base URL and `{path_and_query}`: {e}"),
            )
            .with_code(Some("invalid_url".into()))
        })
    }

    fn transport(&self, e: reqwest::Error) -> VendorError {
        let code = if e.is_connect() {
            "transport_connect"
        } else if e.is_timeout() {
            "transport_timeout"
        } else if e.is_body() || e.is_decode() {
            "transport_body"
        } else {
            "transport_error"
        };
        // The chain says what actually happened ("connection refused", "connection reset").
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        self.scrub(
            VendorError::new(
                ErrorClass::UpstreamTransient,
                format!(
                    "{}: {}",
                    self.vendor().display_name(),
                    bound(&text, MAX_MESSAGE_CHARS)
                ),
            )
            .with_code(Some(code.into())),
        )
    }

    fn scrub(&self, e: VendorError) -> VendorError {
        e.scrub(self.key.expose_secret())
    }
}

fn path_only(path_and_query: &str) -> &str {
    path_and_query.split('?').next().unwrap_or(path_and_query)
}
