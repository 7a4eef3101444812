//! The shipped Prometheus and Grafana files: `promtool check config`, `promtool check rules`,
//! `promtool test rules` (config/prometheus/alerts_test.yml), the dashboard type-checked against
//! Grafana's published schema (`@grafana/schema` + `tsc --strict`), and the provisioning files
//! pointing at what the compose stack mounts.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::*;

fn promtool(args: &[&str]) -> (i32, String) {
    let bin = require_binary("promtool", PROMETHEUS_INSTALL);
    run(Command::new(bin)
        .args(args)
        .current_dir(repo_root().join("config/prometheus")))
}

#[test]
fn promtool_check_config_and_rules() {
    let (code, out) = promtool(&["check", "config", "prometheus.yml"]);
    assert_eq!(code, 0, "promtool check config:\n{out}");
    // The config pulls in the rule file; both are reported.
    assert!(out.contains("1 rule files found"), "{out}");
    let (code, out) = promtool(&["check", "rules", "alerts.yml"]);
    assert_eq!(code, 0, "promtool check rules:\n{out}");
    let rules: serde_yaml_ng::Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(repo_root().join("config/prometheus/alerts.yml")).unwrap(),
    )
    .unwrap();
    let n = rules["groups"][0]["rules"].as_sequence().unwrap().len();
    assert!(n >= 10, "{n} rules");
    assert!(out.contains(&format!("SUCCESS: {n} rules found")), "{out}");
}

#[test]
fn promtool_test_rules_exercises_every_alert() {
    let (code, out) = promtool(&["test", "rules", "alerts_test.yml"]);
    assert_eq!(code, 0, "promtool test rules:\n{out}");
    // Every alert of alerts.yml is expected to fire somewhere in the unit tests.
    let rules: serde_yaml_ng::Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(repo_root().join("config/prometheus/alerts.yml")).unwrap(),
    )
    .unwrap();
    let names: BTreeSet<String> = rules["groups"][0]["rules"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|r| r["alert"].as_str().unwrap().to_string())
        .collect();
    let tests: serde_yaml_ng::Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(repo_root().join("config/prometheus/alerts_test.yml")).unwrap(),
    )
    .unwrap();
    let mut fired = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    for t in tests["tests"].as_sequence().unwrap() {
        for a in t["alert_rule_test"].as_sequence().unwrap() {
            let name = a["alertname"].as_str().unwrap().to_string();
            if a["exp_alerts"].as_sequence().unwrap().is_empty() {
                quiet.insert(name);
            } else {
                fired.insert(name);
            }
        }
    }
    assert_eq!(fired, names, "alerts without a firing unit test");
    assert!(
        quiet.len() >= 7,
        "alerts with a not-yet/not-firing case: {quiet:?}"
    );
}

#[test]
fn every_alert_has_severity_summary_and_description() {
    let rules: serde_yaml_ng::Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(repo_root().join("config/prometheus/alerts.yml")).unwrap(),
    )
    .unwrap();
    for r in rules["groups"][0]["rules"].as_sequence().unwrap() {
        let name = r["alert"].as_str().unwrap();
        assert!(name.starts_with("Motionq"), "{name}");
        let sev = r["labels"]["severity"].as_str().unwrap_or("");
        assert!(
            matches!(sev, "warning" | "critical"),
            "{name}: severity `{sev}`"
        );
        for a in ["summary", "description"] {
            assert!(
                r["annotations"][a].as_str().is_some_and(|s| !s.is_empty()),
                "{name}: annotation {a}"
            );
        }
    }
}

