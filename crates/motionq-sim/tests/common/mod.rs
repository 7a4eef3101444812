//! Test helpers: a started simulator, and a minimal client per vendor (request building and
//! response reading), so one conformance suite runs against all five dialects.
#![allow(dead_code)]

use motionq_sim::{KeyConfig, SimConfig, SimHandle, SimServer, Tier, Vendor, VendorConfig};
use serde_json::{json, Value};
use std::time::Duration;

/// The one key configured per vendor in [`config`] (AI Video API keys must start with `sk-`).
pub fn key(v: Vendor) -> &'static str {
    match v {
        Vendor::Evolink => "ev-test-key-1",
        Vendor::Kkiai => "kk-test-key-1",
        Vendor::Aivideoapi => "sk-aiv-test-key-1",
        Vendor::Highwayapi => "hw-test-key-1",
        Vendor::Freepik => "fp-test-key-1",
    }
}

/// Alias of [`key`] in the ledger.
pub const ALIAS: &str = "main";

/// Fast config: one unlimited key per vendor, admin on, private callbacks allowed.
pub fn config() -> SimConfig {
    let mut c = SimConfig::empty();
    c.seed = 7;
    c.time_scale = 0.001;
    for v in Vendor::ALL {
        *c.vendor_mut(v) = VendorConfig::with_keys(vec![KeyConfig::new(key(v)).alias(ALIAS)]);
    }
    c
}

pub async fn start(c: SimConfig) -> SimHandle {
    SimServer::start(c).await.expect("simulator starts")
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// What a test wants to create.
#[derive(Debug, Clone)]
pub struct Job {
    pub image: String,
    pub video: String,
    pub orientation: &'static str,
    pub tier: Tier,
    pub prompt: Option<String>,
    pub callback: Option<String>,
    pub external: Option<String>,
    /// KKIAI/EvoLink `watermark_info.enabled`.
    pub watermark: bool,
}

impl Job {
    pub fn new(sim: &SimHandle, image: &str, video: &str) -> Job {
        Job {
            image: sim.media_url(image),
            video: sim.media_url(video),
            orientation: "video",
            tier: Tier::Std,
            prompt: None,
            callback: None,
            external: None,
            watermark: false,
        }
    }
}

/// The vendor's create body for `job`.
pub fn create_body(v: Vendor, job: &Job) -> Value {
    let mut b = match v {
        Vendor::Evolink => json!({
            "model": "kling-v3-motion-control",
            "image_urls": [job.image],
            "video_urls": [job.video],
            "quality": if job.tier == Tier::Pro { "1080p" } else { "720p" },
            "model_params": {"character_orientation": job.orientation, "keep_sound": true},
        }),
        Vendor::Kkiai => json!({
            "model_name": "kling-v3",
            "image_url": job.image,
            "video_url": job.video,
            "keep_original_sound": "yes",
            "character_orientation": job.orientation,
            "mode": if job.tier == Tier::Pro { "pro" } else { "std" },
        }),
        Vendor::Aivideoapi => json!({
            "model": "kling-v3-motion-control",
            "input": {
                "input_urls": [job.image],
                "video_urls": [job.video],
                "character_orientation": job.orientation,
                "mode": if job.tier == Tier::Pro { "1080p" } else { "720p" },
            }
        }),
        Vendor::Highwayapi => json!({
            "image": job.image,
            "video": job.video,
            "model_name": if job.tier == Tier::Pro { "kling-v3-0-pro" } else { "kling-v3-0-std" },
            "keep_original_sound": true,
            "character_orientation": job.orientation,
        }),
        Vendor::Freepik => json!({
            "image_url": job.image,
            "video_url": job.video,
            "character_orientation": job.orientation,
            "cfg_scale": 0.5,
        }),
    };
    if let Some(p) = &job.prompt {
        match v {
            Vendor::Aivideoapi => b["input"]["prompt"] = json!(p),
            _ => b["prompt"] = json!(p),
        }
    }
    if let Some(cb) = &job.callback {
        match v {
            Vendor::Freepik => b["webhook_url"] = json!(cb),
            Vendor::Highwayapi => {}
            _ => b["callback_url"] = json!(cb),
        }
    }
    if job.watermark {
        match v {
            Vendor::Evolink => b["model_params"]["watermark_info"] = json!({"enabled": true}),
            Vendor::Kkiai => b["watermark_info"] = json!({"enabled": true}),
            _ => {}
        }
    }
    if let Some(e) = &job.external {
        b["external_task_id"] = json!(e);
    }
    b
}

fn freepik_model(tier: Tier) -> &'static str {
    match tier {
        Tier::Pro => "kling-v3-motion-control-pro",
        Tier::Std => "kling-v3-motion-control-std",
    }
}

