//! Vendor-neutral API errors; each vendor module renders them in its own status + body.

/// Why a field was rejected (Kling distinguishes 1200 "invalid params" from 1201 "illegal value").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InvalidKind {
    /// Missing or wrong JSON type.
    Param,
    /// Present but an illegal value (enum, range, media limits).
    Value,
}

/// An error answer, before the vendor renders it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ApiError {
    /// No credentials.
    MissingKey,
    /// Unknown or malformed key.
    BadKey,
    /// The request breaks a documented rule; `field` is the vendor's field name.
    Invalid {
        kind: InvalidKind,
        field: String,
        message: String,
    },
    /// The model field names a model this endpoint does not serve.
    UnknownModel(String),
    /// EvoLink: task id without the `task-unified-` prefix.
    InvalidTaskId,
    /// Unknown task (or another key's / another tier's task).
    TaskNotFound,
    /// Unknown path (Freepik unknown model path).
    RouteNotFound,
    /// Per-key request rate exceeded (or an injected 429).
    RateLimited,
    /// Per-key in-flight task limit reached.
    Concurrency,
    /// Balance below the pre-charge.
    InsufficientBalance,
    /// The vendor denies this key access (`KeyConfig::forbidden`): the vendor's documented
    /// access-denied / permission answer.
    Forbidden,
    /// An hourly/daily/total spend cap would be exceeded.
    SpendCap(&'static str),
    /// KKIAI: `external_task_id` already used by this key.
    DuplicateExternalId,
    /// The input was refused by the content-safety check at create (Kling 400 1301, AI Video
    /// API 503 `upstream_error`); other vendors fail the task instead.
    ContentPolicy,
    /// Injected 500.
    Internal,
    /// Injected 503.
    Unavailable,
}

impl ApiError {
    pub(crate) fn param(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::Invalid {
            kind: InvalidKind::Param,
            field: field.to_string(),
            message: message.into(),
        }
    }

    pub(crate) fn value(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::Invalid {
            kind: InvalidKind::Value,
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// Ledger rejection kind.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            ApiError::MissingKey | ApiError::BadKey => "auth",
            ApiError::Invalid { .. } | ApiError::UnknownModel(_) | ApiError::InvalidTaskId => {
                "invalid_request"
            }
            ApiError::TaskNotFound | ApiError::RouteNotFound => "not_found",
            ApiError::RateLimited => "rate_limit",
            ApiError::Concurrency => "concurrency",
            ApiError::InsufficientBalance => "insufficient_balance",
            ApiError::Forbidden => "forbidden",
            ApiError::SpendCap(_) => "spend_cap",
            ApiError::DuplicateExternalId => "duplicate_external_task_id",
            ApiError::ContentPolicy => "content_policy",
            ApiError::Internal => "error_500",
            ApiError::Unavailable => "error_503",
        }
    }
}
