//! Shared set-up of the intake tests: a private Redis, a campaign enqueued through the real
//! store, jobs moved to `submitted` the way the submit stage leaves them, and the intake
//! served over loopback HTTP on port 0.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use motionq_config::Config;
use motionq_core::{JobState, Vendor};
use motionq_metrics::Metrics;
use motionq_pipeline::{Pipeline, PipelineOptions};
use motionq_queue::QueueStats;
use motionq_store::{EnqueueMode, EnqueueRequest, JobRecord};
use motionq_testkit::RedisServer;
use motionq_webhooks::{IntakeOptions, SigningSecret, WebhookSecrets, WebhookState};
use secrecy::SecretString;

pub const TOKEN: &str = "tok-0123456789abcdefghijklmnop";
pub const FREEPIK_SECRET: &str = "whsec_bW90aW9ucS1zaW0td2ViaG9vay1zZWNyZXQ=";
pub const CAMPAIGN: &str = "hooks";

pub struct Harness {
    pub redis: RedisServer,
    pub cfg: Config,
    pub pipeline: Arc<Pipeline>,
    pub state: WebhookState,
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    pub metrics: Metrics,
    pub stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub server: tokio::task::JoinHandle<std::io::Result<()>>,
    _out: tempfile::TempDir,
}

pub fn base_config(redis: &RedisServer, out: &std::path::Path) -> Config {
    let mut cfg = Config::default();
    cfg.redis.url = redis.url();
    cfg.redis.key_prefix = "mqt".into();
    cfg.storage.url = out.display().to_string();
    cfg.webhooks.tolerance_s = 300;
    cfg
}

impl Harness {
    pub async fn start() -> Harness {
        Self::start_with(IntakeOptions::default()).await
    }

    pub async fn start_with(opts: IntakeOptions) -> Harness {
        let redis = RedisServer::start()
            .await
            .expect(motionq_testkit::INSTALL_HINT);
        let out = tempfile::tempdir().unwrap();
        let cfg = base_config(&redis, out.path());
        let pipeline = Arc::new(
            Pipeline::connect(&cfg, PipelineOptions::default())
                .await
                .unwrap(),
        );
        let metrics = Metrics::new();
        let secrets = WebhookSecrets {
            token: SecretString::from(TOKEN.to_string()),
            freepik: Some(SecretString::from(FREEPIK_SECRET.to_string())),
        };
        let state =
            WebhookState::new(&cfg, pipeline.clone(), metrics.clone(), secrets, opts).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(motionq_webhooks::serve_state(
            state.clone(),
            listener,
            async move {
                let _ = rx.await;
            },
        ));
        Harness {
            redis,
            cfg,
            pipeline,
            state,
            addr,
            http: reqwest::Client::new(),
            metrics,
            stop: Some(tx),
            server,
            _out: out,
        }
    }

    pub fn url(&self, vendor: &str, token: &str, query: &str) -> String {
        format!("http://{}/webhooks/{vendor}/{token}{query}", self.addr)
    }

    /// Enqueues one campaign whose jobs are `(id, vendor)`.
    pub async fn enqueue(&self, jobs: &[(&str, Vendor)]) {
        let mut vendors: Vec<&str> = jobs.iter().map(|(_, v)| v.as_str()).collect();
        vendors.sort();
        vendors.dedup();
        let list: Vec<serde_json::Value> = jobs
            .iter()
            .map(|(id, v)| {
                serde_json::json!({
                    "id": id, "vendor": v.as_str(),
                    "image": "https://media.example.com/a.png",
                    "video": "https://media.example.com/b.mp4",
                    "video_duration_s": 8
                })
            })
            .collect();
        let manifest = serde_json::json!({
            "campaign": CAMPAIGN,
            "vendors": vendors,
            "defaults": {"orientation": "video", "tier": "std"},
            "jobs": list,
        });
        let bytes = serde_json::to_vec(&manifest).unwrap();
        let v = motionq_core::validate::validate_bytes(&bytes, &self.cfg.validate_options());
        let (campaign, vjobs) = v
            .campaign
            .clone()
            .unwrap_or_else(|| panic!("manifest invalid: {:?}", v.problems));
        let costs = vec![None; vjobs.len()];
        self.pipeline
            .store()
            .enqueue(EnqueueRequest {
                campaign: &campaign,
                jobs: &vjobs,
                job_costs: &costs,
                manifest_sha256: "test",
                expected_usd: None,
                worst_case_usd: None,
                mode: EnqueueMode::Strict,
                chunk: 100,
            })
            .await
            .unwrap();
    }

