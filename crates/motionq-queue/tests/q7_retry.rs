//! Q7: retry delays and attempt limits are motionq's, from config: a failing handler is retried
//! exactly per `QueueConfig::retry`, then dead-lettered with its last error; `AbortError` is not
//! retried; a `RetryAfterError` delay is honoured; dead letters can be requeued.

mod common;

use std::time::Duration;

use common::*;
use motionq_queue::{QueueConfig, StreamQueue};
use motionq_testkit::RedisServer;

fn with_attempts(max_attempts: u32) -> QueueConfig {
    let mut c = fast_cfg();
    c.retry.max_attempts = max_attempts;
    c
}

#[tokio::test]
async fn failures_retry_per_config_then_dead_letter() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let cfg = redis_cfg(&redis.url());
    for max_attempts in [3u32, 5] {
        let name = format!("retry{max_attempts}");
        let queue = StreamQueue::<Job>::connect(&cfg, &name, with_attempts(max_attempts)).await?;
        let always = Job {
            fail_first: 100,
            ..Job::new(1)
        };
        let twice = Job {
            fail_first: 2,
            ..Job::new(2)
        };
        let abort = Job {
            abort: true,
            ..Job::new(3)
        };
        let hinted = Job {
            fail_first: 1,
            retry_after_ms: 400,
            ..Job::new(4)
        };
        for j in [&always, &twice, &abort, &hinted] {
            queue.push(j).await?;
        }
        let rec = Recorder::default();
        let w = start_worker(&name, queue.clone(), &rec);
        let ok = rec
            .wait_until(Duration::from_secs(30), |r| {
                let runs = r.runs();
                runs.iter().filter(|x| x.n == 1).count() >= max_attempts as usize
                    && r.succeeded() == 2
            })
            .await;
        assert!(ok, "runs: {:#?}", rec.runs());
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while queue.stats().await?.dead < 2 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Give a wrong extra retry the chance to show up before counting.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let runs = rec.runs();
        let of = |n: u64| {
            runs.iter()
                .filter(|r| r.n == n)
                .cloned()
                .collect::<Vec<_>>()
        };

        // Always failing: exactly max_attempts runs, numbered 1..=max_attempts, apalis agrees.
        let a = of(1);
        assert_eq!(a.len(), max_attempts as usize, "{a:#?}");
        let attempts: Vec<u32> = a.iter().map(|r| r.attempt).collect();
        assert_eq!(attempts, (1..=max_attempts).collect::<Vec<_>>());
        assert!(a.iter().all(|r| r.apalis_attempt == r.attempt as usize));
        // Fails twice, succeeds on the third run (within both limits).
        let t = of(2);
        assert_eq!(t.len(), 3);
        assert!(t[2].ok);
        // Abort: one run, no retry.
        assert_eq!(of(3).len(), 1);
        // RetryAfter: the retry waited at least the hinted 400 ms.
        let h = of(4);
        assert_eq!(h.len(), 2);
        let gap = h[1].at - h[0].at;
        println!("retry-after gap {gap:?} (hint 400 ms)");
        assert!(gap >= Duration::from_millis(400), "gap {gap:?}");

        let dead = queue.dead_letters(10).await?;
        assert_eq!(dead.len(), 2, "{dead:#?}");
        let d1 = dead
            .iter()
            .find(|d| d.payload.contains(r#""n":1"#))
            .unwrap();
        assert_eq!(d1.attempts, max_attempts);
        assert_eq!(
            d1.error,
            format!("job 1 failed on attempt {max_attempts}"),
            "the last error is kept"
        );
        let d3 = dead
            .iter()
            .find(|d| d.payload.contains(r#""n":3"#))
            .unwrap();
        assert_eq!(d3.attempts, 1);
        assert!(d3.error.contains("job 3 is invalid"), "{}", d3.error);

        // Requeue (the `retry` command): fresh attempts from 1.
        assert_eq!(queue.requeue_all_dead().await?, 2);
        let ok = rec
            .wait_until(Duration::from_secs(30), |r| {
                r.runs().iter().filter(|x| x.n == 3).count() == 2
                    && r.runs().iter().filter(|x| x.n == 1).count() == 2 * max_attempts as usize
            })
            .await;
        assert!(ok, "requeued jobs ran again: {:#?}", rec.runs());
        let again = rec
            .runs()
            .into_iter()
            .filter(|r| r.n == 1)
            .collect::<Vec<_>>();
        assert_eq!(again[max_attempts as usize].attempt, 1);
        w.stop().await?;
        let s = queue.stats().await?;
        assert_eq!((s.pending, s.delayed), (0, 0), "{s:?}");
    }
    Ok(())
}
