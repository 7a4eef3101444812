//! The campaign manifest: the JSON a campaign owner writes.
//!
//! The Rust types here are the single definition of the format: `manifests/schema.json` is
//! generated from them ([`json_schema`]) and a test keeps the checked-in file current.
//! [`parse`] turns bytes into a [`ParsedManifest`] and reports *every* structural problem at once
//! (bad JSON with line and column, wrong types, unknown fields with a "did you mean", missing
//! fields), each with its JSON pointer. Semantic rules (vendor limits, duplicates, budgets) are in
//! [`crate::validate`].

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::job::{Orientation, Tier};
use crate::validate::Problem;
use crate::vendor::Vendor;

/// A campaign: shared settings plus its jobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "motionq campaign manifest")]
pub struct Manifest {
    /// Optional link to this schema, for editors.
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Campaign id: 1-64 characters, lowercase letters, digits, `-` and `_`, starting with a
    /// letter or digit. Used in Redis keys, object keys and metrics.
    pub campaign: String,
    /// Free text shown in status and reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Object-store prefix for this campaign's outputs (relative, `/`-separated). Outputs land at
    /// `<storage url>/<output_prefix>/<campaign>/<job id>.mp4`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_prefix: Option<String>,
    /// Campaign budget in USD. Enqueue refuses a campaign whose worst-case cost exceeds it (unless
    /// overridden), and workers never reserve beyond it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_usd: Option<f64>,
    /// The one vendor every job uses (or set `vendors`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<Vendor>,
    /// Vendors jobs may be routed to, with `routing` deciding the order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendors: Option<Vec<Vendor>>,
    /// How a job picks among `vendors`: `cheapest` (default; cheapest usable first, failing over
    /// to the next) or `in_order` (the order given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing: Option<RoutingPolicy>,
    /// Public HTTPS base URL where vendors may deliver callbacks for this campaign (the webhook
    /// server's address). Optional: polling always works.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_base_url: Option<String>,
    /// Scheduling priority among campaigns sharing keys; higher goes first. Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    /// Free-form labels copied to reports and sidecars (not to metrics).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Values every job gets unless it sets its own.
    #[serde(default)]
    pub defaults: JobDefaults,
    /// The jobs: one character image plus one reference video each.
    pub jobs: Vec<JobEntry>,
}

/// How a job with several allowed vendors picks one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoutingPolicy {
    /// Cheapest usable vendor first (by configured price for the job's tier), then the next.
    #[default]
    Cheapest,
    /// The order of `vendors`.
    InOrder,
}

/// Defaults applied to every job that does not set the field itself.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobDefaults {
    /// Text prompt, at most 2500 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// What to avoid, at most 2500 characters (HighwayAPI only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative_prompt: Option<String>,
    /// `image` (reference video ≤ 10 s) or `video` (≤ 30 s). Default `video`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orientation: Option<Orientation>,
    /// `std` (720p) or `pro` (1080p). Default `std`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<Tier>,
    /// Keep the reference video's audio (EvoLink, KKIAI, HighwayAPI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_sound: Option<bool>,
    /// Prompt adherence from 0 to 1 (Freepik only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cfg_scale: Option<f64>,
}

/// One job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobEntry {
    /// Unique id within the campaign (1-128 characters, no control characters). When omitted,
    /// derived from a hash of the job's content, so re-enqueuing the same manifest is idempotent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Character image: an http(s) URL, or base64 (raw or `data:image/...;base64,`) for vendors
    /// that accept it (KKIAI, HighwayAPI).
    pub image: String,
    /// Reference motion video: an http(s) URL.
    pub video: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative_prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orientation: Option<Orientation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<Tier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_sound: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cfg_scale: Option<f64>,
    /// Known reference video length in seconds; makes the cost estimate exact without `--probe`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_duration_s: Option<f64>,
    /// This job's one vendor, overriding the campaign's choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<Vendor>,
    /// This job's allowed vendors, overriding the campaign's choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendors: Option<Vec<Vendor>>,
    /// Free-form labels for reports and sidecars.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// A manifest after structural parsing. Jobs that could not be read at all are left out of
/// `manifest.jobs`; `job_index[i]` is the position of `manifest.jobs[i]` in the original file.
#[derive(Debug, Clone)]
pub struct ParsedManifest {
    pub manifest: Manifest,
    pub job_index: Vec<usize>,
    /// Number of entries in the file's `jobs` array.
    pub jobs_in_file: usize,
}

/// The JSON Schema of the manifest, as written to `manifests/schema.json`.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(Manifest);
    let mut s = serde_json::to_string_pretty(&schema).expect("a schema always serialises");
    s.push('\n');
    s
}

