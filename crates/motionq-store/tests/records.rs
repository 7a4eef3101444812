//! Enqueue and transitions against a real, private redis-server.

use motionq_config::{RedisConfig, RedisMode};
use motionq_core::validate::{validate_bytes, CampaignSpec, ValidateOptions, ValidatedJob};
use motionq_core::JobState;
use motionq_store::{EnqueueMode, EnqueueRequest, RedisConn, Store, StoreError, Transition};
use motionq_testkit::{RedisCluster, RedisServer};

fn manifest(n: usize, prompt: &str) -> String {
    let jobs: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"id":"job-{i}","image":"https://cdn.example.com/{i}.png","video":"https://cdn.example.com/v.mp4","video_duration_s":8,"prompt":"{prompt}"}}"#
            )
        })
        .collect();
    format!(
        r#"{{"campaign":"camp-a","vendor":"evolink","budget_usd":1000,"jobs":[{}]}}"#,
        jobs.join(",")
    )
}

fn validated(json: &str) -> (CampaignSpec, Vec<ValidatedJob>) {
    let v = validate_bytes(json.as_bytes(), &ValidateOptions::default());
    assert!(v.is_valid(), "{:?}", v.problems);
    v.campaign.unwrap()
}

async fn enqueue(
    store: &Store,
    json: &str,
    mode: EnqueueMode,
) -> Result<motionq_store::EnqueueSummary, StoreError> {
    let (c, jobs) = validated(json);
    let costs = vec![Some(0.96); jobs.len()];
    store
        .enqueue(EnqueueRequest {
            campaign: &c,
            jobs: &jobs,
            job_costs: &costs,
            manifest_sha256: "abc",
            expected_usd: Some(0.96 * jobs.len() as f64),
            worst_case_usd: Some(0.96 * jobs.len() as f64),
            mode,
            chunk: 7,
        })
        .await
}

async fn store_for(url: String) -> Store {
    let conn = RedisConn::connect(&RedisConfig {
        url,
        ..Default::default()
    })
    .await
    .unwrap();
    Store::new(conn, "mq")
}

#[tokio::test]
async fn enqueue_is_idempotent_and_durable() {
    let mut redis = RedisServer::start().await.unwrap();
    let store = store_for(redis.url()).await;
    let s = enqueue(&store, &manifest(50, "dance"), EnqueueMode::Strict)
        .await
        .unwrap();
    assert_eq!((s.jobs_total, s.jobs_new, s.jobs_existing), (50, 50, 0));
    assert_eq!(s.state, "active");
    let s = enqueue(&store, &manifest(50, "dance"), EnqueueMode::Strict)
        .await
        .unwrap();
    assert_eq!((s.jobs_total, s.jobs_new, s.jobs_existing), (50, 0, 50));
    // A larger manifest adds only the new jobs.
    let s = enqueue(&store, &manifest(60, "dance"), EnqueueMode::Strict)
        .await
        .unwrap();
    assert_eq!((s.jobs_total, s.jobs_new), (60, 10));

    // Durable: SIGKILL and restart from the AOF.
    redis.kill();
    redis.restart().await.unwrap();
    let store = store_for(redis.url()).await;
    let c = store.campaign("camp-a").await.unwrap();
    assert_eq!(c.jobs_total, 60);
    assert_eq!(c.counts.get("queued"), Some(&60));
    let j = store.job("camp-a", "job-59").await.unwrap().unwrap();
    assert_eq!(j.state, JobState::Queued);
    assert_eq!(j.spec.prompt.as_deref(), Some("dance"));
    assert_eq!(
        store.campaign_ids().await.unwrap(),
        vec!["camp-a".to_string()]
    );
    let page = store.jobs_page("camp-a", 0, 5).await.unwrap();
    assert_eq!(
        page.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(),
        ["job-0", "job-1", "job-2", "job-3", "job-4"]
    );
}

