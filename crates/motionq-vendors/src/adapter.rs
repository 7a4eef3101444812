//! The [`VendorAdapter`] trait and the vendor-neutral values it produces.

use std::fmt;
use std::time::Duration;

use motionq_core::{ErrorClass, JobSpec, Tier, Vendor};
use reqwest::header::HeaderMap;

use crate::error::{AdapterError, VendorError};
use crate::http::HttpRequestSpec;

/// Per-attempt context of a create call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateContext {
    /// Stable per job and attempt generation: the same value on a resubmission after a crash, a
    /// new one when the job is deliberately submitted again. Sent where the vendor keeps it
    /// (KKIAI `external_task_id`), so the task can be found after a crash.
    pub idempotency_key: String,
    /// Where the vendor should POST status changes, if the deployment receives callbacks.
    /// Vendors without callbacks (HighwayAPI) ignore it: those jobs are polled.
    pub callback_url: Option<String>,
}

/// A vendor task to query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRef {
    /// The vendor's task id, from [`Created::task_id`].
    pub task_id: String,
    /// The job's tier (Freepik serves each tier's tasks on its own endpoint).
    pub tier: Tier,
}

/// A create call the vendor accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// The vendor's task id (`task-unified-…`, Kling numeric string, UUID).
    pub task_id: String,
    /// The status the vendor reported at creation (`pending`, `submitted`, `CREATED`), if any.
    pub raw_status: Option<String>,
}

/// Where a task is, in the common vocabulary of VENDORS.md §6.2.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskStatus {
    /// Accepted, waiting for a slot.
    Pending,
    /// Generating.
    Processing,
    /// Done: the output exists at `output_url`.
    Completed {
        /// Where to download the video.
        output_url: String,
        /// How long the link stays valid, counted from when this answer was received: the
        /// vendor's per-task value where it reports one (HighwayAPI `video_url_ttl`), otherwise
        /// the documented lifetime ([`motionq_core::Capabilities::output_link_lifetime_s`]).
        expires_at_hint: Option<Duration>,
        /// Seconds of output the vendor reports (Kling `duration`, EvoLink reference length),
        /// when it reports any.
        billed_seconds: Option<f64>,
        /// The vendor's own charge figure, verbatim (Kling `final_unit_deduction`), when reported.
        vendor_charge: Option<String>,
    },
    /// Failed for good; vendors refund failed tasks.
    Failed {
        /// Why, as a class: `content_policy` for content rejections and unexplained failures,
        /// `upstream_transient` when the vendor says it was its own problem (a resubmission may
        /// succeed), `invalid_request` for input problems found late.
        class: ErrorClass,
        /// The vendor's failure code, if it gives one (bounded).
        code: Option<String>,
        /// The vendor's reason (bounded; may be empty when the vendor gives none).
        message: String,
    },
}

impl TaskStatus {
    /// Completed or failed.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            TaskStatus::Completed { .. } | TaskStatus::Failed { .. }
        )
    }

    /// `pending`, `processing`, `completed` or `failed`.
    pub fn as_str(&self) -> &'static str {
        match self {
            TaskStatus::Pending => "pending",
            TaskStatus::Processing => "processing",
            TaskStatus::Completed { .. } => "completed",
            TaskStatus::Failed { .. } => "failed",
        }
    }
}

/// A task's state as one query (or callback) reported it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskState {
    /// The common status with its details.
    pub status: TaskStatus,
    /// Percent done, 0–100, where the vendor reports it (EvoLink, AI Video API, HighwayAPI).
    pub progress: Option<u8>,
    /// The vendor's status string verbatim (`succeed`, `TASK_STATUS_QUEUED`, ...), for logs.
    pub raw_status: String,
}

/// A parsed vendor callback (webhook). Its authenticity is NOT checked here: verify signatures
/// before, and treat the content as a hint to query the task (EvoLink and Kling sign nothing).
#[derive(Debug, Clone, PartialEq)]
pub struct CallbackEvent {
    /// The vendor's task id.
    pub task_id: String,
    /// Our idempotency key echoed back (KKIAI `task_info.external_task_id`), if present.
    pub external_id: Option<String>,
    /// The state the callback reports.
    pub state: TaskState,
}

/// One entry of a vendor's task list (Freepik).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedTask {
    /// The vendor's task id.
    pub task_id: String,
    /// The vendor's status string verbatim.
    pub raw_status: String,
}

/// The result of looking a task up by its idempotency key after a crash.
#[derive(Debug, Clone, PartialEq)]
pub enum FindOutcome {
    /// The vendor knows a task created with this key (KKIAI): use it, do not resubmit.
    Found {
        /// The vendor's task id.
        task_id: String,
        /// Its current state.
        state: TaskState,
    },
    /// The vendor has no task with this key: the create call never took effect, so submitting
    /// again spends money once.
    Absent,
    /// The vendor can only list its recent tasks (Freepik, which keeps no key of ours): every task
    /// id here that motionq has not recorded belongs to a create call whose answer was lost.
    /// Matching one to a job is the caller's decision (e.g. when exactly one job of the key has
    /// an open submit intent).
    Candidates(Vec<ListedTask>),
}

