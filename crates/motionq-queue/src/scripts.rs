//! The Lua scripts (files under `lua/`), loaded once per process. redis-rs sends `EVALSHA` and
//! loads the script on `NOSCRIPT`, so a restarted Redis (empty script cache) is handled.

use std::sync::LazyLock;

use redis::Script;

pub(crate) struct Scripts {
    pub promote: Script,
    pub schedule: Script,
    pub ack: Script,
    pub retry: Script,
    pub dead: Script,
    pub claim: Script,
    pub refresh: Script,
    pub release: Script,
    pub trim: Script,
    pub requeue_dead: Script,
}

pub(crate) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    promote: Script::new(include_str!("../lua/promote.lua")),
    schedule: Script::new(include_str!("../lua/schedule.lua")),
    ack: Script::new(include_str!("../lua/ack.lua")),
    retry: Script::new(include_str!("../lua/retry.lua")),
    dead: Script::new(include_str!("../lua/dead.lua")),
    claim: Script::new(include_str!("../lua/claim.lua")),
    refresh: Script::new(include_str!("../lua/refresh.lua")),
    release: Script::new(include_str!("../lua/release.lua")),
    trim: Script::new(include_str!("../lua/trim.lua")),
    requeue_dead: Script::new(include_str!("../lua/requeue_dead.lua")),
});
