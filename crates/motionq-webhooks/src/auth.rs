//! Authentication of a delivery: the per-deployment path token (every vendor) and the
//! Standard-Webhooks HMAC-SHA256 signature (Freepik, VENDORS.md §5.4).
//!
//! Both comparisons are constant-time: the token is compared as a SHA-256 digest (so neither
//! its content nor its length shows in the timing), signatures with [`subtle`].

use std::fmt;
use std::time::Duration;

use axum::http::HeaderMap;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{SignatureError, WebhookError};

/// Shortest accepted path token (without the development override).
pub const MIN_TOKEN_LEN: usize = 24;

/// Longest `webhook-id` accepted (Svix ids are ~30 characters; the id becomes a dedup key).
pub const MAX_MSG_ID_LEN: usize = 256;

/// Most `webhook-signature` entries looked at (secret rotation sends two or three).
const MAX_SIGNATURES: usize = 16;

/// The path token, kept only as its SHA-256 digest.
#[derive(Clone)]
pub struct PathToken {
    digest: [u8; 32],
}

impl fmt::Debug for PathToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PathToken(<redacted>)")
    }
}

impl PathToken {
    /// Checks and keeps a token. It must be at least [`MIN_TOKEN_LEN`] characters (unless
    /// `allow_short`, for local development) and only use characters that stand unencoded in
    /// a URL path segment (`A-Z a-z 0-9 - _ . ~`), because the pipeline writes it verbatim
    /// into the callback URLs it sends to vendors.
    pub fn new(token: &SecretString, allow_short: bool) -> Result<Self, WebhookError> {
        let t = token.expose_secret();
        if t.is_empty() {
            return Err(WebhookError::MissingToken("the token is empty".into()));
        }
        if let Some(bad) = t
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "-_.~".contains(*c)))
        {
            // The character itself is not printed: it is part of a secret.
            let kind = if bad.is_whitespace() {
                "whitespace"
            } else {
                "a character outside A-Z a-z 0-9 - _ . ~"
            };
            return Err(WebhookError::WeakToken(format!(
                "the token contains {kind}; it must be usable verbatim in a URL path"
            )));
        }
        let n = t.chars().count();
        if n < MIN_TOKEN_LEN && !allow_short {
            return Err(WebhookError::WeakToken(format!(
                "the token has {n} characters; at least {MIN_TOKEN_LEN} are required \
                 (e.g. `openssl rand -hex 32`), or pass --dev-allow-short-token for local tests"
            )));
        }
        Ok(Self {
            digest: Sha256::digest(t.as_bytes()).into(),
        })
    }

    /// Whether `presented` is the token, in time independent of where they differ.
    pub fn matches(&self, presented: &str) -> bool {
        let d: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        d.ct_eq(&self.digest).into()
    }
}

/// A Standard-Webhooks signing secret (`whsec_<base64>`), kept as its decoded key bytes.
#[derive(Clone)]
pub struct SigningSecret {
    key: Vec<u8>,
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(<redacted>)")
    }
}

impl SigningSecret {
    /// Parses a secret as the dashboard shows it. With the `whsec_` prefix the rest must be
    /// base64 (else an error: a mangled copy would never verify anything). Without the prefix,
    /// base64 is decoded when it is valid base64, otherwise the raw bytes are the key (the
    /// same rule the simulator uses).
    pub fn parse(secret: &SecretString) -> Result<Self, WebhookError> {
        let s = secret.expose_secret().trim();
        let b64 = base64::engine::general_purpose::STANDARD;
        let key = match s.strip_prefix("whsec_") {
            Some(rest) => b64.decode(rest).map_err(|_| {
                WebhookError::BadSecret("the part after `whsec_` is not valid base64".into())
            })?,
            None => b64.decode(s).unwrap_or_else(|_| s.as_bytes().to_vec()),
        };
        if key.is_empty() {
            return Err(WebhookError::BadSecret("the secret is empty".into()));
        }
        Ok(Self { key })
    }

    fn mac(&self, msg_id: &str, timestamp: &str, body: &[u8]) -> [u8; 32] {
        // HMAC takes keys of any length, so this cannot fail.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC accepts any key");
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().into()
    }

    /// The `webhook-signature` value for a delivery (`v1,<base64>`): what a sender computes.
    /// Used by tests and by anyone who wants to replay a delivery by hand.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let sig = self.mac(msg_id, &timestamp.to_string(), body);
        format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD.encode(sig)
        )
    }
}

fn header<'a>(
    headers: &'a HeaderMap,
    name: &'static str,
    max: usize,
) -> Result<&'a str, SignatureError> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= max)
        .ok_or(SignatureError::MissingHeader(name))
}

