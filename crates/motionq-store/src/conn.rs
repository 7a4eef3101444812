//! The one Redis connection type: standalone, Sentinel or Cluster, with TLS and auth.
//!
//! Every Redis access in motionq goes through [`RedisConn`], which implements
//! [`redis::aio::ConnectionLike`], so commands, pipelines and scripts work the same on all three
//! deployments. It reconnects by itself (standalone/Sentinel through redis-rs's
//! `ConnectionManager`, Cluster through `ClusterConnection`), so a Redis restart costs the
//! in-flight commands an error, not the process.
//!
//! Blocking commands (`XREADGROUP BLOCK`, `BLPOP`) must not share a multiplexed connection with
//! other traffic and need a response timeout longer than the block: use
//! [`RedisConn::connect_dedicated`].

use std::time::Duration;

use motionq_config::{redact_url, RedisConfig, RedisMode};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, IntoConnectionInfo, Pipeline, RedisFuture, Value};

/// Why Redis could not be reached or configured. The message never contains a password.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The configuration is wrong (bad URL, missing sentinel master, missing password env var).
    /// Not retried: fix the config.
    #[error("redis config: {0}")]
    Config(String),
    /// Redis did not answer. Retried by callers that wait for Redis; commands print this.
    #[error("cannot connect to Redis at {url}: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: redis::RedisError,
    },
}

/// A cloneable, self-reconnecting connection to standalone Redis, Sentinel or Cluster.
#[derive(Clone)]
pub enum RedisConn {
    /// Standalone or Sentinel-resolved master.
    Single(ConnectionManager),
    /// Redis Cluster.
    Cluster(ClusterConnection),
}

impl RedisConn {
    /// Connects with the configured response timeout (for ordinary commands).
    pub async fn connect(cfg: &RedisConfig) -> Result<Self, ConnectError> {
        Self::connect_with(cfg, Duration::from_millis(cfg.response_timeout_ms)).await
    }

    /// A connection of its own with a response timeout long enough for blocking commands that
    /// block up to `block` (the timeout is `block` + the configured response timeout).
    pub async fn connect_dedicated(
        cfg: &RedisConfig,
        block: Duration,
    ) -> Result<Self, ConnectError> {
        Self::connect_with(cfg, block + Duration::from_millis(cfg.response_timeout_ms)).await
    }

    async fn connect_with(
        cfg: &RedisConfig,
        response_timeout: Duration,
    ) -> Result<Self, ConnectError> {
        let connect_timeout = Duration::from_millis(cfg.connect_timeout_ms);
        let password = match &cfg.password_env {
            Some(var) => Some(std::env::var(var).map_err(|_| {
                ConnectError::Config(format!(
                    "redis.password_env names `{var}`, which is not set in the environment"
                ))
            })?),
            None => None,
        };
        let with_auth = |url: &str| -> Result<redis::ConnectionInfo, ConnectError> {
            let mut info = url.into_connection_info().map_err(|e| {
                ConnectError::Config(format!("bad Redis URL `{}`: {e}", redact_url(url)))
            })?;
            let mut rci = info.redis_settings().clone();
            if let Some(p) = &password {
                rci = rci.set_password(p.clone());
            }
            if let Some(u) = &cfg.username {
                rci = rci.set_username(u.clone());
            }
            info = info.set_redis_settings(rci);
            Ok(info)
        };
        match cfg.mode {
            RedisMode::Standalone => {
                let client = redis::Client::open(with_auth(&cfg.url)?).map_err(|e| {
                    ConnectError::Config(format!("bad Redis URL `{}`: {e}", redact_url(&cfg.url)))
                })?;
                Self::manager(client, &cfg.url, connect_timeout, response_timeout).await
            }
            RedisMode::Sentinel => {
                let master = cfg.sentinel_master.clone().ok_or_else(|| {
                    ConnectError::Config(
                        "redis.mode = \"sentinel\" needs redis.sentinel_master".into(),
                    )
                })?;
                if cfg.nodes.is_empty() {
                    return Err(ConnectError::Config(
                        "redis.mode = \"sentinel\" needs redis.nodes (sentinel addresses)".into(),
                    ));
                }
                let mut node_info = redis::sentinel::SentinelNodeConnectionInfo::default();
                if password.is_some() || cfg.username.is_some() {
                    let mut rci = redis::RedisConnectionInfo::default();
                    if let Some(p) = &password {
                        rci = rci.set_password(p.clone());
                    }
                    if let Some(u) = &cfg.username {
                        rci = rci.set_username(u.clone());
                    }
                    node_info = node_info.set_redis_connection_info(rci);
                }
                let mut sentinel = redis::sentinel::SentinelClient::build(
                    cfg.nodes.clone(),
                    master.clone(),
                    Some(node_info),
                    redis::sentinel::SentinelServerType::Master,
                )
                .map_err(|e| ConnectError::Config(format!("sentinel setup: {e}")))?;
                let client = sentinel.async_get_client().await.map_err(|source| {
                    ConnectError::Unreachable {
                        url: format!("sentinel master `{master}`"),
                        source,
                    }
                })?;
                Self::manager(client, &cfg.url, connect_timeout, response_timeout).await
            }
            RedisMode::Cluster => {
                let seeds: Vec<String> = if cfg.nodes.is_empty() {
                    vec![cfg.url.clone()]
                } else {
                    cfg.nodes.clone()
                };
                let infos = seeds
                    .iter()
                    .map(|s| with_auth(s))
                    .collect::<Result<Vec<_>, _>>()?;
                let client = ClusterClientBuilder::new(infos)
                    .connection_timeout(connect_timeout)
                    .response_timeout(response_timeout)
                    .retries(6)
                    .build()
                    .map_err(|e| ConnectError::Config(format!("cluster setup: {e}")))?;
                let conn = client.get_async_connection().await.map_err(|source| {
                    ConnectError::Unreachable {
                        url: seeds
                            .iter()
                            .map(|s| redact_url(s))
                            .collect::<Vec<_>>()
                            .join(","),
                        source,
                    }
                })?;
                Ok(RedisConn::Cluster(conn))
            }
        }
    }

    async fn manager(
        client: redis::Client,
        url: &str,
        connect_timeout: Duration,
        response_timeout: Duration,
    ) -> Result<Self, ConnectError> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            .set_response_timeout(Some(response_timeout))
            .set_number_of_retries(6)
            .set_max_delay(Duration::from_secs(2));
        let mgr = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|source| ConnectError::Unreachable {
                url: redact_url(url),
                source,
            })?;
        Ok(RedisConn::Single(mgr))
    }

    /// Whether this is a Redis Cluster connection.
    pub fn is_cluster(&self) -> bool {
        matches!(self, RedisConn::Cluster(_))
    }
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConn::Single(c) => c.req_packed_command(cmd),
            RedisConn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConn::Single(c) => c.req_packed_commands(cmd, offset, count),
            RedisConn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConn::Single(c) => c.get_db(),
            RedisConn::Cluster(c) => c.get_db(),
        }
    }
}
