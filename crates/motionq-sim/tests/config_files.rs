//! The shipped `config/sim.toml` and the documented example parse and start a simulator.

use motionq_sim::{SimConfig, SimServer, Vendor};

fn repo_file(rel: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

#[tokio::test]
async fn shipped_sim_toml_parses_and_serves() {
    let c =
        SimConfig::from_toml_file(repo_file("config/sim.toml")).expect("config/sim.toml parses");
    assert!(c.admin_enabled && c.allow_private_callbacks);
    assert_eq!(c.time_scale, 0.01);
    for v in Vendor::ALL {
        assert_eq!(c.vendor(v).keys.len(), 2, "{v}");
    }
    assert!(c.aivideoapi.keys.iter().all(|k| k
        .alias
        .as_deref()
        .unwrap()
        .starts_with("aivideoapi")));
    let sim = SimServer::start(c).await.unwrap();
    let r = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{}/_sim/ledger", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ledger = sim.ledger();
    assert_eq!(ledger.vendor(Vendor::Evolink).unwrap().keys.len(), 2);
    sim.shutdown().await;
}

#[test]
fn config_errors_name_the_field() {
    let e = SimConfig::from_toml_str("time_scale = 0")
        .unwrap_err()
        .to_string();
    assert!(e.contains("time_scale"), "{e}");
    let e = SimConfig::from_toml_str("[evolink]\nprice = 1")
        .unwrap_err()
        .to_string();
    assert!(e.contains("price"), "{e}");
    let e = SimConfig::from_toml_str("[faults.kkiai.create]\nrate_limited = 3.0")
        .unwrap_err()
        .to_string();
    assert!(e.contains("faults.kkiai.create.rate_limited"), "{e}");
    let e =
        SimConfig::from_toml_str("[[evolink.keys]]\nkey = \"a\"\n[[evolink.keys]]\nkey = \"a\"")
            .unwrap_err()
            .to_string();
    assert!(e.contains("evolink.keys[1]"), "{e}");
    // Debug output never shows a key.
    let c = SimConfig::from_toml_str("[[evolink.keys]]\nkey = \"very-secret-key\"").unwrap();
    assert!(!format!("{c:?}").contains("very-secret-key"));
    // The default is a ready demo config.
    let d = SimConfig::default();
    assert!(Vendor::ALL.iter().all(|v| d.vendor(*v).keys.len() == 2));
}
