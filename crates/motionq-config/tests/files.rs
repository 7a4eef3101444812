//! Every file in `config/` parses, and `config/default.toml` equals the built-in defaults.

use std::path::PathBuf;

use motionq_config::Config;

fn config_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config")
}

#[test]
fn default_toml_equals_built_in_defaults() {
    let from_file =
        Config::load_with_env(&[config_dir().join("default.toml")], Vec::new()).unwrap();
    let built_in = Config::load_with_env(&[], Vec::new()).unwrap();
    assert_eq!(
        serde_json::to_value(&from_file).unwrap(),
        serde_json::to_value(&built_in).unwrap(),
        "config/default.toml and Config::default() disagree"
    );
}

#[test]
fn every_motionq_config_file_parses() {
    let mut n = 0;
    for entry in std::fs::read_dir(config_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        // sim.toml is the simulator's own config; redis.conf is Redis's.
        if path.extension().and_then(|e| e.to_str()) == Some("toml") && name != "sim.toml" {
            Config::load_with_env(std::slice::from_ref(&path), Vec::new())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            n += 1;
        }
    }
    assert!(n >= 1);
}