#[test]
fn dashboard_type_checks_against_grafana_schema() {
    let npm = require_binary(
        "npm",
        "Node.js 18+ with npm (Debian: apt-get install -y --no-install-recommends nodejs npm)",
    );
    let dir = tempfile::tempdir().unwrap();
    // A private install per run: the check must not depend on a global node_modules.
    let (code, out) = run(Command::new(&npm)
        .args([
            "install",
            "--silent",
            "--no-audit",
            "--no-fund",
            "--prefix",
            dir.path().to_str().unwrap(),
            "typescript",
            "@grafana/schema",
        ])
        .current_dir(dir.path()));
    assert_eq!(
        code, 0,
        "npm install typescript @grafana/schema failed (needs the npm registry):\n{out}"
    );
    let json = std::fs::read_to_string(repo_root().join("config/grafana/dashboards/motionq.json"))
        .unwrap();
    // The JSON inlined as an object literal, so TypeScript's excess-property check reports any
    // key the schema does not know (an imported .json module would skip that check).
    let ts = format!(
        "import type {{ Dashboard }} from \"@grafana/schema\";\n\
         const dashboard: Dashboard = {json};\n\
         export default dashboard;\n"
    );
    std::fs::write(dir.path().join("dashboard.ts"), ts).unwrap();
    let tsc = dir.path().join("node_modules/.bin/tsc");
    let args = [
        "--noEmit",
        "--strict",
        "--target",
        "es2020",
        "--module",
        "esnext",
        "--moduleResolution",
        "bundler",
        "dashboard.ts",
    ];
    let (code, out) = run(Command::new(&tsc).args(args).current_dir(dir.path()));
    assert_eq!(
        code, 0,
        "the dashboard does not type-check as a Grafana Dashboard:\n{out}"
    );

    // The check has teeth: an unknown key and a bad enum value are each rejected.
    for (from, to, expect) in [
        ("\"graphTooltip\": 1", "\"graphTooltip\": 7", "'7'"),
        (
            "\"graphTooltip\": 1",
            "\"graphTooltip\": 1, \"bogusKey\": 1",
            "bogusKey",
        ),
    ] {
        let bad = json.replacen(from, to, 1);
        assert_ne!(bad, json, "dashboard sets graphTooltip: 1");
        std::fs::write(
            dir.path().join("dashboard.ts"),
            format!(
                "import type {{ Dashboard }} from \"@grafana/schema\";\n\
                 const dashboard: Dashboard = {bad};\nexport default dashboard;\n"
            ),
        )
        .unwrap();
        let (code, out) = run(Command::new(&tsc).args(args).current_dir(dir.path()));
        assert_ne!(code, 0, "tsc accepted a broken dashboard ({to}):\n{out}");
        assert!(out.contains(expect), "{out}");
    }
}

#[test]
fn dashboard_structure_and_provisioning_agree() {
    let root = repo_root();
    let dash: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("config/grafana/dashboards/motionq.json")).unwrap(),
    )
    .unwrap();
    let ds: serde_yaml_ng::Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(
            root.join("config/grafana/provisioning/datasources/prometheus.yml"),
        )
        .unwrap(),
    )
    .unwrap();
    let uid = ds["datasources"][0]["uid"].as_str().unwrap();
    assert_eq!(ds["datasources"][0]["type"], "prometheus");
    assert_eq!(ds["datasources"][0]["url"], "http://prometheus:9090");

    let mut ids = BTreeSet::new();
    let mut titles = Vec::new();
    for p in dash["panels"].as_array().unwrap() {
        assert!(
            ids.insert(p["id"].as_i64().unwrap()),
            "duplicate panel id {}",
            p["id"]
        );
        let title = p["title"].as_str().unwrap().to_string();
        let g = &p["gridPos"];
        assert!(
            g["x"].as_i64().unwrap() + g["w"].as_i64().unwrap() <= 24,
            "{title}: grid"
        );
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(p["datasource"]["uid"], uid, "{title}: datasource");
        let targets = p["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{title}: no targets");
        for t in targets {
            assert_eq!(t["datasource"]["uid"], uid, "{title}: target datasource");
        }
        titles.push(title);
    }
    // The panels the issue asks for.
    for want in [
        "Campaign progress",
        "ETA",
        "Throughput",
        "Vendor errors by class",
        "429 / 503",
        "Key spend vs limit",
        "Campaign spend vs budget",
        "In flight vs concurrency limit",
        "Queue depth per stage",
        "Generation time p50 / p95",
        "Collector lag",
        "Expiry headroom",
    ] {
        assert!(
            titles.iter().any(|t| t.contains(want)),
            "no panel `{want}` in {titles:?}"
        );
    }

    let prov: serde_yaml_ng::Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(root.join("config/grafana/provisioning/dashboards/motionq.yml"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        prov["providers"][0]["options"]["path"],
        "/var/lib/grafana/dashboards"
    );
}
