//! Starting and stopping: shutdown closes the port and ends in-flight work; the CLI arguments
//! parse as `motionq sim` will pass them.

use clap::Parser;
use motionq_sim::{SimArgs, SimConfig, SimServer};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    sim: SimArgs,
}

#[test]
fn cli_arguments() {
    let cli = Cli::try_parse_from(["motionq-sim"]).unwrap();
    assert_eq!(cli.sim.listen.to_string(), "127.0.0.1:8089");
    assert!(cli.sim.config.is_none() && !cli.sim.admin);
    let cli = Cli::try_parse_from([
        "motionq-sim",
        "--listen",
        "127.0.0.1:0",
        "--config",
        "config/sim.toml",
        "--admin",
    ])
    .unwrap();
    assert_eq!(cli.sim.listen.port(), 0);
    assert!(cli.sim.admin);
    assert!(Cli::try_parse_from(["motionq-sim", "--listen", "nowhere"]).is_err());
}

#[tokio::test]
async fn shutdown_closes_the_port() {
    let sim = SimServer::start(SimConfig::default()).await.unwrap();
    let url = format!("{}/healthz", sim.base_url());
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    assert_eq!(client.get(&url).send().await.unwrap().status(), 200);
    sim.shutdown().await;
    // A fresh connection is refused once the listener is gone.
    let fresh = reqwest::Client::builder().no_proxy().build().unwrap();
    assert!(fresh.get(&url).send().await.is_err());
}

#[tokio::test]
async fn binding_a_used_port_is_an_error_naming_the_address() {
    let sim = SimServer::start(SimConfig::default()).await.unwrap();
    let err = SimServer::start_on(sim.local_addr(), SimConfig::default())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(&sim.local_addr().to_string()),
        "{err}"
    );
}