/// Verifies a Standard-Webhooks delivery and returns its `webhook-id` (the dedup key).
///
/// The signed content is `"{webhook-id}.{webhook-timestamp}.{raw body}"`; `webhook-signature`
/// holds space-separated `v1,<base64>` entries (several during a secret rotation; other
/// versions are ignored) and one must match. The timestamp must be within `tolerance` of
/// `now_unix` in both directions, so a captured delivery cannot be replayed later and a
/// far-future one cannot be stockpiled.
pub fn verify_standard_webhook(
    secret: &SigningSecret,
    headers: &HeaderMap,
    body: &[u8],
    now_unix: i64,
    tolerance: Duration,
) -> Result<String, SignatureError> {
    let msg_id = header(headers, "webhook-id", MAX_MSG_ID_LEN)?;
    let ts_raw = header(headers, "webhook-timestamp", 20)?;
    let sigs = header(headers, "webhook-signature", 4096)?;
    let ts: i64 = ts_raw.parse().map_err(|_| SignatureError::BadTimestamp)?;
    let tol = tolerance.as_secs();
    let diff = i128::from(now_unix) - i128::from(ts);
    if diff > i128::from(tol) {
        return Err(SignatureError::Stale {
            age_s: u64::try_from(diff).unwrap_or(u64::MAX),
            tolerance_s: tol,
        });
    }
    if -diff > i128::from(tol) {
        return Err(SignatureError::Future {
            ahead_s: u64::try_from(-diff).unwrap_or(u64::MAX),
            tolerance_s: tol,
        });
    }
    // Signed over the timestamp exactly as sent (Standard Webhooks signs the header text).
    let expected = secret.mac(msg_id, ts_raw, body);
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut matched = false;
    for entry in sigs
        .split(' ')
        .filter(|e| !e.is_empty())
        .take(MAX_SIGNATURES)
    {
        let Some(("v1", sig)) = entry.split_once(',') else {
            continue;
        };
        let Ok(bytes) = b64.decode(sig) else {
            continue;
        };
        // No early exit: every entry costs the same whatever matched.
        matched |= bool::from(bytes.as_slice().ct_eq(expected.as_slice()));
    }
    if matched {
        Ok(msg_id.to_string())
    } else {
        Err(SignatureError::NoMatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn secret(s: &str) -> SigningSecret {
        SigningSecret::parse(&SecretString::from(s.to_string())).unwrap()
    }

    fn headers(id: &str, ts: &str, sig: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("webhook-id", HeaderValue::from_str(id).unwrap());
        h.insert("webhook-timestamp", HeaderValue::from_str(ts).unwrap());
        h.insert("webhook-signature", HeaderValue::from_str(sig).unwrap());
        h
    }

    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TS: i64 = 1614265330;
    const SPEC_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SPEC_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn the_standard_webhooks_example_verifies() {
        let s = secret(SPEC_SECRET);
        assert_eq!(s.sign(SPEC_ID, SPEC_TS, SPEC_BODY), SPEC_SIG);
        let h = headers(SPEC_ID, &SPEC_TS.to_string(), SPEC_SIG);
        let id = verify_standard_webhook(&s, &h, SPEC_BODY, SPEC_TS + 10, Duration::from_secs(300));
        assert_eq!(id.unwrap(), SPEC_ID);
    }

    #[test]
    fn any_of_several_signatures_may_match() {
        let s = secret(SPEC_SECRET);
        let sig = format!("v1,AAAA v2,xyz garbage v1,{} ", &SPEC_SIG[3..]);
        let h = headers(SPEC_ID, &SPEC_TS.to_string(), &sig);
        assert!(
            verify_standard_webhook(&s, &h, SPEC_BODY, SPEC_TS, Duration::from_secs(5)).is_ok()
        );
    }

    #[test]
    fn tampering_is_refused() {
        let s = secret(SPEC_SECRET);
        let t = Duration::from_secs(300);
        let ok = headers(SPEC_ID, &SPEC_TS.to_string(), SPEC_SIG);
        // Body, id, timestamp and secret all matter.
        assert_eq!(
            verify_standard_webhook(&s, &ok, br#"{"test": 2432232315}"#, SPEC_TS, t),
            Err(SignatureError::NoMatch)
        );
        let other_id = headers("msg_other", &SPEC_TS.to_string(), SPEC_SIG);
        assert_eq!(
            verify_standard_webhook(&s, &other_id, SPEC_BODY, SPEC_TS, t),
            Err(SignatureError::NoMatch)
        );
        let other_ts = headers(SPEC_ID, &(SPEC_TS + 1).to_string(), SPEC_SIG);
        assert_eq!(
            verify_standard_webhook(&s, &other_ts, SPEC_BODY, SPEC_TS, t),
            Err(SignatureError::NoMatch)
        );
        let wrong = secret("whsec_bW90aW9ucS1zaW0td2ViaG9vay1zZWNyZXQ=");
        assert_eq!(
            verify_standard_webhook(&wrong, &ok, SPEC_BODY, SPEC_TS, t),
            Err(SignatureError::NoMatch)
        );
        // The v0 / unversioned forms do not count.
        let unversioned = headers(SPEC_ID, &SPEC_TS.to_string(), &SPEC_SIG[3..]);
        assert_eq!(
            verify_standard_webhook(&s, &unversioned, SPEC_BODY, SPEC_TS, t),
            Err(SignatureError::NoMatch)
        );
    }

    #[test]
    fn timestamps_outside_the_tolerance_are_refused_both_ways() {
        let s = secret(SPEC_SECRET);
        let h = headers(SPEC_ID, &SPEC_TS.to_string(), SPEC_SIG);
        let t = Duration::from_secs(300);
        assert!(verify_standard_webhook(&s, &h, SPEC_BODY, SPEC_TS + 300, t).is_ok());
        assert!(verify_standard_webhook(&s, &h, SPEC_BODY, SPEC_TS - 300, t).is_ok());
        assert_eq!(
            verify_standard_webhook(&s, &h, SPEC_BODY, SPEC_TS + 301, t),
            Err(SignatureError::Stale {
                age_s: 301,
                tolerance_s: 300
            })
        );
        assert_eq!(
            verify_standard_webhook(&s, &h, SPEC_BODY, SPEC_TS - 301, t),
            Err(SignatureError::Future {
                ahead_s: 301,
                tolerance_s: 300
            })
        );
        let h = headers(SPEC_ID, "-99999999999999999", SPEC_SIG);
        assert!(matches!(
            verify_standard_webhook(&s, &h, SPEC_BODY, i64::MAX, t),
            Err(SignatureError::Stale { .. })
        ));
        let h = headers(SPEC_ID, "16142653.30", SPEC_SIG);
        assert_eq!(
            verify_standard_webhook(&s, &h, SPEC_BODY, SPEC_TS, t),
            Err(SignatureError::BadTimestamp)
        );
    }

    #[test]
    fn missing_headers_are_named() {
        let s = secret(SPEC_SECRET);
        let t = Duration::from_secs(300);
        for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
            let mut h = headers(SPEC_ID, &SPEC_TS.to_string(), SPEC_SIG);
            h.remove(name);
            assert_eq!(
                verify_standard_webhook(&s, &h, SPEC_BODY, SPEC_TS, t),
                Err(SignatureError::MissingHeader(name))
            );
        }
        let long = "m".repeat(MAX_MSG_ID_LEN + 1);
        let h = headers(&long, &SPEC_TS.to_string(), SPEC_SIG);
        assert_eq!(
            verify_standard_webhook(&s, &h, SPEC_BODY, SPEC_TS, t),
            Err(SignatureError::MissingHeader("webhook-id"))
        );
    }

    #[test]
    fn secrets_parse_like_the_dashboard_shows_them() {
        let a = secret("whsec_bW90aW9ucS1zaW0td2ViaG9vay1zZWNyZXQ=");
        assert_eq!(a.key, b"motionq-sim-webhook-secret");
        let b = secret("bW90aW9ucS1zaW0td2ViaG9vay1zZWNyZXQ=");
        assert_eq!(b.key, a.key);
        assert_eq!(secret("not base64!").key, b"not base64!");
        assert!(SigningSecret::parse(&SecretString::from("whsec_***".to_string())).is_err());
        assert!(SigningSecret::parse(&SecretString::from("  ".to_string())).is_err());
        assert!(!format!("{a:?}").contains("bW90"));
    }

    #[test]
    fn tokens_are_checked_and_compared() {
        let good = "a".repeat(23) + "Z";
        let t = PathToken::new(&SecretString::from(good.clone()), false).unwrap();
        assert!(t.matches(&good));
        assert!(!t.matches(&good[..23]));
        assert!(!t.matches(&(good.clone() + "x")));
        assert!(!t.matches(""));
        assert!(!format!("{t:?}").contains("aaaa"));
        let short = SecretString::from("x".repeat(23));
        let e = PathToken::new(&short, false).unwrap_err().to_string();
        assert!(e.contains("23 characters") && e.contains("24"), "{e}");
        assert!(!e.contains("xxxx"));
        assert!(PathToken::new(&short, true).is_ok());
        assert!(PathToken::new(&SecretString::from(String::new()), true).is_err());
        let spaced = SecretString::from(format!("{} {}", "a".repeat(20), "b".repeat(10)));
        assert!(PathToken::new(&spaced, false)
            .unwrap_err()
            .to_string()
            .contains("whitespace"));
        let slash = SecretString::from(format!("{}/{}", "a".repeat(20), "b".repeat(10)));
        assert!(PathToken::new(&slash, false).is_err());
    }
}
