//! Typed label values. Every label of the catalogue takes its value from one of these enums or
//! from a configured name (key alias, campaign id), so the number of series stays bounded by
//! construction: nothing a vendor sends (error text, task ids) can become a label value.

/// Which vendor call a request metric describes (`operation` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Submitting a task (the call that costs money).
    Create,
    /// Polling a task's status.
    Query,
    /// Downloading an output file.
    Download,
    /// Answering / verifying a vendor callback.
    Callback,
}

impl Operation {
    /// All operations, in a stable order.
    pub const ALL: [Operation; 4] = [
        Operation::Create,
        Operation::Query,
        Operation::Download,
        Operation::Callback,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Query => "query",
            Operation::Download => "download",
            Operation::Callback => "callback",
        }
    }
}

/// Coarse class of an HTTP answer (`status_class` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusClass {
    /// 1xx–3xx and 2xx: the vendor answered without an HTTP error.
    Success,
    /// 4xx.
    ClientError,
    /// 5xx.
    ServerError,
    /// No HTTP answer at all: connect error, reset, timeout.
    Error,
}

impl StatusClass {
    /// Classifies an HTTP status code; `None` means the request got no HTTP answer.
    pub fn from_status(status: Option<u16>) -> Self {
        match status {
            None => StatusClass::Error,
            Some(s) if (400..500).contains(&s) => StatusClass::ClientError,
            Some(s) if (500..600).contains(&s) => StatusClass::ServerError,
            // Anything below 400 reached us as an answer the adapter could read.
            Some(_) => StatusClass::Success,
        }
    }

    /// The label value: `2xx`, `4xx`, `5xx` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusClass::Success => "2xx",
            StatusClass::ClientError => "4xx",
            StatusClass::ServerError => "5xx",
            StatusClass::Error => "error",
        }
    }
}

/// The queue stages (`stage` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// The feeder moving stored jobs into the submit queue.
    Admit,
    /// Submitting to a vendor.
    Submit,
    /// Polling a vendor task.
    Poll,
    /// Downloading the output and storing it.
    Collect,
}

impl Stage {
    /// All stages, in pipeline order.
    pub const ALL: [Stage; 4] = [Stage::Admit, Stage::Submit, Stage::Poll, Stage::Collect];

    /// The label value (also the queue name of the stage).
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Admit => "admit",
            Stage::Submit => "submit",
            Stage::Poll => "poll",
            Stage::Collect => "collect",
        }
    }
}

/// How one run of a stage handler ended (`outcome` label of `motionq_stage_duration_seconds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StageOutcome {
    /// The job moved on to its next stage or a terminal state.
    Done,
    /// The job was scheduled again after an error (backoff).
    Retried,
    /// The job was put back to wait for a limit or a parked key (not a failed attempt).
    Deferred,
    /// The job failed terminally in this stage.
    Failed,
}

impl StageOutcome {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            StageOutcome::Done => "done",
            StageOutcome::Retried => "retried",
            StageOutcome::Deferred => "deferred",
            StageOutcome::Failed => "failed",
        }
    }
}

/// Which limit a worker waited for (`reason` label of `motionq_limit_wait_seconds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitKind {
    /// The key's request rate (GCRA).
    Rate,
    /// The key's concurrent-task slots.
    Concurrency,
    /// A spend budget (key window or campaign).
    Spend,
    /// Every usable key of the campaign's vendors is parked.
    Parked,
}

impl LimitKind {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitKind::Rate => "rate",
            LimitKind::Concurrency => "concurrency",
            LimitKind::Spend => "spend",
            LimitKind::Parked => "parked",
        }
    }
}

/// Spend budget window (`window` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Window {
    /// The hourly budget.
    Hourly,
    /// The daily budget.
    Daily,
    /// The key's lifetime budget (never resets).
    Total,
}

impl Window {
    /// All windows.
    pub const ALL: [Window; 3] = [Window::Hourly, Window::Daily, Window::Total];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Window::Hourly => "hourly",
            Window::Daily => "daily",
            Window::Total => "total",
        }
    }
}

/// Why a key is parked (`reason` label of `motionq_key_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParkReason {
    /// The vendor-side spend/daily cap is used up; the key returns when its window resets.
    QuotaExhausted,
    /// The account balance is too low; an operator must act.
    InsufficientFunds,
    /// The vendor rejects the key; an operator must act.
    Auth,
    /// The key may not use the model; an operator must act.
    Forbidden,
    /// motionq's own spend budget for the key is used up until the window resets.
    Budget,
    /// An operator parked it.
    Operator,
    /// Any other reason (kept out of the label on purpose: free text is unbounded).
    Other,
}

