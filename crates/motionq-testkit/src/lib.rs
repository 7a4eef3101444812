//! Test harness: real `redis-server` processes owned by the test that started them.
//!
//! motionq's tests never use a shared or mocked Redis. Each test starts its own server on a free
//! port with its own data directory, so tests run in parallel and a crash or restart in one test
//! cannot disturb another.
//!
//! * [`RedisServer`]: one standalone server, AOF on (`appendfsync always` by default, so a
//!   `kill -9` loses nothing acknowledged), optionally password-protected. It can be stopped with
//!   SIGKILL or a clean `SHUTDOWN` and restarted on the same port and data dir, which is how the
//!   durability tests prove that acknowledged writes survive.
//! * [`RedisCluster`]: a three-node Redis Cluster (masters only) on three free ports, slots
//!   assigned with `redis-cli --cluster create`.
//!
//! * [`S3Server`]: an in-process S3-compatible server (s3s-fs) for the object-storage paths.
//!
//! Servers are started in the foreground as child processes (never `--daemonize`: the machines
//! this runs on do not reap orphans) and stopped on drop. Readiness is checked with a real `PING`.
//!
//! When `redis-server` is missing, [`RedisServer::start`] fails with a message that says how to
//! install it: tests are never skipped silently.
//!
//! ```no_run
//! # async fn t() -> anyhow::Result<()> {
//! let redis = motionq_testkit::RedisServer::start().await?;
//! let client = redis::Client::open(redis.url())?;
//! # Ok(()) }
//! ```

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

pub mod s3;
pub use s3::{S3Server, S3_ACCESS_KEY, S3_BUCKET, S3_SECRET_KEY};

/// The message every test prints when Redis is not installed.
pub const INSTALL_HINT: &str = "redis-server was not found on PATH. Install it with \
`sudo apt-get install -y --no-install-recommends redis-server` (Debian/Ubuntu) or \
`brew install redis` (macOS); the tests start their own private server.";

/// Options for a standalone server.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// `requirepass` value; `None` for no auth.
    pub password: Option<String>,
    /// `appendfsync` policy: `always` (default in tests: nothing acknowledged is lost on
    /// `kill -9`) or `everysec`.
    pub appendfsync: &'static str,
    /// Extra `--name value` arguments.
    pub extra_args: Vec<String>,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            password: None,
            appendfsync: "always",
            extra_args: Vec::new(),
        }
    }
}

/// A private `redis-server` child process. Stopped (SIGKILL) when dropped.
pub struct RedisServer {
    port: u16,
    dir: tempfile::TempDir,
    opts: RedisOptions,
    child: Option<Child>,
}

/// Asks the OS for a free TCP port on loopback.
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("bind 127.0.0.1:0 to find a free port")?;
    Ok(l.local_addr()?.port())
}

fn redis_server_binary() -> Result<PathBuf> {
    if let Ok(p) = std::env::var("MOTIONQ_REDIS_SERVER") {
        return Ok(PathBuf::from(p));
    }
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(dir).join("redis-server");
        if p.is_file() {
            return Ok(p);
        }
    }
    for p in ["/usr/bin/redis-server", "/usr/local/bin/redis-server"] {
        if Path::new(p).is_file() {
            return Ok(PathBuf::from(p));
        }
    }
    bail!("{INSTALL_HINT}")
}

impl RedisServer {
    /// Starts a standalone server with AOF on and no password.
    pub async fn start() -> Result<Self> {
        Self::start_with(RedisOptions::default()).await
    }

    /// Starts a standalone server with the given options.
    pub async fn start_with(opts: RedisOptions) -> Result<Self> {
        let mut dir = tempfile::Builder::new()
            .prefix("motionq-redis-")
            .tempdir()
            .context("create a data dir for redis-server")?;
        let mut last_err = None;
        // A free port can be taken between asking and binding; try a few.
        for _ in 0..5 {
            let port = free_port()?;
            let mut s = Self {
                port,
                dir,
                opts: opts.clone(),
                child: None,
            };
            match s.spawn().await {
                Ok(()) => return Ok(s),
                Err(e) => {
                    last_err = Some(e);
                    dir = s.take_dir();
                }
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow::anyhow!("redis-server did not start")))
    }

    fn take_dir(mut self) -> tempfile::TempDir {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // Swap in a throwaway dir so Drop has something to clean; the real one is returned.
        let fresh = tempfile::tempdir().expect("temp dir for redis-server handover");
        std::mem::replace(&mut self.dir, fresh)
    }