#[tokio::test]
async fn changed_content_is_a_conflict_that_writes_nothing_unless_replaced() {
    let redis = RedisServer::start().await.unwrap();
    let store = store_for(redis.url()).await;
    enqueue(&store, &manifest(20, "dance"), EnqueueMode::Strict)
        .await
        .unwrap();
    let mut conn = store.conn();
    let before: u64 = redis::cmd("DBSIZE").query_async(&mut conn).await.unwrap();
    let events_before: u64 = redis::cmd("XLEN")
        .arg(store.keys().events("camp-a"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let err = enqueue(&store, &manifest(25, "jump"), EnqueueMode::Strict)
        .await
        .unwrap_err();
    match &err {
        StoreError::Conflict(c) => assert_eq!(c.len(), 20),
        other => panic!("expected a conflict, got {other}"),
    }
    assert!(err.to_string().contains("job-0"), "{err}");
    let after: u64 = redis::cmd("DBSIZE").query_async(&mut conn).await.unwrap();
    let events_after: u64 = redis::cmd("XLEN")
        .arg(store.keys().events("camp-a"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        (before, events_before),
        (after, events_after),
        "nothing written"
    );
    assert_eq!(store.job("camp-a", "job-21").await.unwrap(), None);

    // Replace: queued jobs are replaced, a submitted one blocks the whole replace.
    let moved = store
        .transition(
            "camp-a",
            "job-3",
            &[JobState::Queued],
            JobState::Admitted,
            "",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(moved, Transition::Moved(JobState::Queued));
    store
        .transition(
            "camp-a",
            "job-3",
            &[JobState::Admitted],
            JobState::Submitted,
            "",
            &[("task_id", "t-1".into())],
        )
        .await
        .unwrap();
    let err = enqueue(&store, &manifest(25, "jump"), EnqueueMode::Replace)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("`job-3` (is `submitted`"), "{err}");
}

#[tokio::test]
async fn replace_updates_unsubmitted_jobs() {
    let redis = RedisServer::start().await.unwrap();
    let store = store_for(redis.url()).await;
    enqueue(&store, &manifest(5, "dance"), EnqueueMode::Strict)
        .await
        .unwrap();
    let s = enqueue(&store, &manifest(5, "jump"), EnqueueMode::Replace)
        .await
        .unwrap();
    assert_eq!((s.jobs_new, s.jobs_replaced), (0, 5));
    let j = store.job("camp-a", "job-0").await.unwrap().unwrap();
    assert_eq!(j.spec.prompt.as_deref(), Some("jump"));
    let c = store.campaign("camp-a").await.unwrap();
    assert_eq!(
        c.counts.get("queued"),
        Some(&5),
        "counts stay exact across replaces"
    );
}

#[tokio::test]
async fn campaign_settings_change_is_refused() {
    let redis = RedisServer::start().await.unwrap();
    let store = store_for(redis.url()).await;
    enqueue(&store, &manifest(3, "dance"), EnqueueMode::Strict)
        .await
        .unwrap();
    let changed = manifest(3, "dance").replace("\"budget_usd\":1000", "\"budget_usd\":5");
    let err = enqueue(&store, &changed, EnqueueMode::Strict)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("budget_usd: 1000.0 -> 5.0"), "{err}");
}

/// The submit and collect stages cache a campaign's parsed spec by `spec_rev`: every write of
/// the spec must bump it, and the state must be read fresh.
#[tokio::test]
async fn spec_revision_moves_with_every_spec_write() {
    let redis = RedisServer::start().await.unwrap();
    let store = store_for(redis.url()).await;
    assert!(matches!(
        store.campaign_state("camp-a").await,
        Err(motionq_store::StoreError::UnknownCampaign(_))
    ));
    enqueue(&store, &manifest(3, "dance"), EnqueueMode::Strict)
        .await
        .unwrap();
    let (state, rev1) = store.campaign_state("camp-a").await.unwrap();
    let (spec, rev) = store.campaign_spec("camp-a").await.unwrap();
    assert_eq!(rev, rev1);
    // `<ms>-<n>`: the time part keeps a re-created hash from reusing an old revision.
    let (ms, n) = rev1.split_once('-').expect("spec_rev is <ms>-<n>");
    assert!(ms.parse::<u64>().unwrap() > 1_700_000_000_000, "{rev1}");
    assert_eq!(n, "1");
    assert_eq!(spec.budget_usd, Some(1000.0));
    assert_eq!(state, store.campaign("camp-a").await.unwrap().state);
    // The same manifest again writes no spec: same revision.
    enqueue(&store, &manifest(3, "dance"), EnqueueMode::Strict)
        .await
        .unwrap();
    assert_eq!(store.campaign_state("camp-a").await.unwrap().1, rev1);
    // A replaced spec is a new revision, and reads back as the new spec.
    let changed = manifest(3, "dance").replace("\"budget_usd\":1000", "\"budget_usd\":5");
    enqueue(&store, &changed, EnqueueMode::Replace)
        .await
        .unwrap();
    let (_, rev2) = store.campaign_state("camp-a").await.unwrap();
    assert_ne!(rev2, rev1, "a replaced spec must change spec_rev");
    assert!(rev2.ends_with("-2"), "{rev2}");
    let (spec, rev) = store.campaign_spec("camp-a").await.unwrap();
    assert_eq!((spec.budget_usd, rev), (Some(5.0), rev2));
}

#[tokio::test]
async fn transitions_are_atomic_with_counts_and_events() {
    let redis = RedisServer::start().await.unwrap();
    let store = store_for(redis.url()).await;
    enqueue(&store, &manifest(3, "dance"), EnqueueMode::Strict)
        .await
        .unwrap();
    let t = store
        .transition(
            "camp-a",
            "job-1",
            &[JobState::Submitted],
            JobState::Stored,
            "",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(t, Transition::WrongState(JobState::Queued));
    let t = store
        .transition(
            "camp-a",
            "job-1",
            &[JobState::Queued],
            JobState::Failed,
            "bad",
            &[("error_class", "auth".into())],
        )
        .await
        .unwrap();
    assert_eq!(t, Transition::Moved(JobState::Queued));
    assert_eq!(
        store
            .transition("camp-a", "nope", &[], JobState::Failed, "", &[])
            .await
            .unwrap(),
        Transition::Missing
    );
    let c = store.campaign("camp-a").await.unwrap();
    assert_eq!(c.counts.get("queued"), Some(&2));
    assert_eq!(c.counts.get("failed"), Some(&1));
    let mut conn = store.conn();
    let queued: Vec<String> = redis::cmd("ZRANGE")
        .arg(store.keys().queued("camp-a"))
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(queued, vec!["job-0", "job-2"]);
    let events: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(store.keys().events("camp-a"))
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .unwrap();
    let last = events.ids.last().unwrap();
    assert_eq!(last.get::<String>("to").as_deref(), Some("failed"));
    assert_eq!(last.get::<String>("from").as_deref(), Some("queued"));
    // Back to queued via retry: re-indexed in the feeder's set.
    store
        .transition(
            "camp-a",
            "job-1",
            &[JobState::Failed],
            JobState::Queued,
            "retry",
            &[("error_class", String::new())],
        )
        .await
        .unwrap();
    let j = store.job("camp-a", "job-1").await.unwrap().unwrap();
    assert!(
        !j.fields.contains_key("error_class"),
        "an empty value deletes the field"
    );
    let queued: Vec<String> = redis::cmd("ZRANGE")
        .arg(store.keys().queued("camp-a"))
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(queued, vec!["job-0", "job-1", "job-2"]);
}

#[tokio::test]
async fn enqueue_works_on_redis_cluster() {
    let cluster = RedisCluster::start().await.unwrap();
    let conn = RedisConn::connect(&RedisConfig {
        mode: RedisMode::Cluster,
        nodes: cluster.urls(),
        ..Default::default()
    })
    .await
    .unwrap();
    let store = Store::new(conn, "mq");
    let s = enqueue(&store, &manifest(40, "dance"), EnqueueMode::Strict)
        .await
        .unwrap();
    assert_eq!(s.jobs_new, 40);
    let s = enqueue(&store, &manifest(40, "dance"), EnqueueMode::Strict)
        .await
        .unwrap();
    assert_eq!(s.jobs_new, 0);
    store
        .transition(
            "camp-a",
            "job-7",
            &[JobState::Queued],
            JobState::Admitted,
            "",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .campaign("camp-a")
            .await
            .unwrap()
            .counts
            .get("admitted"),
        Some(&1)
    );
}

/// An enqueue cut off by a Redis crash leaves the campaign `enqueuing` (invisible to the
/// feeder) with part of its jobs; running the same enqueue again completes it: every job
/// exactly once, the campaign `active`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_enqueue_is_completed_by_running_it_again() {
    const N: usize = 20_000;
    let mut redis = RedisServer::start().await.unwrap();
    let store = store_for(redis.url()).await;
    let json = manifest(N, "dance");
    let first = {
        let enqueue_all = enqueue(&store, &json, EnqueueMode::Strict);
        // Cut Redis off as soon as the campaign exists and is still being written.
        let cut = async {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            loop {
                if let Ok(c) = store.campaign("camp-a").await {
                    assert_eq!(c.state, "enqueuing", "caught before the last chunk: {c:?}");
                    // Some chunks written, not all: the crash lands in the middle.
                    if c.counts.get("queued").copied().unwrap_or(0) > 0 {
                        break;
                    }
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "the campaign record never appeared"
                );
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            redis.kill();
        };
        let (first, ()) = tokio::join!(
            tokio::time::timeout(std::time::Duration::from_secs(60), enqueue_all),
            cut
        );
        first.expect("the cut-off enqueue returns instead of hanging")
    };
    assert!(first.is_err(), "the cut-off enqueue reports an error");
    redis.restart().await.unwrap();

    // What survived (AOF) is a campaign still `enqueuing`, with fewer than N jobs.
    let store = store_for(redis.url()).await;
    let before = store.campaign("camp-a").await.ok();
    let written_before = before
        .as_ref()
        .map_or(0, |c| c.counts.get("queued").copied().unwrap_or(0));
    if let Some(c) = &before {
        assert_eq!(c.state, "enqueuing", "not visible to the feeder: {c:?}");
    }
    assert!(
        written_before > 0 && (written_before as usize) < N,
        "part of the jobs survived: {written_before} of {N}"
    );

    let s = enqueue(&store, &json, EnqueueMode::Strict).await.unwrap();
    println!(
        "interrupted enqueue: {written_before} of {N} jobs survived the crash; the re-run \
         added {} and found {}",
        s.jobs_new, s.jobs_existing
    );
    assert_eq!(s.state, "active");
    assert_eq!(s.jobs_total as usize, N);
    assert_eq!((s.jobs_new + s.jobs_existing) as usize, N);
    assert_eq!(s.jobs_existing as i64, written_before);
    let c = store.campaign("camp-a").await.unwrap();
    assert_eq!(c.counts.get("queued").copied().unwrap_or(0) as usize, N);
    let again = enqueue(&store, &json, EnqueueMode::Strict).await.unwrap();
    assert_eq!((again.jobs_new, again.jobs_existing as usize), (0, N));
}