/// Escapes one JSON pointer reference token (RFC 6901).
pub fn pointer_token(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

/// Line and column (1-based) of a byte offset.
fn line_col(bytes: &[u8], offset: usize) -> (usize, usize) {
    let before = &bytes[..offset.min(bytes.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let col = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
    (line, col)
}

/// Parses manifest bytes, collecting every structural problem.
///
/// Returns `None` when nothing usable could be read (not JSON, not an object, or the campaign
/// fields themselves are unreadable); the problems then say why.
pub fn parse(bytes: &[u8], problems: &mut Vec<Problem>) -> Option<ParsedManifest> {
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let (line, col) = line_col(bytes, e.valid_up_to());
            problems.push(Problem::error(
                "",
                format!("the manifest is not valid UTF-8 (first bad byte at line {line}, column {col}); save it as UTF-8"),
            ));
            return None;
        }
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            problems.push(Problem::error(
                "",
                format!(
                    "invalid JSON at line {}, column {}: {}",
                    e.line(),
                    e.column(),
                    strip_position(&e.to_string())
                ),
            ));
            return None;
        }
    };
    let Value::Object(mut top) = value else {
        problems.push(Problem::error(
            "",
            format!(
                "the manifest must be a JSON object with `campaign` and `jobs`, found {}",
                kind(&value)
            ),
        ));
        return None;
    };

    // Jobs are read one by one so that one bad job does not hide the others' problems.
    let jobs_value = top.remove("jobs");
    let mut job_values = Vec::new();
    let mut jobs_ok = true;
    match jobs_value {
        None => {
            problems.push(Problem::error(
                "",
                "missing field `jobs` (the list of jobs)",
            ));
            jobs_ok = false;
        }
        Some(Value::Array(a)) => job_values = a,
        Some(other) => {
            problems.push(Problem::error(
                "/jobs",
                format!(
                    "`jobs` must be an array of job objects, found {}",
                    kind(&other)
                ),
            ));
            jobs_ok = false;
        }
    }
    top.insert("jobs".into(), Value::Array(Vec::new()));
    let head: Option<Manifest> = deserialize_all(Value::Object(top), "", problems);

    let jobs_in_file = job_values.len();
    let mut jobs = Vec::with_capacity(job_values.len());
    let mut job_index = Vec::with_capacity(job_values.len());
    for (i, jv) in job_values.into_iter().enumerate() {
        let base = format!("/jobs/{i}");
        if !jv.is_object() {
            problems.push(Problem::error(
                base,
                format!("each job must be an object, found {}", kind(&jv)),
            ));
            continue;
        }
        if let Some(job) = deserialize_all::<JobEntry>(jv, &base, problems) {
            jobs.push(job);
            job_index.push(i);
        }
    }
    let mut manifest = head?;
    if !jobs_ok {
        return None;
    }
    manifest.jobs = jobs;
    Some(ParsedManifest {
        manifest,
        job_index,
        jobs_in_file,
    })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// serde_json appends " at line X column Y" to messages; we print our own position.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// Deserializes `v` into `T`, reporting every field that fails: after each failure the failing
/// field is removed and deserialization is tried again, so one typo does not hide the next.
fn deserialize_all<T: DeserializeOwned>(
    mut v: Value,
    base: &str,
    problems: &mut Vec<Problem>,
) -> Option<T> {
    let mut failed = false;
    // Pointers of fields removed after a failure: their "missing field" echo is not news.
    let mut removed: Vec<String> = Vec::new();
    // Each round removes one key, so this terminates; the bound is a backstop.
    for _ in 0..256 {
        match serde_path_to_error::deserialize::<_, T>(&v) {
            Ok(t) => return if failed { None } else { Some(t) },
            Err(e) => {
                failed = true;
                let segments: Vec<PathSeg> = e
                    .path()
                    .iter()
                    .filter_map(|s| match s {
                        serde_path_to_error::Segment::Map { key } => {
                            Some(PathSeg::Key(key.clone()))
                        }
                        serde_path_to_error::Segment::Seq { index } => Some(PathSeg::Index(*index)),
                        _ => None,
                    })
                    .collect();
                let inner = e.into_inner();
                let pointer = format!(
                    "{base}{}",
                    segments
                        .iter()
                        .map(|s| match s {
                            PathSeg::Key(k) => format!("/{}", pointer_token(k)),
                            PathSeg::Index(i) => format!("/{i}"),
                        })
                        .collect::<String>()
                );
                let msg = strip_position(&inner.to_string());
                if let Some(field) = msg
                    .strip_prefix("missing field `")
                    .and_then(|r| r.strip_suffix('`'))
                {
                    if removed.contains(&format!("{pointer}/{}", pointer_token(field))) {
                        return None;
                    }
                }
                problems.push(Problem::error(pointer.clone(), friendly(&msg)));
                if !remove_last_key(&mut v, &segments) {
                    return None;
                }
                removed.push(pointer);
            }
        }
    }
    None
}

#[derive(Debug, Clone)]
enum PathSeg {
    Key(String),
    Index(usize),
}

/// Removes the deepest object key on `path` (the failing field, or the object holding a failing
/// array element). Returns false when the failure is about the object itself.
fn remove_last_key(v: &mut Value, path: &[PathSeg]) -> bool {
    let Some(last_key_pos) = path.iter().rposition(|s| matches!(s, PathSeg::Key(_))) else {
        return false;
    };
    let mut cur = v;
    for seg in &path[..last_key_pos] {
        cur = match (seg, cur) {
            (PathSeg::Key(k), Value::Object(m)) => match m.get_mut(k) {
                Some(x) => x,
                None => return false,
            },
            (PathSeg::Index(i), Value::Array(a)) => match a.get_mut(*i) {
                Some(x) => x,
                None => return false,
            },
            _ => return false,
        };
    }
    match (&path[last_key_pos], cur) {
        (PathSeg::Key(k), Value::Object(m)) => m.remove(k).is_some(),
        _ => false,
    }
}

/// Rewrites serde's messages into plain words, with a "did you mean" for typos.
fn friendly(msg: &str) -> String {
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        if let Some(end) = rest.find('`') {
            let field = &rest[..end];
            let expected: Vec<&str> = rest[end + 1..]
                .split('`')
                .enumerate()
                .filter(|(i, _)| i % 2 == 1)
                .map(|(_, s)| s)
                .collect();
            let suggestion = expected
                .iter()
                .map(|c| (edit_distance(field, c), *c))
                .filter(|(d, c)| *d <= 2.max(c.len() / 3))
                .min();
            return match suggestion {
                Some((_, c)) => format!("unknown field `{field}` (did you mean `{c}`?)"),
                None => format!(
                    "unknown field `{field}`; allowed fields: {}",
                    expected.join(", ")
                ),
            };
        }
    }
    if let Some(rest) = msg.strip_prefix("unknown variant `") {
        return format!("unknown value `{rest}");
    }
    msg.to_string()
}

