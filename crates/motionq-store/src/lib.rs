//! Redis as motionq's one source of truth.
//!
//! * [`conn`]: [`RedisConn`], the one connection type (standalone, Sentinel, Cluster; TLS, ACL
//!   user and password from an env var), self-reconnecting.
//! * [`records`]: campaign and job records ([`Store`]): idempotent chunked enqueue, atomic
//!   state transitions with counters and a per-campaign event stream, reads for status and
//!   reports. The key layout is documented there.
//!
//!
//! Lua scripts live in `lua/` beside this crate and are loaded once (`EVALSHA`, falling back to
//! `EVAL` after a Redis restart flushed the script cache).

pub mod conn;
pub mod records;

pub use conn::{ConnectError, RedisConn};
pub use records::{
    CampaignRecord, EnqueueMode, EnqueueRequest, EnqueueSummary, JobRecord, Keys, Store,
    StoreError, Transition,
};
