//! How to reach Redis: standalone, Sentinel or Cluster, with TLS and auth for managed Redis.

use serde::{Deserialize, Serialize};

/// Which kind of Redis deployment `url`/`nodes` describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RedisMode {
    /// One server (or a managed endpoint that hides failover).
    #[default]
    Standalone,
    /// Redis Cluster: `nodes` are seed nodes (`url` is used when `nodes` is empty).
    Cluster,
    /// Redis Sentinel: `nodes` are sentinel addresses, `sentinel_master` the service name.
    Sentinel,
}

/// `[redis]` section. Env overrides: `MOTIONQ__REDIS__URL`, `MOTIONQ__REDIS__MODE`, ...
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `redis://[user[:password]@]host:port[/db]`, or `rediss://` for TLS.
    /// (`MOTIONQ__REDIS__URL`)
    pub url: String,
    /// `standalone` (default), `cluster` or `sentinel`. (`MOTIONQ__REDIS__MODE`)
    pub mode: RedisMode,
    /// Cluster seed nodes or sentinel addresses, as URLs. (`MOTIONQ__REDIS__NODES`, comma-separated)
    pub nodes: Vec<String>,
    /// Sentinel service (master) name. (`MOTIONQ__REDIS__SENTINEL_MASTER`)
    pub sentinel_master: Option<String>,
    /// ACL user name, if not in the URL. (`MOTIONQ__REDIS__USERNAME`)
    pub username: Option<String>,
    /// Name of the environment variable that holds the password (never the password itself).
    /// (`MOTIONQ__REDIS__PASSWORD_ENV`)
    pub password_env: Option<String>,
    /// Prefix of every key motionq writes, so several deployments can share one Redis.
    /// (`MOTIONQ__REDIS__KEY_PREFIX`)
    pub key_prefix: String,
    /// TCP connect timeout, ms. (`MOTIONQ__REDIS__CONNECT_TIMEOUT_MS`)
    pub connect_timeout_ms: u64,
    /// Per-command response timeout, ms (redis-rs defaults to 500 ms, too short under load).
    /// (`MOTIONQ__REDIS__RESPONSE_TIMEOUT_MS`)
    pub response_timeout_ms: u64,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379/".into(),
            mode: RedisMode::Standalone,
            nodes: Vec::new(),
            sentinel_master: None,
            username: None,
            password_env: None,
            key_prefix: "mq".into(),
            connect_timeout_ms: 5_000,
            response_timeout_ms: 5_000,
        }
    }
}

/// Redacts the password in a Redis URL, for logs and errors.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "<unparseable redis url>".into(),
    }
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redact_url(&self.url))
            .field("mode", &self.mode)
            .field(
                "nodes",
                &self.nodes.iter().map(|n| redact_url(n)).collect::<Vec<_>>(),
            )
            .field("sentinel_master", &self.sentinel_master)
            .field("username", &self.username)
            .field("password_env", &self.password_env)
            .field("key_prefix", &self.key_prefix)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let c = RedisConfig {
            url: "rediss://app:hunter2@redis.example.com:6380/0".into(),
            nodes: vec!["redis://:hunter2@n1:7000".into()],
            ..Default::default()
        };
        let s = format!("{c:?}");
        assert!(!s.contains("hunter2"), "{s}");
        assert!(s.contains("***"));
    }
}