/// Levenshtein distance, for "did you mean" suggestions.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems_of(json: &str) -> (Option<ParsedManifest>, Vec<Problem>) {
        let mut p = Vec::new();
        let m = parse(json.as_bytes(), &mut p);
        (m, p)
    }

    #[test]
    fn reports_every_structural_problem_at_once() {
        let (m, p) = problems_of(
            r#"{"campaign":"c1","vendor":"evolink","jobs":[
                {"image":"https://x/a.png","video":"https://x/v.mp4","promt":"hi"},
                {"image":"https://x/a.png","video":"https://x/v.mp4","tier":"ultra","keep_sound":"yes"},
                {"image":"https://x/a.png"},
                42
            ]}"#,
        );
        let by_ptr: Vec<(&str, &str)> = p
            .iter()
            .map(|p| (p.pointer.as_str(), p.message.as_str()))
            .collect();
        assert!(
            by_ptr.contains(&(
                "/jobs/0/promt",
                "unknown field `promt` (did you mean `prompt`?)"
            )),
            "{by_ptr:?}"
        );
        assert!(by_ptr
            .iter()
            .any(|(ptr, m)| *ptr == "/jobs/1/tier" && m.contains("ultra")));
        assert!(by_ptr
            .iter()
            .any(|(ptr, m)| *ptr == "/jobs/1/keep_sound" && m.contains("expected a boolean")));
        assert!(by_ptr
            .iter()
            .any(|(ptr, m)| *ptr == "/jobs/2" && m.contains("missing field `video`")));
        assert!(by_ptr
            .iter()
            .any(|(ptr, m)| *ptr == "/jobs/3" && m.contains("must be an object")));
        let m = m.expect("campaign fields are fine");
        assert_eq!(m.manifest.jobs.len(), 0, "every job had a problem");
        assert_eq!(m.jobs_in_file, 4);
    }

    #[test]
    fn json_syntax_error_has_line_and_column() {
        let (m, p) = problems_of("{\n  \"campaign\": \"c\",\n  \"jobs\": [,]\n}");
        assert!(m.is_none());
        assert_eq!(p.len(), 1);
        assert!(p[0].message.contains("line 3, column"), "{}", p[0].message);
    }

    #[test]
    fn non_utf8_is_reported_with_position() {
        let mut bytes = b"{\"campaign\": \"c\xff\"}".to_vec();
        bytes.push(b'\n');
        let mut p = Vec::new();
        assert!(parse(&bytes, &mut p).is_none());
        assert!(p[0].message.contains("not valid UTF-8"), "{}", p[0].message);
        assert!(p[0].message.contains("column 16"), "{}", p[0].message);
    }

    #[test]
    fn wrong_top_level_shapes() {
        let (_, p) = problems_of("[]");
        assert!(p[0].message.contains("must be a JSON object"));
        let (_, p) = problems_of(r#"{"campaign":"c","jobs":{}}"#);
        assert_eq!(p[0].pointer, "/jobs");
        let (_, p) = problems_of(r#"{"campaign":5,"jobs":[],"budget_usd":"x"}"#);
        let ptrs: Vec<_> = p.iter().map(|p| p.pointer.as_str()).collect();
        assert!(
            ptrs.contains(&"/campaign") && ptrs.contains(&"/budget_usd"),
            "{ptrs:?}"
        );
    }

    #[test]
    fn pointer_tokens_are_escaped() {
        assert_eq!(pointer_token("a/b~c"), "a~1b~0c");
    }

    #[test]
    fn edit_distance_basics() {
        assert_eq!(edit_distance("promt", "prompt"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("tier", "tier"), 0);
    }
}