    /// Puts a job where the submit stage leaves it: `submitted`, task recorded in the index,
    /// next poll an hour away.
    pub async fn submitted(&self, job: &str, vendor: Vendor, task: &str, idem: &str) {
        let store = self.pipeline.store();
        let fields = [
            ("vendor", vendor.as_str().to_string()),
            ("key_alias", "main".to_string()),
            ("idem_key", idem.to_string()),
            ("task_id", task.to_string()),
        ];
        let t = store
            .transition(
                CAMPAIGN,
                job,
                &[],
                JobState::Submitted,
                "test: submitted",
                &fields,
            )
            .await
            .unwrap();
        assert!(matches!(t, motionq_store::Transition::Moved(_)), "{t:?}");
        let mut conn = store.conn();
        let now = self.redis_now_ms().await;
        let _: () = redis::cmd("HSET")
            .arg(store.keys().job(CAMPAIGN, job))
            .arg("next_poll_at")
            .arg(now + 3_600_000)
            .query_async(&mut conn)
            .await
            .unwrap();
        self.pipeline
            .record_task(vendor, task, CAMPAIGN, job, idem)
            .await
            .unwrap();
    }

    pub async fn redis_now_ms(&self) -> u64 {
        let (s, us): (u64, u64) = redis::cmd("TIME")
            .query_async(&mut self.pipeline.store().conn())
            .await
            .unwrap();
        s * 1000 + us / 1000
    }

    pub async fn job(&self, job: &str) -> JobRecord {
        self.pipeline
            .store()
            .job(CAMPAIGN, job)
            .await
            .unwrap()
            .expect("job exists")
    }

    pub async fn next_poll_at(&self, job: &str) -> u64 {
        self.job(job)
            .await
            .fields
            .get("next_poll_at")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    pub async fn poll_queue(&self) -> QueueStats {
        let q = motionq_queue::StreamQueue::<motionq_pipeline::StageJob>::with_conn(
            self.pipeline.store().conn(),
            &self.cfg.redis,
            "poll",
            motionq_pipeline::queue_config(&self.cfg).unwrap(),
        )
        .unwrap();
        q.stats().await.unwrap()
    }

    /// `motionq_webhooks_total{vendor, outcome}` as rendered.
    pub fn count(&self, vendor: Vendor, outcome: &str) -> u64 {
        let text = self.metrics.encode();
        let want = format!("motionq_webhooks_total{{outcome=\"{outcome}\",vendor=\"{vendor}\"}}");
        text.lines()
            .find_map(|l| {
                l.strip_prefix(&want)
                    .map(|v| v.trim().parse::<f64>().unwrap() as u64)
            })
            .unwrap_or(0)
    }

    pub async fn shutdown(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.server.await.unwrap().unwrap();
    }
}

/// Headers of a Standard-Webhooks delivery signed with `secret` at `ts`.
pub fn signed(secret: &str, id: &str, ts: i64, body: &[u8]) -> reqwest::header::HeaderMap {
    let s = SigningSecret::parse(&SecretString::from(secret.to_string())).unwrap();
    let mut h = reqwest::header::HeaderMap::new();
    h.insert("content-type", "application/json".parse().unwrap());
    h.insert("webhook-id", id.parse().unwrap());
    h.insert("webhook-timestamp", ts.to_string().parse().unwrap());
    h.insert("webhook-signature", s.sign(id, ts, body).parse().unwrap());
    h
}

pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
