//! [`HttpRequestSpec`]: a vendor request as data, built by an adapter and sent by
//! [`crate::VendorClient`] (or by any other HTTP stack).
//!
//! The spec never holds the API key. It names the [`AuthScheme`]; the key is only combined with it
//! in [`HttpRequestSpec::header_map`], which marks the header value *sensitive* (its `Debug` prints
//! `Sensitive`, and HTTP/2 never indexes it).

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};

use crate::error::VendorError;
use motionq_core::ErrorClass;

/// How a vendor wants its API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthScheme {
    /// `Authorization: Bearer <key>` (EvoLink, KKIAI, AI Video API, HighwayAPI).
    Bearer,
    /// The key as the whole value of a named header (Freepik: `x-freepik-api-key`).
    ApiKeyHeader(&'static str),
}

impl AuthScheme {
    /// The auth header for `key`, marked sensitive.
    ///
    /// Fails (class `auth`, never retried) when the key cannot be a header value (control
    /// characters, non-ASCII); the message does not contain the key.
    pub fn header(&self, key: &SecretString) -> Result<(HeaderName, HeaderValue), VendorError> {
        let secret = key.expose_secret();
        let (name, value) = match self {
            AuthScheme::Bearer => (AUTHORIZATION, format!("Bearer {secret}")),
            AuthScheme::ApiKeyHeader(name) => (HeaderName::from_static(name), secret.to_string()),
        };
        let mut value = HeaderValue::from_str(&value).map_err(|_| {
            VendorError::new(
                ErrorClass::Auth,
                "the API key contains characters that cannot be sent in an HTTP header",
            )
            .with_code(Some("invalid_key_format".into()))
        })?;
        value.set_sensitive(true);
        Ok((name, value))
    }
}

/// One vendor HTTP request, relative to the vendor's base URL.
///
/// `Debug` shows the method, path, non-secret headers and body; the key is not part of the spec.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRequestSpec {
    /// `GET` or `POST`.
    pub method: Method,
    /// Path and query, starting with `/`, appended to the base URL (whose own path, if any, is
    /// kept as a prefix). Task ids are percent-encoded.
    pub path_and_query: String,
    /// How the key is sent.
    pub auth: AuthScheme,
    /// Headers besides auth and `Content-Type` (none of the five vendors needs any today).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// JSON body (`POST` only); sent with `Content-Type: application/json`.
    pub body: Option<serde_json::Value>,
}

impl HttpRequestSpec {
    /// A `GET` without body.
    pub(crate) fn get(path_and_query: String, auth: AuthScheme) -> Self {
        HttpRequestSpec {
            method: Method::GET,
            path_and_query,
            auth,
            headers: Vec::new(),
            body: None,
        }
    }

    /// A `POST` with a JSON body.
    pub(crate) fn post(path_and_query: String, auth: AuthScheme, body: serde_json::Value) -> Self {
        HttpRequestSpec {
            method: Method::POST,
            path_and_query,
            auth,
            headers: Vec::new(),
            body: Some(body),
        }
    }

    /// Every header to send: auth (sensitive), `Content-Type` when there is a body, then the
    /// extra headers.
    pub fn header_map(&self, key: &SecretString) -> Result<HeaderMap, VendorError> {
        let mut map = HeaderMap::new();
        let (name, value) = self.auth.header(key)?;
        map.insert(name, value);
        if self.body.is_some() {
            map.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        for (n, v) in &self.headers {
            map.append(n.clone(), v.clone());
        }
        Ok(map)
    }

    /// The body serialised as sent (for logs of request shapes in tests and debugging).
    pub fn body_bytes(&self) -> Option<Vec<u8>> {
        // Serialising a `serde_json::Value` cannot fail (its keys are strings).
        self.body
            .as_ref()
            .map(|b| serde_json::to_vec(b).expect("a JSON value always serialises"))
    }
}

/// Percent-encodes one path segment or query value (everything but RFC 3986 unreserved
/// characters), so a task id can never change the path.
pub(crate) fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_header_is_sensitive_and_not_in_debug() {
        let key = SecretString::from("sk-very-secret");
        let spec = HttpRequestSpec::post(
            "/v1/x".into(),
            AuthScheme::Bearer,
            serde_json::json!({"a": 1}),
        );
        let map = spec.header_map(&key).unwrap();
        let auth = map.get(AUTHORIZATION).unwrap();
        assert!(auth.is_sensitive());
        assert_eq!(auth.to_str().unwrap(), "Bearer sk-very-secret");
        assert_eq!(map.get(CONTENT_TYPE).unwrap(), "application/json");
        let dbg = format!("{map:?} {spec:?} {key:?}");
        assert!(!dbg.contains("very-secret"), "{dbg}");
    }

    #[test]
    fn api_key_header_scheme() {
        let key = SecretString::from("fp-key");
        let spec = HttpRequestSpec::get(
            "/v1/y".into(),
            AuthScheme::ApiKeyHeader("x-freepik-api-key"),
        );
        let map = spec.header_map(&key).unwrap();
        assert_eq!(map.get("x-freepik-api-key").unwrap(), "fp-key");
        assert!(map.get(CONTENT_TYPE).is_none());
        assert!(map.get(AUTHORIZATION).is_none());
    }

    #[test]
    fn bad_key_is_an_auth_error_without_the_key() {
        let key = SecretString::from("bad\nkey-material");
        let err = AuthScheme::Bearer.header(&key).unwrap_err();
        assert_eq!(err.class, ErrorClass::Auth);
        assert!(!err.message.contains("key-material"));
    }

    #[test]
    fn encodes_path_components() {
        assert_eq!(
            encode_component("task-unified-1_a.b~"),
            "task-unified-1_a.b~"
        );
        assert_eq!(encode_component("../a b/?#"), "..%2Fa%20b%2F%3F%23");
    }
}