    fn args(&self) -> Vec<String> {
        let mut a = vec![
            "--port".into(),
            self.port.to_string(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--dir".into(),
            self.dir.path().display().to_string(),
            "--appendonly".into(),
            "yes".into(),
            "--appendfsync".into(),
            self.opts.appendfsync.into(),
            "--save".into(),
            "".into(),
            "--daemonize".into(),
            "no".into(),
            "--logfile".into(),
            self.dir.path().join("redis.log").display().to_string(),
        ];
        if let Some(p) = &self.opts.password {
            a.push("--requirepass".into());
            a.push(p.clone());
        }
        a.extend(self.opts.extra_args.iter().cloned());
        a
    }

    async fn spawn(&mut self) -> Result<()> {
        let bin = redis_server_binary()?;
        let child = Command::new(&bin)
            .args(self.args())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("spawn {}", bin.display()))?;
        self.child = Some(child);
        self.wait_ready().await
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(c) = self.child.as_mut() {
                if let Some(status) = c.try_wait()? {
                    let log = std::fs::read_to_string(self.dir.path().join("redis.log"))
                        .unwrap_or_default();
                    bail!("redis-server exited early ({status}); log:\n{log}");
                }
            }
            if self.ping().await.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("redis-server on port {} did not answer PING", self.port);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn ping(&self) -> Result<()> {
        let client = redis::Client::open(self.url())?;
        let mut c = client.get_multiplexed_async_connection().await?;
        let _: String = redis::cmd("PING").query_async(&mut c).await?;
        Ok(())
    }

    /// `redis://[:password@]127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        match &self.opts.password {
            Some(p) => format!("redis://:{p}@127.0.0.1:{}/", self.port),
            None => format!("redis://127.0.0.1:{}/", self.port),
        }
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The data directory (holds the AOF).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The process id while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// SIGKILL: nothing is flushed beyond what `appendfsync` already wrote.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// A clean `SHUTDOWN` (the AOF is fsynced), then waits for the process to exit.
    pub async fn shutdown(&mut self) -> Result<()> {
        if let Ok(client) = redis::Client::open(self.url()) {
            if let Ok(mut c) = client.get_multiplexed_async_connection().await {
                // The server closes the connection instead of answering.
                let _: redis::RedisResult<()> = redis::cmd("SHUTDOWN").query_async(&mut c).await;
            }
        }
        if let Some(mut c) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(10);
            while c.try_wait()?.is_none() {
                if Instant::now() > deadline {
                    let _ = c.kill();
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Ok(())
    }

    /// Starts the server again on the same port and data dir (replays the AOF).
    pub async fn restart(&mut self) -> Result<()> {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.spawn().await {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() < deadline => {
                    // The port may still be in TIME_WAIT teardown; try again shortly.
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A three-node Redis Cluster (three masters, no replicas) on free ports.
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts three cluster-mode servers and assigns all slots with `redis-cli --cluster create`.
    pub async fn start() -> Result<Self> {
        let mut nodes = Vec::new();
        for _ in 0..3 {
            let opts = RedisOptions {
                extra_args: vec![
                    "--cluster-enabled".into(),
                    "yes".into(),
                    "--cluster-config-file".into(),
                    "nodes.conf".into(),
                    "--cluster-node-timeout".into(),
                    "5000".into(),
                ],
                ..Default::default()
            };
            nodes.push(RedisServer::start_with(opts).await?);
        }
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .arg("--cluster-replicas")
            .arg("0")
            .arg("--cluster-yes")
            .output()
            .context("run `redis-cli --cluster create` (install redis-tools with redis-server)")?;
        if !out.status.success() {
            bail!(
                "redis-cli --cluster create failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let cluster = Self { nodes };
        cluster.wait_ok().await?;
        Ok(cluster)
    }

    async fn wait_ok(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut all_ok = true;
            for n in &self.nodes {
                let client = redis::Client::open(n.url())?;
                let mut c = client.get_multiplexed_async_connection().await?;
                let info: String = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query_async(&mut c)
                    .await?;
                if !info.contains("cluster_state:ok") {
                    all_ok = false;
                }
            }
            if all_ok {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("cluster did not reach cluster_state:ok");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Seed node URLs, one per node.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.url()).collect()
    }

    /// The nodes (to kill or inspect one).
    pub fn nodes(&mut self) -> &mut [RedisServer] {
        &mut self.nodes
    }
}
