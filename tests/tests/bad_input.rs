//! Suite 6, bad input:
//!
//! * proptest: the manifest parser and validator (`motionq_core::manifest::parse`,
//!   `motionq_core::validate::validate_bytes`) never panic on arbitrary bytes, on arbitrary
//!   JSON, or on mutations of a valid manifest, and every problem they report carries a JSON
//!   pointer that is empty or starts with `/`;
//! * a corpus of broken manifests (`tests/fixtures/broken/*.json`), each answered by the real
//!   `motionq validate --json` with exit code 2 and the expected pointer and message; a file
//!   added to the corpus without an expectation fails the suite;
//! * the vendor response parsers are fuzzed in `crates/motionq-vendors/tests/robustness.rs`
//!   (proptest) and webhook bodies (garbage, huge, wrong signature) in
//!   `crates/motionq-webhooks/tests/{intake,robustness}.rs`: the binary has no webhook
//!   subcommand to drive from here.

use std::path::Path;
use std::process::Command;

use motionq_core::ValidateOptions;
use proptest::prelude::*;

/// file → (pointer, a fragment of the message) that `motionq validate` must report.
const EXPECTED: &[(&str, &str, &str)] = &[
    (
        "bad-campaign-id.json",
        "/campaign",
        "must be 1-64 characters",
    ),
    ("bad-image-scheme.json", "/jobs/0/image", "http(s) URL"),
    ("bad-tier.json", "/jobs/0/tier", "expected `std` or `pro`"),
    (
        "cfg-scale-out-of-range.json",
        "/jobs/0/cfg_scale",
        "between 0 and 1",
    ),
    (
        "duplicate-job-id.json",
        "/jobs/1/id",
        "duplicate job id `a`",
    ),
    (
        "duration-wrong-type.json",
        "/jobs/0/video_duration_s",
        "invalid type",
    ),
    ("empty.json", "", "invalid JSON"),
    (
        "keep-sound-unsupported.json",
        "/jobs/0/keep_sound",
        "Freepik cannot keep",
    ),
    (
        "loopback-callback.json",
        "/callback_base_url",
        "private or loopback",
    ),
    (
        "private-callback.json",
        "/callback_base_url",
        "private or loopback",
    ),
    ("missing-campaign.json", "", "missing field `campaign`"),
    ("negative-budget.json", "/budget_usd", "positive number"),
    ("no-jobs.json", "/jobs", "no jobs"),
    ("not-an-object.json", "", "must be a JSON object"),
    (
        "prompt-too-long.json",
        "/jobs/0/prompt",
        "the limit is 2500",
    ),
    ("truncated-json.json", "", "invalid JSON"),
    ("unknown-vendor.json", "/vendor", "unknown value `klingon`"),
];

#[test]
fn every_broken_manifest_gets_its_error_from_motionq_validate() {
    let bin = tests::motionq_bin();
    let dir = Path::new(tests::ROOT).join("tests/fixtures/broken");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    files.sort();
    let mut checked = 0;
    // Run from an empty dir so no config/default.toml relaxes validation.
    let cwd = tempfile::tempdir().unwrap();
    for f in &files {
        let (_, pointer, fragment) = EXPECTED
            .iter()
            .find(|(name, _, _)| name == f)
            .unwrap_or_else(|| panic!("{f}: add its expected pointer and message to EXPECTED"));
        let o = Command::new(&bin)
            .current_dir(cwd.path())
            .env_remove("MOTIONQ_CONFIG")
            .args(["validate", dir.join(f).to_str().unwrap(), "--json"])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{f}: exit code (invalid input)");
        let v: serde_json::Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("{f}: --json output is JSON ({e}): {o:?}"));
        assert_eq!(v["valid"], false, "{f}");
        let hit = v["problems"].as_array().unwrap().iter().any(|p| {
            p["severity"] == "error"
                && p["pointer"] == *pointer
                && p["message"].as_str().unwrap().contains(fragment)
        });
        assert!(
            hit,
            "{f}: expected error at `{pointer}` containing `{fragment}`, got {}",
            v["problems"]
        );
        checked += 1;
    }
    println!("bad input: {checked} broken manifests, each refused (exit 2) with the expected pointer and message");
    assert_eq!(checked, EXPECTED.len(), "every expectation has its file");
}

fn opts() -> ValidateOptions {
    ValidateOptions {
        allow_private_callbacks: false,
        allow_private_media: false,
    }
}

fn check(bytes: &[u8]) {
    let mut problems = Vec::new();
    let _ = motionq_core::manifest::parse(bytes, &mut problems);
    let v = motionq_core::validate::validate_bytes(bytes, &opts());
    for p in problems.iter().chain(v.problems.iter()) {
        assert!(
            p.pointer.is_empty() || p.pointer.starts_with('/'),
            "pointer {:?} is not a JSON pointer",
            p.pointer
        );
        assert!(!p.message.is_empty());
    }
    if v.is_valid() {
        assert!(v.campaign.is_some(), "a valid manifest yields a campaign");
    }
}

const VALID: &str = r#"{"campaign":"c","vendors":["kkiai","freepik"],"budget_usd":10,"defaults":{"tier":"std","orientation":"video"},"jobs":[{"id":"a","image":"https://cdn.example.com/a.png","video":"https://cdn.example.com/v.mp4","video_duration_s":8,"prompt":"p"},{"id":"b","vendor":"kkiai","image":"https://cdn.example.com/b.jpg","video":"https://cdn.example.com/w.mov","tier":"pro"}]}"#;

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| serde_json::json!(f)),
        any::<i64>().prop_map(|i| serde_json::json!(i)),
        "\\PC{0,30}".prop_map(serde_json::Value::String),
        prop_oneof![
            Just("campaign"),
            Just("jobs"),
            Just("vendor"),
            Just("kkiai"),
            Just("https://x.example/a.png"),
            Just("std"),
            Just("pro"),
            Just("video"),
            Just("image"),
            Just("http://127.0.0.1/"),
        ]
        .prop_map(|s| serde_json::Value::String(s.into())),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("campaign".to_string()),
                    Just("jobs".to_string()),
                    Just("id".to_string()),
                    Just("image".to_string()),
                    Just("video".to_string()),
                    Just("vendor".to_string()),
                    Just("vendors".to_string()),
                    Just("tier".to_string()),
                    Just("budget_usd".to_string()),
                    Just("defaults".to_string()),
                    Just("video_duration_s".to_string()),
                    Just("callback_base_url".to_string()),
                    Just("cfg_scale".to_string()),
                    "[a-z_]{1,10}",
                ],
                inner,
                0..8
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if tests::long_mode() { 20_000 } else { 600 }))]

    #[test]
    fn parser_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check(&bytes);
    }

    #[test]
    fn parser_never_panics_on_json(v in json_value()) {
        check(v.to_string().as_bytes());
    }

    #[test]
    fn parser_never_panics_on_mutated_manifests(
        cuts in prop::collection::vec((0usize..VALID.len(), 0usize..8, any::<u8>()), 1..6)
    ) {
        let mut b = VALID.as_bytes().to_vec();
        for (at, len, byte) in cuts {
            let at = at.min(b.len());
            let end = (at + len).min(b.len());
            b.splice(at..end, [byte]);
        }
        check(&b);
    }
}

#[test]
fn the_unmutated_seed_is_valid() {
    // Keeps the mutation test meaningful: it starts from a manifest that passes.
    let v = motionq_core::validate::validate_bytes(VALID.as_bytes(), &opts());
    assert!(v.is_valid(), "{:?}", v.problems);
}
