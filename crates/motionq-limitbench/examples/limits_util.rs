//! Benchmark 2 of issue 11: limit utilisation, with 8 real `motionq worker` processes against
//! the simulator, measured on the simulator's ledger.
//!
//! ```text
//! cargo build -p motionq && cargo run -p motionq-limitbench --example limits_util
//! cargo run -p motionq-limitbench --example limits_util -- conc-2s storm   # only these
//! ```
//!
//! Two campaigns on one AI Video API key (create rate R, concurrency C, generation time T):
//! a rate-bound one and a concurrency-bound one. For each: makespan (first accepted create →
//! last task completion at the vendor, from the ledger's create and settle times) vs the
//! optimum `max(N/R, N·T/C)`, the ratio, and the breaches in the vendor's accounting (creates
//! in any sliding second above R, tasks in flight above C, rate/concurrency rejections).
//! Then a 2 s 429 storm in a rate-bound run: time from the storm's end until the effective
//! rate (motionq's `list_keys`) is back at R, and until the vendor again accepts ≥ 95% of R in
//! a 1 s window.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use motionq_core::Vendor;
use motionq_limitbench::*;
use motionq_sim::{ChargeKind, Faults, Storm};

struct Case {
    name: &'static str,
    n: usize,
    r: f64,
    c: u32,
    gen_sim_s: f64,
    /// `[worker]` poll_first_ms = poll_min_ms (`None`: production 2 s).
    poll_min_ms: Option<u64>,
    /// `[worker]` poll_learn.
    learn: bool,
}

const SCALE: f64 = 0.01;

fn scenario(case: &Case) -> Scenario {
    // The vendor's "R per second" as motionq's held cap (`create_max_per_s`), with a small
    // GCRA burst so workers waking up late do not lose capacity.
    let mut key = KeySpec::new("bench", case.r, case.c);
    key.burst = 3;
    key.max_per_s = Some(case.r.floor() as u32);
    Scenario {
        vendor: Vendor::Aivideoapi,
        keys: vec![key],
        time_scale: SCALE,
        queue_seconds: 0.0,
        generation_seconds: case.gen_sim_s,
        retry_after_seconds: None,
        submit_concurrency: 8,
        stages: "feeder,submit,poll".into(),
        poll_min_ms: case.poll_min_ms,
        poll_learn: case.learn,
    }
}

