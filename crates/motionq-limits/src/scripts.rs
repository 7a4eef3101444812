//! The Lua scripts (files under `lua/`) and reading their replies.
//!
//! Each script is `common.lua` (+ `spend_common.lua` for spend scripts) followed by its own
//! file, built once per process into a [`redis::Script`], which calls `EVALSHA` and falls back
//! to `SCRIPT LOAD` + `EVALSHA` when the server does not know the hash yet (fresh server,
//! `SCRIPT FLUSH`, failover to a replica that never saw it).

use std::sync::LazyLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::{Script, Value};

use crate::error::LimitsError;

const COMMON: &str = include_str!("../lua/common.lua");
const SPEND_COMMON: &str = include_str!("../lua/spend_common.lua");

fn key_script(body: &str) -> Script {
    Script::new(&format!("{COMMON}\n{body}"))
}

fn spend_script(body: &str) -> Script {
    Script::new(&format!("{COMMON}\n{SPEND_COMMON}\n{body}"))
}

pub(crate) static GCRA: LazyLock<Script> =
    LazyLock::new(|| key_script(include_str!("../lua/gcra.lua")));
pub(crate) static WINDOW_DONE: LazyLock<Script> =
    LazyLock::new(|| key_script(include_str!("../lua/window_done.lua")));
pub(crate) static AIMD: LazyLock<Script> =
    LazyLock::new(|| key_script(include_str!("../lua/aimd.lua")));
pub(crate) static SLOT_ACQUIRE: LazyLock<Script> =
    LazyLock::new(|| key_script(include_str!("../lua/slot_acquire.lua")));
pub(crate) static SLOT_RENEW: LazyLock<Script> =
    LazyLock::new(|| key_script(include_str!("../lua/slot_renew.lua")));
pub(crate) static SLOT_RELEASE: LazyLock<Script> =
    LazyLock::new(|| key_script(include_str!("../lua/slot_release.lua")));
pub(crate) static PARK: LazyLock<Script> =
    LazyLock::new(|| key_script(include_str!("../lua/park.lua")));
pub(crate) static KEY_INSPECT: LazyLock<Script> =
    LazyLock::new(|| key_script(include_str!("../lua/key_inspect.lua")));
pub(crate) static RESERVE: LazyLock<Script> =
    LazyLock::new(|| spend_script(include_str!("../lua/spend_reserve.lua")));
pub(crate) static COMMIT: LazyLock<Script> =
    LazyLock::new(|| spend_script(include_str!("../lua/spend_commit.lua")));
pub(crate) static SETTLE: LazyLock<Script> =
    LazyLock::new(|| spend_script(include_str!("../lua/spend_settle.lua")));
pub(crate) static RELEASE: LazyLock<Script> =
    LazyLock::new(|| spend_script(include_str!("../lua/spend_release.lua")));
pub(crate) static REAP: LazyLock<Script> =
    LazyLock::new(|| spend_script(include_str!("../lua/spend_reap.lua")));
pub(crate) static COMMITTED: LazyLock<Script> =
    LazyLock::new(|| spend_script(include_str!("../lua/spend_committed.lua")));
pub(crate) static SPEND_INSPECT: LazyLock<Script> =
    LazyLock::new(|| spend_script(include_str!("../lua/spend_inspect.lua")));

/// A script's array reply, read field by field with errors that name the script.
pub(crate) struct Reply {
    script: &'static str,
    items: Vec<Value>,
}

impl Reply {
    pub(crate) fn new(script: &'static str, v: Value) -> Result<Self, LimitsError> {
        match v {
            Value::Array(items) => Ok(Self { script, items }),
            other => Err(LimitsError::Protocol {
                script,
                detail: format!("expected an array, got {other:?}"),
            }),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    fn err(&self, i: usize, what: &str) -> LimitsError {
        LimitsError::Protocol {
            script: self.script,
            detail: format!("item {i}: expected {what}, got {:?}", self.items.get(i)),
        }
    }

    /// An integer (Lua number or decimal string).
    pub(crate) fn int(&self, i: usize) -> Result<i64, LimitsError> {
        match self.items.get(i) {
            Some(Value::Int(n)) => Ok(*n),
            Some(Value::BulkString(b)) => std::str::from_utf8(b)
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
                .ok_or_else(|| self.err(i, "an integer")),
            _ => Err(self.err(i, "an integer")),
        }
    }

    /// A string ('' for nil).
    pub(crate) fn str(&self, i: usize) -> Result<String, LimitsError> {
        match self.items.get(i) {
            Some(Value::BulkString(b)) => Ok(String::from_utf8_lossy(b).into_owned()),
            Some(Value::SimpleString(s)) => Ok(s.clone()),
            Some(Value::Int(n)) => Ok(n.to_string()),
            Some(Value::Nil) => Ok(String::new()),
            _ => Err(self.err(i, "a string")),
        }
    }

    /// A float written as a string ('' → None).
    pub(crate) fn opt_f64(&self, i: usize) -> Result<Option<f64>, LimitsError> {
        let s = self.str(i)?;
        if s.is_empty() {
            return Ok(None);
        }
        s.parse::<f64>()
            .map(Some)
            .map_err(|_| self.err(i, "a decimal number"))
    }

    /// A server timestamp in µs → `SystemTime`.
    pub(crate) fn time(&self, i: usize) -> Result<SystemTime, LimitsError> {
        Ok(from_us(self.int(i)?))
    }

    /// A timestamp where 0 means "none".
    pub(crate) fn opt_time(&self, i: usize) -> Result<Option<SystemTime>, LimitsError> {
        let us = self.int(i)?;
        Ok((us > 0).then(|| from_us(us)))
    }

    /// A non-negative duration in µs.
    pub(crate) fn dur(&self, i: usize) -> Result<Duration, LimitsError> {
        Ok(Duration::from_micros(self.int(i)?.max(0) as u64))
    }
}

/// µs since the epoch (server time) → `SystemTime`.
pub(crate) fn from_us(us: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(us.max(0) as u64)
}

/// `SystemTime` → µs since the epoch (0 for times before it).
pub(crate) fn to_us(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}
