//! docker-compose.yml, Dockerfile and .dockerignore, checked without a Docker engine: the
//! services and how they are built, ports, volumes and mounted files, that every `MOTIONQ__*`
//! variable is a real config field (loaded through `motionq_config`, which rejects unknown
//! keys), that the demo API keys match the simulator's, and that Prometheus scrapes what the
//! services expose.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

use common::*;
use motionq_config::Config;
use motionq_core::Vendor;
use secrecy::ExposeSecret;
use serde_yaml_ng::Value;

fn compose() -> Value {
    let text = std::fs::read_to_string(repo_root().join("docker-compose.yml")).unwrap();
    let mut v: Value = serde_yaml_ng::from_str(&text).expect("docker-compose.yml is YAML");
    // `<<: *anchor` merges, as Compose applies them.
    v.apply_merge().expect("YAML merge keys");
    v
}

fn service<'a>(c: &'a Value, name: &str) -> &'a Value {
    let s = &c["services"][name];
    assert!(s.is_mapping(), "service `{name}` missing");
    s
}

fn env_of(s: &Value) -> BTreeMap<String, String> {
    s["environment"]
        .as_mapping()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        other => panic!("env value {other:?}"),
                    };
                    (k.as_str().unwrap().to_string(), v)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn strs(v: &Value) -> Vec<String> {
    v.as_sequence()
        .map(|s| s.iter().map(|x| x.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

const MOTIONQ_SERVICES: [&str; 3] = ["sim", "worker", "serve"];

#[test]
fn services_images_and_builds() {
    let c = compose();
    let names: BTreeSet<String> = c["services"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    let want: BTreeSet<String> = [
        "redis",
        "minio",
        "minio-init",
        "sim",
        "worker",
        "serve",
        "prometheus",
        "grafana",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(names, want);

    for (name, s) in c["services"].as_mapping().unwrap() {
        let name = name.as_str().unwrap();
        let image = s["image"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: image"));
        if MOTIONQ_SERVICES.contains(&name) {
            assert_eq!(image, "motionq:local", "{name}");
            assert_eq!(s["build"]["context"], ".", "{name}");
            assert_eq!(s["build"]["dockerfile"], "Dockerfile", "{name}");
        } else {
            // Third-party images are pinned to a version, never `latest`.
            let (_, tag) = image
                .rsplit_once(':')
                .unwrap_or_else(|| panic!("{name}: tag"));
            assert!(!tag.is_empty() && tag != "latest", "{name}: pinned tag");
        }
        for dep in s["depends_on"]
            .as_mapping()
            .map(|m| m.keys().map(|k| k.as_str().unwrap().to_string()).collect())
            .unwrap_or_else(|| strs(&s["depends_on"]))
        {
            assert!(want.contains(&dep), "{name} depends on unknown `{dep}`");
        }
    }
    // Prometheus is the version the tests validate the rules with (Debian's 2.42).
    assert_eq!(
        service(&c, "prometheus")["image"],
        "prom/prometheus:v2.42.0"
    );
    // Commands.
    assert_eq!(strs(&service(&c, "worker")["command"]), ["worker"]);
    assert_eq!(strs(&service(&c, "serve")["command"]), ["serve"]);
    let sim_cmd = strs(&service(&c, "sim")["command"]).join(" ");
    assert!(
        sim_cmd.contains("exec motionq sim --listen 0.0.0.0:8089 --config /tmp/sim.toml --admin"),
        "{sim_cmd}"
    );
    let init = strs(&service(&c, "minio-init")["command"]).join(" ");
    assert!(
        init.contains("mc mb --ignore-existing local/motionq"),
        "{init}"
    );
    assert_eq!(
        service(&c, "worker")["depends_on"]["minio-init"]["condition"],
        "service_completed_successfully"
    );
    let redis_cmd = strs(&service(&c, "redis")["command"]);
    assert_eq!(
        redis_cmd,
        ["redis-server", "/usr/local/etc/redis/redis.conf"]
    );
}

#[test]
fn ports_are_unique_and_workers_scale() {
    let c = compose();
    let mut host_ports = BTreeSet::new();
    for (name, s) in c["services"].as_mapping().unwrap() {
        let name = name.as_str().unwrap();
        for p in strs(&s["ports"]) {
            // ip:host:container, loopback only (the stack is for one machine).
            let parts: Vec<&str> = p.split(':').collect();
            assert_eq!(parts.len(), 3, "{name}: port `{p}`");
            assert_eq!(parts[0], "127.0.0.1", "{name}: port `{p}`");
            let host: u16 = parts[1].parse().unwrap();
            let _: u16 = parts[2].parse().unwrap();
            assert!(
                host_ports.insert(host),
                "{name}: host port {host} used twice"
            );
        }
    }
    let w = service(&c, "worker");
    assert!(w["ports"].is_null(), "worker: a host port breaks --scale");
    assert!(
        w["container_name"].is_null(),
        "worker: container_name breaks --scale"
    );
    assert_eq!(strs(&w["expose"]), ["9464"]);
    assert!(strs(&service(&c, "serve")["ports"]).contains(&"127.0.0.1:8088:8088".into()));
    assert!(strs(&service(&c, "sim")["ports"]).contains(&"127.0.0.1:8089:8089".into()));
}

#[test]
fn volumes_mount_files_that_exist() {
    let c = compose();
    let root = repo_root();
    let declared: BTreeSet<String> = c["volumes"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    let mut used = BTreeSet::new();
    let mut mounts = BTreeMap::new();
    for (name, s) in c["services"].as_mapping().unwrap() {
        let name = name.as_str().unwrap();
        for v in strs(&s["volumes"]) {
            let parts: Vec<&str> = v.split(':').collect();
            assert!(parts.len() >= 2, "{name}: volume `{v}`");
            if let Some(rel) = parts[0].strip_prefix("./") {
                let p: PathBuf = root.join(rel);
                assert!(
                    p.exists(),
                    "{name}: mounts {} which does not exist",
                    p.display()
                );
                assert_eq!(
                    parts.get(2),
                    Some(&"ro"),
                    "{name}: config mounts are read-only"
                );
                mounts.insert((name.to_string(), parts[1].to_string()), rel.to_string());
            } else {
                assert!(
                    declared.contains(parts[0]),
                    "{name}: undeclared volume {}",
                    parts[0]
                );
                used.insert(parts[0].to_string());
            }
        }
    }
    assert_eq!(used, declared, "declared volumes all used");

    // Redis persists with AOF, from the mounted config.
    let redis_conf = std::fs::read_to_string(root.join("config/redis.conf")).unwrap();
    assert!(redis_conf.lines().any(|l| l.trim() == "appendonly yes"));
    assert!(redis_conf.lines().any(|l| l.trim() == "dir /data"));
    assert!(strs(&service(&c, "redis")["volumes"]).contains(&"redis-data:/data".into()));

    // Grafana gets the provisioning and dashboard directories the provisioning files name.
    let g = |target: &str| {
        mounts
            .get(&("grafana".to_string(), target.to_string()))
            .cloned()
    };
    assert_eq!(
        g("/etc/grafana/provisioning").as_deref(),
        Some("config/grafana/provisioning")
    );
    assert_eq!(
        g("/var/lib/grafana/dashboards").as_deref(),
        Some("config/grafana/dashboards")
    );
    let home = env_of(service(&c, "grafana"))["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"].clone();
    let home_rel = home.replace("/var/lib/grafana/dashboards", "config/grafana/dashboards");
    assert!(root.join(home_rel).is_file(), "home dashboard {home}");
    // Prometheus gets its config directory (the rule file is relative to it).
    assert_eq!(
        mounts
            .get(&("prometheus".to_string(), "/etc/prometheus".to_string()))
            .map(String::as_str),
        Some("config/prometheus")
    );
    let prom_cmd = strs(&service(&c, "prometheus")["command"]);
    assert!(prom_cmd.contains(&"--config.file=/etc/prometheus/prometheus.yml".into()));
}

#[test]
fn motionq_env_names_are_real_config_fields() {
    let c = compose();
    let root = repo_root();
    for name in ["worker", "serve"] {
        let env = env_of(service(&c, name));
        // The config file the container reads exists in the mounted directory.
        let cfg_path = env["MOTIONQ_CONFIG"]
            .strip_prefix("/etc/motionq/")
            .map(|p| root.join("config").join(p))
            .expect("MOTIONQ_CONFIG under /etc/motionq");
        assert!(cfg_path.is_file(), "{}", cfg_path.display());

        let motionq: Vec<(String, String)> = env
            .iter()
            .filter(|(k, _)| k.starts_with("MOTIONQ__"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert!(motionq.len() >= 10, "{name}: MOTIONQ__ variables");
        // One at a time over the mounted file (cross-field checks such as the callback base
        // against `validation.allow_private_callbacks` need it), so an error names the
        // variable; then all together.
        for (k, v) in &motionq {
            if let Err(e) =
                Config::load_with_env(std::slice::from_ref(&cfg_path), [(k.clone(), v.clone())])
            {
                panic!("{name}: {k}={v} is not a valid config override: {e}");
            }
        }
        let cfg = Config::load_with_env(&[cfg_path], motionq.clone()).expect("full config");
        assert_eq!(cfg.redis.url, "redis://redis:6379/");
        assert_eq!(cfg.storage.url, "s3://motionq/outputs");
        assert_eq!(cfg.storage.options["endpoint"], "http://minio:9000");
        assert_eq!(env["AWS_ALLOW_HTTP"], "true", "MinIO is plain HTTP");
        assert_eq!(cfg.metrics.listen, "0.0.0.0:9464");
        assert_eq!(cfg.webhooks.listen, "0.0.0.0:8088");
        for v in Vendor::ALL {
            assert_eq!(
                cfg.vendors[&v].base_url,
                format!("http://sim:8089/{}", v.as_str()),
                "{name}: {v:?} base_url"
            );
        }

        // Every key of the config has its env var set, to the simulator's key of that alias.
        let sim = motionq_sim::SimConfig::from_toml_file(root.join("config/sim.toml")).unwrap();
        for v in Vendor::ALL {
            let keys = &cfg.vendors[&v].keys;
            assert!(
                !keys.is_empty(),
                "{name}: {v:?} has no keys in the demo config"
            );
            for k in keys {
                let value = env
                    .get(&k.api_key_env)
                    .unwrap_or_else(|| panic!("{name}: {} not set", k.api_key_env));
                let sim_vendor = motionq_sim::Vendor::ALL
                    .into_iter()
                    .find(|sv| sv.as_str() == v.as_str())
                    .expect("the simulator serves every vendor");
                let sim_key = sim
                    .vendor(sim_vendor)
                    .keys
                    .iter()
                    .find(|s| s.alias.as_deref() == Some(k.alias.as_str()))
                    .unwrap_or_else(|| panic!("simulator has no key alias {}", k.alias));
                assert_eq!(
                    sim_key.key.expose_secret(),
                    value,
                    "{name}: {} must be the simulator's key `{}`",
                    k.api_key_env,
                    k.alias
                );
            }
        }
        // S3 credentials for object_store, equal to MinIO's root user.
        let minio = env_of(service(&c, "minio"));
        assert_eq!(env["AWS_ACCESS_KEY_ID"], minio["MINIO_ROOT_USER"]);
        assert_eq!(env["AWS_SECRET_ACCESS_KEY"], minio["MINIO_ROOT_PASSWORD"]);
    }

    // The check has teeth: a misspelt field is rejected by the config loader.
    assert!(Config::load_with_env(
        &[],
        [("MOTIONQ__STORAGE__ENDPIONT".to_string(), "x".to_string())]
    )
    .is_err());
}

#[test]
fn sim_output_links_name_the_sim_service() {
    // Run the sim service's own `sed` on config/sim.toml and load the result: the copy must
    // be a valid simulator config whose links point at http://sim:8089.
    let c = compose();
    let cmd = strs(&service(&c, "sim")["command"]).join(" ");
    let sed = cmd.split("&&").next().unwrap().trim();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sim.toml");
    let local = sed
        .replace(
            "/etc/motionq/",
            &format!("{}/", repo_root().join("config").display()),
        )
        .replace("/tmp/sim.toml", out.to_str().unwrap());
    let (code, text) = run(Command::new("/bin/sh").args(["-c", &local]));
    assert_eq!(code, 0, "{local}: {text}");
    let cfg = motionq_sim::SimConfig::from_toml_file(&out).expect("patched sim.toml loads");
    assert_eq!(cfg.public_base_url.as_deref(), Some("http://sim:8089"));
    assert!(cfg.admin_enabled);
}

#[test]
fn prometheus_scrapes_what_the_services_expose() {
    let c = compose();
    let prom: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(repo_root().join("config/prometheus/prometheus.yml")).unwrap(),
    )
    .unwrap();
    let jobs = prom["scrape_configs"].as_sequence().unwrap();
    let job = |n: &str| {
        jobs.iter()
            .find(|j| j["job_name"] == n)
            .unwrap_or_else(|| panic!("scrape job {n}"))
    };
    let w = &job("motionq-worker")["dns_sd_configs"][0];
    assert_eq!(strs(&w["names"]), ["worker"]);
    let metrics_port = env_of(service(&c, "worker"))["MOTIONQ__METRICS__LISTEN"]
        .rsplit_once(':')
        .unwrap()
        .1
        .parse::<u64>()
        .unwrap();
    assert_eq!(w["port"].as_u64(), Some(metrics_port));
    assert_eq!(
        strs(&job("motionq-serve")["static_configs"][0]["targets"]),
        ["serve:8088"]
    );
    assert_eq!(
        strs(&job("motionq-sim")["static_configs"][0]["targets"]),
        ["sim:8089"]
    );
    // The job names are the ones the alert rules select on.
    let alerts = std::fs::read_to_string(repo_root().join("config/prometheus/alerts.yml")).unwrap();
    assert!(alerts.contains("up{job=\"motionq-worker\"}"));
    assert!(alerts.contains("up{job=\"motionq-serve\"}"));
}

#[test]
fn dockerfile_stages_binary_and_user() {
    let root = repo_root();
    let df = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    let froms: Vec<&str> = df.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(froms.len(), 2, "{froms:?}");
    assert!(froms[0].starts_with("FROM rust:") && froms[0].ends_with(" AS builder"));
    assert_eq!(froms[1], "FROM debian:bookworm-slim AS runtime");

    // The binary the image runs is the `motionq` package's binary.
    let pkg: toml::Table = std::fs::read_to_string(root.join("crates/motionq/Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(pkg["package"]["name"].as_str(), Some("motionq"));
    if let Some(bins) = pkg.get("bin").and_then(|b| b.as_array()) {
        assert!(bins.iter().any(|b| b["name"].as_str() == Some("motionq")));
    }
    assert!(df.contains("cargo build --release --locked -p motionq --bin motionq"));
    assert!(df.contains("install -m 0755 target/release/motionq /usr/local/bin/motionq"));
    assert!(df.contains("COPY --from=builder /usr/local/bin/motionq /usr/local/bin/motionq"));
    assert!(df.contains("ENTRYPOINT [\"/usr/local/bin/motionq\"]"));
    assert!(df.contains("ca-certificates"));
    // Runs as a non-root user, set after everything that needs root.
    let user_line = df
        .lines()
        .position(|l| l.starts_with("USER "))
        .expect("USER");
    let user = df
        .lines()
        .nth(user_line)
        .unwrap()
        .trim_start_matches("USER ")
        .trim();
    assert!(user != "root" && user != "0", "runtime user {user}");
    let all: Vec<&str> = df.lines().collect();
    let last_run = all.iter().rposition(|l| l.starts_with("RUN ")).unwrap();
    assert!(user_line > last_run, "USER comes after the last RUN");
    // Everything the image copies is in the build context.
    for l in df
        .lines()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
    {
        let src = l.split_whitespace().nth(1).unwrap();
        if src != "." {
            assert!(root.join(src).exists(), "COPY {src}");
        }
    }
    // The compose stack's entrypoint override matches the image (sim runs a shell).
    let c = compose();
    assert_eq!(strs(&service(&c, "sim")["entrypoint"]), ["/bin/sh", "-c"]);

    let ignore = std::fs::read_to_string(root.join(".dockerignore")).unwrap();
    let lines: BTreeSet<&str> = ignore.lines().map(str::trim).collect();
    for must in ["target", ".git", ".motionq"] {
        assert!(lines.contains(must), ".dockerignore lacks {must}");
    }
    // Sources the build needs are not ignored.
    for keep in [
        "crates",
        "config",
        "manifests",
        "Cargo.lock",
        "Cargo.toml",
        "tests",
    ] {
        assert!(!lines.contains(keep), ".dockerignore must not drop {keep}");
    }
}