pub fn create_url(sim: &SimHandle, v: Vendor, tier: Tier) -> String {
    let base = sim.vendor_base_url(v);
    match v {
        Vendor::Evolink | Vendor::Aivideoapi => format!("{base}/v1/videos/generations"),
        Vendor::Kkiai => format!("{base}/kling/v1/videos/motion-control"),
        Vendor::Highwayapi => format!("{base}/v3/async/kling-v3.0-motion-control"),
        Vendor::Freepik => format!("{base}/v1/ai/video/{}", freepik_model(tier)),
    }
}

pub fn query_url(sim: &SimHandle, v: Vendor, id: &str, tier: Tier) -> String {
    let base = sim.vendor_base_url(v);
    match v {
        Vendor::Evolink | Vendor::Aivideoapi => format!("{base}/v1/tasks/{id}"),
        Vendor::Kkiai => format!("{base}/kling/v1/videos/motion-control/{id}"),
        Vendor::Highwayapi => format!("{base}/v3/async/task-result?task_id={id}"),
        Vendor::Freepik => format!("{base}/v1/ai/video/{}/{id}", freepik_model(tier)),
    }
}

/// Adds the vendor's auth header.
pub fn auth(v: Vendor, rb: reqwest::RequestBuilder, key: &str) -> reqwest::RequestBuilder {
    match v {
        Vendor::Freepik => rb.header("x-freepik-api-key", key),
        _ => rb.bearer_auth(key),
    }
}

