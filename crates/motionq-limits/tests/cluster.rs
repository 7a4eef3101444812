//! The whole limits suite once against a three-node Redis Cluster. Every script touches keys of
//! one hash tag, so none may fail with CROSSSLOT; each case uses its own key prefix, which also
//! spreads the cases over different slots and nodes.

mod suite;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_suite_on_a_three_node_cluster() -> anyhow::Result<()> {
    let env = suite::Env::cluster().await?;
    suite::gcra_hammer(&env, "c1").await?;
    suite::gcra_edges(&env, "c2").await?;
    suite::semaphore_race(&env, "c3").await?;
    suite::semaphore_leases(&env, "c4").await?;
    suite::spend_race(&env, "c5").await?;
    suite::spend_lifecycle(&env, "c6").await?;
    suite::spend_crash(&env, "c7").await?;
    suite::spend_window_rollover(&env, "c8").await?;
    suite::aimd(&env, "c9").await?;
    suite::park_and_pick(&env, "c10").await?;
    suite::key_expiry(&env, "c11").await?;
    suite::spend_stress(&env, "c12").await?;
    suite::held_window(&env, "c13").await?;
    Ok(())
}