async fn run_case(case: &Case, storm_at: Option<Duration>) -> Result<()> {
    let sc = scenario(case);
    let t = sc.task_seconds();
    let mut h = Harness::start(sc).await?;
    let campaign = h.enqueue(&h.manifest(case.name, case.n, "")).await?;
    h.spawn_workers(8)?;
    let start = Instant::now();
    let mut storm_end = None;
    let mut samples: Vec<(Instant, f64)> = Vec::new();
    loop {
        if let (Some(at), None) = (storm_at, storm_end) {
            if start.elapsed() >= at {
                let mut f = Faults::default();
                f.aivideoapi.create.storms = vec![Storm {
                    from_secs: 0.0,
                    to_secs: 2.0,
                    status: 429,
                }];
                h.sim.set_faults(f).map_err(anyhow::Error::msg)?;
                storm_end = Some((
                    Instant::now() + Duration::from_secs(2),
                    motionq_sim::now_ms() + 2000,
                ));
            }
        }
        if storm_at.is_some() {
            samples.push((Instant::now(), h.key_state(0).await?.create.effective_per_s));
        }
        let c = h.counts(&campaign).await?;
        if n(&c, "completed") + n(&c, "failed") == case.n as i64 {
            break;
        }
        if start.elapsed() > Duration::from_secs(600) {
            anyhow::bail!("{}: not done after 600 s: {c:?}", case.name);
        }
        h.check_workers_alive()?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    h.stop_workers();
    let k = h.key_ledger(0);
    let times = create_times(&k);
    let first = *times.iter().min().context("no creates")?;
    let last_done = k
        .charges
        .iter()
        .filter(|c| c.kind == ChargeKind::Settle)
        .map(|c| c.at_ms)
        .max()
        .context("no completions")?;
    let makespan = (last_done - first) as f64 / 1000.0;
    let optimum = (case.n as f64 / case.r).max(case.n as f64 * t / case.c as f64);
    let max_sec = max_in_window(&times, 1000);
    // Without the first 3 s: the start-up bunching (see the crate doc) vs steady state.
    let steady: Vec<u64> = times
        .iter()
        .copied()
        .filter(|t| *t >= first + 3000)
        .collect();
    let max_steady = max_in_window(&steady, 1000);
    let create_ratio = achieved_rate(&times) / case.r;
    println!(
        "{:<12} N={:<4} R={:<5} C={:<4} T={:.2}s  makespan {:>7.2}s  optimum {:>6.2}s  ratio {:.3}  \
         achieved create rate {:.2}/s ({:.3} of R)  | breaches: max creates/1s {} (after the first 3 s: \
         {}) (limit {}), max in flight {} (limit {}), vendor rejections {:?}",
        case.name,
        case.n,
        case.r,
        case.c,
        t,
        makespan,
        optimum,
        optimum / makespan,
        achieved_rate(&times),
        create_ratio,
        max_sec,
        max_steady,
        case.r,
        k.max_in_flight,
        case.c,
        k.rejections
    );
    // Where the time beyond T goes, per task: from the vendor accepting the create to the
    // poll that sees it done (the vendor settles then), and from a slot's release at the
    // vendor to the create that reuses it (the k-th create after the first C reuses the
    // k-th release).
    let settles: BTreeMap<&str, u64> = k
        .charges
        .iter()
        .filter(|c| c.kind == ChargeKind::Settle)
        .map(|c| (c.task_id.as_str(), c.at_ms))
        .collect();
    let detect: Vec<f64> = k
        .creates
        .iter()
        .filter_map(|cr| {
            settles
                .get(cr.task_id.as_str())
                .map(|s| (s - cr.at_ms) as f64 - t * 1000.0)
        })
        .collect();
    let mut done: Vec<u64> = settles.values().copied().collect();
    done.sort_unstable();
    let mut starts = times.clone();
    starts.sort_unstable();
    let c = case.c as usize;
    let reuse: Vec<f64> = starts
        .iter()
        .skip(c)
        .zip(&done)
        .map(|(s, d)| *s as f64 - *d as f64)
        .collect();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let reused = if k.max_in_flight >= case.c {
        format!("{:.0} ms (mean, {} reuses)", mean(&reuse), reuse.len())
    } else {
        "n/a (the concurrency limit was never reached)".to_string()
    };
    println!(
        "{:<12} per task: accepted -> seen done {:.0} ms beyond T (mean); slot released -> reused {reused}",
        "",
        mean(&detect),
    );
    let dense = densest_window(&steady, 1000);
    let gaps: Vec<u64> = dense.windows(2).map(|w| w[1] - w[0]).collect();
    println!(
        "{:<12} poll_min {}, poll_learn {}; vendor queries {}",
        "",
        case.poll_min_ms
            .map_or("2000 ms (production)".into(), |m| format!("{m} ms")),
        case.learn,
        k.queries
    );
    println!(
        "{:<12} densest steady-state second: {} ms after the first create, gaps (ms) {gaps:?}",
        "",
        dense.first().map_or(0, |t| t - first)
    );
    if let Some((end, end_ms)) = storm_end {
        let back = samples
            .iter()
            .find(|(at, r)| *at >= end && *r >= case.r)
            .map(|(at, _)| at.duration_since(end).as_secs_f64());
        let lowest = samples.iter().map(|s| s.1).fold(f64::MAX, f64::min);
        // First sliding second after the storm with ≥ 95% of R accepted creates.
        let need = (0.95 * case.r).ceil() as usize;
        let mut sorted = times.clone();
        sorted.sort_unstable();
        let vendor_back = sorted
            .iter()
            .filter(|&&t0| t0 >= end_ms)
            .find(|&&t0| sorted.iter().filter(|&&x| x >= t0 && x < t0 + 1000).count() >= need)
            .map(|&t0| (t0 + 1000 - end_ms) as f64 / 1000.0);
        println!(
            "{:<12} 429 storm of 2 s: effective rate fell to {lowest:.2}/s; back at R {} after \
             the storm; vendor accepting >= 95% of R in a 1 s window {} after the storm; faults \
             {:?}",
            "",
            back.map_or("never".into(), |s| format!("{s:.2} s")),
            vendor_back.map_or("never".into(), |s| format!("{s:.2} s")),
            h.ledger().vendors["aivideoapi"].faults_injected
        );
    }
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    println!(
        "limits_util: 8 motionq worker processes (debug build unless built with --release), \
         {} cores, simulator time_scale {SCALE}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let rate = |name| Case {
        name,
        n: 300,
        r: 10.0,
        c: 100,
        gen_sim_s: 100.0,
        poll_min_ms: Some(100),
        learn: true,
    };
    let conc = |name, poll_min_ms, learn| Case {
        name,
        n: 80,
        r: 50.0,
        c: 8,
        gen_sim_s: 200.0,
        poll_min_ms,
        learn,
    };
    // The concurrency-bound campaign three ways: production poll timings (first poll and
    // poll_min 2 s), then 100 ms without and with the learned schedule.
    let cases = [
        (rate("rate-bound"), None),
        (conc("conc-2s", None, true), None),
        (conc("conc-plain", Some(100), false), None),
        (conc("conc-learned", Some(100), true), None),
        (rate("storm"), Some(Duration::from_secs(8))),
    ];
    // `-- <name>...` runs only the named cases.
    let only: Vec<String> = std::env::args().skip(1).collect();
    for (case, storm) in &cases {
        if only.is_empty() || only.iter().any(|o| o == case.name) {
            run_case(case, *storm).await?;
        }
    }
    Ok(())
}