impl ParkReason {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ParkReason::QuotaExhausted => "quota_exhausted",
            ParkReason::InsufficientFunds => "insufficient_funds",
            ParkReason::Auth => "auth",
            ParkReason::Forbidden => "forbidden",
            ParkReason::Budget => "budget",
            ParkReason::Operator => "operator",
            ParkReason::Other => "other",
        }
    }

    /// Whether the key comes back by itself (window reset) rather than by an operator.
    pub fn resets_by_itself(self) -> bool {
        matches!(self, ParkReason::QuotaExhausted | ParkReason::Budget)
    }
}

/// A key's state (`state` and `reason` labels of `motionq_key_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyState {
    /// Usable (it may still be waiting on its rate or slots).
    Active,
    /// Skipped by every worker until it is un-parked or its window resets.
    Parked(ParkReason),
}

impl KeyState {
    /// `(state, reason)` label values; an active key has reason `none`.
    pub fn labels(self) -> (&'static str, &'static str) {
        match self {
            KeyState::Active => ("active", "none"),
            KeyState::Parked(r) => ("parked", r.as_str()),
        }
    }
}

/// What happened to a vendor callback (`outcome` label of `motionq_webhooks_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WebhookOutcome {
    /// Verified and applied to the job.
    Accepted,
    /// Verified, but the job had already moved on (a retry of a delivered callback).
    Duplicate,
    /// Signature or secret did not verify.
    RejectedSignature,
    /// Body could not be parsed.
    RejectedMalformed,
    /// Verified, but no job matches the task.
    RejectedUnknownTask,
}

impl WebhookOutcome {
    /// All outcomes.
    pub const ALL: [WebhookOutcome; 5] = [
        WebhookOutcome::Accepted,
        WebhookOutcome::Duplicate,
        WebhookOutcome::RejectedSignature,
        WebhookOutcome::RejectedMalformed,
        WebhookOutcome::RejectedUnknownTask,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookOutcome::Accepted => "accepted",
            WebhookOutcome::Duplicate => "duplicate",
            WebhookOutcome::RejectedSignature => "rejected_signature",
            WebhookOutcome::RejectedMalformed => "rejected_malformed",
            WebhookOutcome::RejectedUnknownTask => "rejected_unknown_task",
        }
    }

    /// Whether the callback was accepted (answered 2xx).
    pub fn is_accepted(self) -> bool {
        matches!(self, WebhookOutcome::Accepted | WebhookOutcome::Duplicate)
    }
}

/// State of a queue entry (`state` label of `motionq_queue_depth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueueState {
    /// Not yet delivered to any worker.
    Unread,
    /// Delivered and not yet acknowledged (running, or held by a dead worker until reclaimed).
    Pending,
    /// Waiting for a retry time.
    Delayed,
    /// Dead letters.
    Dead,
}

impl QueueState {
    /// All states.
    pub const ALL: [QueueState; 4] = [
        QueueState::Unread,
        QueueState::Pending,
        QueueState::Delayed,
        QueueState::Dead,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            QueueState::Unread => "unread",
            QueueState::Pending => "pending",
            QueueState::Delayed => "delayed",
            QueueState::Dead => "dead",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes() {
        assert_eq!(StatusClass::from_status(None).as_str(), "error");
        assert_eq!(StatusClass::from_status(Some(200)).as_str(), "2xx");
        assert_eq!(StatusClass::from_status(Some(302)).as_str(), "2xx");
        assert_eq!(StatusClass::from_status(Some(429)).as_str(), "4xx");
        assert_eq!(StatusClass::from_status(Some(400)).as_str(), "4xx");
        assert_eq!(StatusClass::from_status(Some(503)).as_str(), "5xx");
        assert_eq!(StatusClass::from_status(Some(599)).as_str(), "5xx");
    }

    #[test]
    fn key_state_labels() {
        assert_eq!(KeyState::Active.labels(), ("active", "none"));
        assert_eq!(
            KeyState::Parked(ParkReason::QuotaExhausted).labels(),
            ("parked", "quota_exhausted")
        );
        assert!(ParkReason::Budget.resets_by_itself());
        assert!(!ParkReason::InsufficientFunds.resets_by_itself());
    }
}