pub async fn post(sim: &SimHandle, v: Vendor, tier: Tier, key: &str, body: &Value) -> (u16, Value) {
    let rb = client().post(create_url(sim, v, tier)).json(body);
    let r = auth(v, rb, key).send().await.expect("create answered");
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

pub async fn get(v: Vendor, url: &str, key: &str) -> (u16, Value) {
    let r = auth(v, client().get(url), key)
        .send()
        .await
        .expect("query answered");
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The task id in a create answer.
pub fn task_id(v: Vendor, body: &Value) -> String {
    let id = match v {
        Vendor::Evolink => &body["id"],
        Vendor::Kkiai | Vendor::Freepik => &body["data"]["task_id"],
        Vendor::Aivideoapi => &body["data"]["taskId"],
        Vendor::Highwayapi => &body["task_id"],
    };
    id.as_str()
        .unwrap_or_else(|| panic!("no task id in {body}"))
        .to_string()
}

/// The common status of a query answer.
pub fn status(v: Vendor, body: &Value) -> &'static str {
    let s = match v {
        Vendor::Evolink | Vendor::Aivideoapi => body["status"].as_str(),
        Vendor::Kkiai => body["data"]["task_status"].as_str(),
        Vendor::Highwayapi => body["task"]["status"].as_str(),
        Vendor::Freepik => body["data"]["status"].as_str(),
    }
    .unwrap_or_else(|| panic!("no status in {body}"));
    match s {
        "pending" | "submitted" | "TASK_STATUS_QUEUED" | "CREATED" => "pending",
        "processing" | "TASK_STATUS_PROCESSING" | "IN_PROGRESS" => "processing",
        "completed" | "succeed" | "TASK_STATUS_SUCCEED" | "COMPLETED" => "completed",
        "failed" | "TASK_STATUS_FAILED" | "FAILED" => "failed",
        other => panic!("unknown status {other}"),
    }
}

/// The output URL of a completed query answer.
pub fn output_url(v: Vendor, body: &Value) -> String {
    let u = match v {
        Vendor::Evolink => &body["results"][0],
        Vendor::Kkiai => &body["data"]["task_result"]["videos"][0]["url"],
        Vendor::Aivideoapi => &body["output"]["urls"][0],
        Vendor::Highwayapi => &body["videos"][0]["video_url"],
        Vendor::Freepik => &body["data"]["generated"][0],
    };
    u.as_str()
        .unwrap_or_else(|| panic!("no output url in {body}"))
        .to_string()
}

/// Creates `job` and returns the task id (panics on a non-200).
pub async fn create_ok(sim: &SimHandle, v: Vendor, job: &Job) -> String {
    let (st, body) = post(sim, v, job.tier, key(v), &create_body(v, job)).await;
    assert_eq!(st, 200, "{v} create: {body}");
    task_id(v, &body)
}

/// Polls until the task is terminal; returns the first body seen for each status, in order.
pub async fn wait_terminal(
    sim: &SimHandle,
    v: Vendor,
    id: &str,
    tier: Tier,
) -> Vec<(&'static str, Value)> {
    let url = query_url(sim, v, id, tier);
    let mut seen: Vec<(&'static str, Value)> = Vec::new();
    for _ in 0..4000 {
        let (st, body) = get(v, &url, key(v)).await;
        assert_eq!(st, 200, "{v} query: {body}");
        let s = status(v, &body);
        if seen.last().map(|x| x.0) != Some(s) {
            seen.push((s, body));
        }
        if s == "completed" || s == "failed" {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("{v} task {id} never finished");
}

/// The final body of [`wait_terminal`].
pub async fn finish(sim: &SimHandle, v: Vendor, id: &str, tier: Tier) -> Value {
    wait_terminal(sim, v, id, tier).await.pop().unwrap().1
}

/// Downloads a URL, returning status and bytes.
pub async fn download(url: &str) -> (u16, Vec<u8>) {
    let r = client().get(url).send().await.expect("download answered");
    let st = r.status().as_u16();
    (st, r.bytes().await.map(|b| b.to_vec()).unwrap_or_default())
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Duration of an MP4 in seconds, after checking it starts with `ftyp` and parses.
pub fn mp4_seconds(bytes: &[u8]) -> f64 {
    assert_eq!(&bytes[4..8], b"ftyp", "file starts with an ftyp box");
    let r = mp4::Mp4Reader::read_header(std::io::Cursor::new(bytes), bytes.len() as u64)
        .expect("output parses as MP4");
    r.duration().as_secs_f64()
}

/// Every key of `doc` exists in `sim` with the same JSON type (recursively; arrays compare
/// their first items; `null` in the doc matches anything).
pub fn same_shape(doc: &Value, sim: &Value, path: &str) -> Result<(), String> {
    match (doc, sim) {
        (Value::Null, _) => Ok(()),
        (Value::Object(d), Value::Object(s)) => {
            for (k, dv) in d {
                let sv = s
                    .get(k)
                    .ok_or_else(|| format!("{path}.{k} missing in simulator answer"))?;
                same_shape(dv, sv, &format!("{path}.{k}"))?;
            }
            Ok(())
        }
        (Value::Array(d), Value::Array(s)) => match (d.first(), s.first()) {
            (Some(dv), Some(sv)) => same_shape(dv, sv, &format!("{path}[0]")),
            (Some(_), None) => Err(format!("{path} is empty in simulator answer")),
            _ => Ok(()),
        },
        (Value::String(_), Value::String(_))
        | (Value::Number(_), Value::Number(_))
        | (Value::Bool(_), Value::Bool(_)) => Ok(()),
        (d, s) => Err(format!("{path}: doc has {d}, simulator has {s}")),
    }
}