/// Translates between motionq's vendor-neutral job and one vendor's HTTP dialect.
///
/// # Contract
///
/// * **Pure.** Every method except those of [`crate::VendorClient`] is a pure function of its
///   arguments: no I/O, no clock reads except for turning an HTTP-date `Retry-After` into a
///   duration, no state. Adapters are `Send + Sync` and cheap to share.
/// * **Translate, do not decide.** Adapters never retry, sleep, rate-limit, account spend or
///   count metrics; they say *what happened* ([`VendorError::class`], [`TaskStatus`]) and shared
///   layers decide what to do, identically for every vendor.
/// * **Reject before spending.** [`VendorAdapter::build_create`] returns an [`AdapterError`]
///   (class `invalid_request`, naming the [`JobSpec`] field) for anything the vendor cannot
///   express: a base64 image where only URLs are accepted, `negative_prompt`, `keep_sound` or
///   `cfg_scale` where the API has no such field, an image or video container the vendor does not
///   list, a prompt over 2,500 characters, a known reference length outside the vendor's limits.
///   It never silently drops a requested feature. (A `callback_url` is operational, not part of
///   the job: vendors without callbacks ignore it.)
/// * **Classify on the vendor's own code.** Every non-2xx answer, and every 2xx answer whose
///   envelope reports an error, becomes a [`VendorError`] whose class comes from the vendor's
///   discriminator (`error.code`, Kling `code`, Novita `reason`, Freepik message) and only then
///   from the HTTP status. `Retry-After` is read on every error.
/// * **Never panic, never trust.** Any bytes, any status: parse functions return a value or a
///   [`VendorError`]. A 2xx body that is not the expected JSON is `upstream_transient` (code
///   `malformed_response`): the vendor had a bad moment, the call may be repeated (for create:
///   reconcile first, see [`VendorError::may_have_created_task`]).
/// * **Lenient where the docs are unsure.** Shapes VENDORS.md marks INFERRED are accepted in every
///   documented variant (KKIAI wrapped and bare query bodies, EvoLink string-or-int codes,
///   Kling string durations, EvoLink `results` or `result_data`).
/// * **No secrets.** Adapters never see the API key; [`HttpRequestSpec`] names the
///   [`crate::AuthScheme`] and the key is combined with it only when sending.
pub trait VendorAdapter: Send + Sync + fmt::Debug {
    /// The vendor this adapter speaks to.
    fn vendor(&self) -> Vendor;

    /// The create request for `job`, or why this vendor cannot run it.
    fn build_create(
        &self,
        job: &JobSpec,
        ctx: &CreateContext,
    ) -> Result<HttpRequestSpec, AdapterError>;

    /// Parses the answer to a create request.
    fn parse_create(
        &self,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Created, VendorError>;

    /// The request that reads a task's state.
    fn build_query(&self, task: &TaskRef) -> HttpRequestSpec;

    /// Parses the answer to a query request.
    fn parse_query(
        &self,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<TaskState, VendorError>;

    /// The request that finds a task by the idempotency key sent at create time, or `None` when
    /// the vendor offers no such lookup (see [`motionq_core::Capabilities::reconciliation`]).
    fn build_find_by_idempotency_key(
        &self,
        _idempotency_key: &str,
        _tier: Tier,
    ) -> Option<HttpRequestSpec> {
        None
    }

    /// Parses the answer to [`VendorAdapter::build_find_by_idempotency_key`]'s request.
    fn parse_find(
        &self,
        _status: u16,
        _headers: &HeaderMap,
        _body: &[u8],
    ) -> Result<FindOutcome, VendorError> {
        Err(VendorError::new(
            ErrorClass::InvalidRequest,
            format!(
                "{} offers no lookup by idempotency key",
                self.vendor().display_name()
            ),
        )
        .with_code(Some("unsupported_find".into())))
    }

    /// Parses a callback (webhook) body the vendor POSTed to us. Signature checks are not done
    /// here.
    fn parse_callback(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<CallbackEvent, VendorError>;
}

/// The adapter for `vendor`.
pub fn adapter_for(vendor: Vendor) -> Box<dyn VendorAdapter> {
    match vendor {
        Vendor::Evolink => Box::new(crate::evolink::EvolinkAdapter),
        Vendor::Kkiai => Box::new(crate::kkiai::KkiaiAdapter),
        Vendor::Aivideoapi => Box::new(crate::aivideoapi::AivideoapiAdapter),
        Vendor::Highwayapi => Box::new(crate::highwayapi::HighwayapiAdapter),
        Vendor::Freepik => Box::new(crate::freepik::FreepikAdapter),
    }
}
