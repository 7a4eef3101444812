//! The checked-in schema is current, and every example manifest in `manifests/` is valid.

use std::path::PathBuf;

fn manifests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../manifests")
}

#[test]
fn checked_in_schema_is_current() {
    let on_disk = std::fs::read_to_string(manifests_dir().join("schema.json")).unwrap();
    assert!(
        on_disk == motionq_core::manifest::json_schema(),
        "manifests/schema.json is stale: run `cargo run -p motionq -- schema > manifests/schema.json`"
    );
}

#[test]
fn every_example_manifest_is_valid() {
    let mut n = 0;
    for e in std::fs::read_dir(manifests_dir()).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if p.extension().and_then(|x| x.to_str()) != Some("json") || name == "schema.json" {
            continue;
        }
        let bytes = std::fs::read(&p).unwrap();
        let v = motionq_core::validate::validate_bytes(&bytes, &Default::default());
        assert!(v.is_valid(), "{name}: {:?}", v.errors().collect::<Vec<_>>());
        n += 1;
    }
    assert!(n >= 3, "expected demo, a realistic and a large example");
}

#[test]
fn the_schema_rejects_unknown_fields() {
    let schema: serde_json::Value =
        serde_json::from_str(&motionq_core::manifest::json_schema()).unwrap();
    assert_eq!(
        schema["additionalProperties"],
        serde_json::Value::Bool(false)
    );
    assert!(schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r == "jobs"));
}
