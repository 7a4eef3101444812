//! Prices per vendor and tier, and the campaign cost estimate.
//!
//! Prices come from config (`[vendors.<name>.price]`); the defaults in `config/default.toml` are
//! the published ones (VENDORS.md 6.5): EvoLink $0.12 / $0.16 per second, AI Video API 30 / 40
//! credits per second at $0.005 a credit, Kling list ≈ $0.126 / $0.168 per second. HighwayAPI and
//! Freepik publish none: their price is *unknown until configured* and the estimate says so
//! instead of guessing.
//!
//! Two totals: *expected* (each job on the first vendor its routing would pick, with its known
//! duration or the orientation's worst case) and *worst case* (each job on its most expensive
//! allowed vendor at its longest possible output). Budgets are checked against the worst case.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::job::Tier;
use crate::manifest::RoutingPolicy;
use crate::validate::{DurationSource, ValidatedJob};
use crate::vendor::Vendor;

/// One vendor's price list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// The vendor's billing unit, e.g. `usd`, `credit`, `unit`.
    #[serde(default = "default_unit")]
    pub unit: String,
    /// USD value of one unit (1.0 when the unit is USD). `None`: unknown.
    #[serde(default)]
    pub usd_per_unit: Option<f64>,
    /// Units per second of output, std tier (720p). `None`: unknown.
    #[serde(default)]
    pub std_per_second: Option<f64>,
    /// Units per second of output, pro tier (1080p). `None`: unknown.
    #[serde(default)]
    pub pro_per_second: Option<f64>,
}

fn default_unit() -> String {
    "usd".into()
}

impl Price {
    /// Units per second for a tier.
    pub fn per_second(&self, tier: Tier) -> Option<f64> {
        match tier {
            Tier::Std => self.std_per_second,
            Tier::Pro => self.pro_per_second,
        }
    }

    /// USD per second for a tier, when both the rate and the unit's value are known.
    pub fn usd_per_second(&self, tier: Tier) -> Option<f64> {
        Some(self.per_second(tier)? * self.usd_per_unit?)
    }
}

/// Prices of every configured vendor.
pub type PriceTable = BTreeMap<Vendor, Price>;

/// Orders a job's allowed vendors by routing policy: `cheapest` sorts by USD per second for the
/// job's tier (unknown prices last, ties keep the given order); `in_order` keeps the list.
pub fn route_order(
    vendors: &[Vendor],
    tier: Tier,
    policy: RoutingPolicy,
    prices: &PriceTable,
) -> Vec<Vendor> {
    let mut out = vendors.to_vec();
    if policy == RoutingPolicy::Cheapest {
        out.sort_by(|a, b| {
            let pa = prices.get(a).and_then(|p| p.usd_per_second(tier));
            let pb = prices.get(b).and_then(|p| p.usd_per_second(tier));
            match (pa, pb) {
                (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            }
        });
    }
    out
}

/// One row of the estimate table: a vendor and tier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EstimateRow {
    pub vendor: Vendor,
    pub tier: Tier,
    pub jobs: u64,
    /// Jobs among `jobs` whose duration is unknown (priced at the worst case).
    pub jobs_worst_case_duration: u64,
    pub billed_seconds: f64,
    pub unit: String,
    /// Cost in the vendor's unit; `None` when the price is unknown.
    pub cost_units: Option<f64>,
    pub cost_usd: Option<f64>,
}

/// Cost of one job.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct JobCost {
    /// The vendor its routing would pick first.
    pub planned_vendor: Vendor,
    pub billed_seconds: f64,
    /// On the planned vendor; `None` if its price is unknown.
    pub expected_usd: Option<f64>,
    /// On the most expensive allowed vendor at the longest possible output; `None` if any
    /// allowed vendor's price is unknown.
    pub worst_case_usd: Option<f64>,
}

/// The campaign estimate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub rows: Vec<EstimateRow>,
    pub jobs: u64,
    /// Sum of expected costs; `None` when some planned vendor has no known price.
    pub expected_usd: Option<f64>,
    /// Sum of worst-case costs; `None` when some allowed vendor has no known price.
    pub worst_case_usd: Option<f64>,
    /// Vendors whose price is not configured.
    pub unknown_prices: Vec<Vendor>,
    /// Jobs whose duration is unknown (neither in the manifest nor probed).
    pub jobs_duration_unknown: u64,
    pub budget_usd: Option<f64>,
    pub per_job: Vec<JobCost>,
}

impl Estimate {
    /// Whether the worst case fits the budget: `Some(true/false)`, or `None` when it cannot be
    /// told (a price is unknown) or there is no budget.
    pub fn fits_budget(&self) -> Option<bool> {
        Some(self.worst_case_usd? <= self.budget_usd? + 1e-9)
    }
}

fn seconds_for(job: &ValidatedJob, vendor: Vendor) -> f64 {
    match job.spec.video_duration_s {
        Some(d) if job.duration_source != DurationSource::Unknown => {
            vendor.billed_seconds(job.spec.orientation, d)
        }
        _ => vendor.worst_case_seconds(job.spec.orientation),
    }
}

/// Estimates a validated campaign's cost.
pub fn estimate(
    jobs: &[ValidatedJob],
    routing: RoutingPolicy,
    budget_usd: Option<f64>,
    prices: &PriceTable,
) -> Estimate {
    let mut rows: BTreeMap<(Vendor, Tier), EstimateRow> = BTreeMap::new();
    let mut expected = Some(0.0);
    let mut worst = Some(0.0);
    let mut unknown = std::collections::BTreeSet::new();
    let mut per_job = Vec::with_capacity(jobs.len());
    let mut unknown_duration = 0;
    for job in jobs {
        let tier = job.spec.tier;
        let order = route_order(&job.vendors, tier, routing, prices);
        let Some(&planned) = order.first() else {
            continue;
        };
        let secs = seconds_for(job, planned);
        let price = prices.get(&planned);
        let units = price.and_then(|p| p.per_second(tier)).map(|r| r * secs);
        let usd = price.and_then(|p| p.usd_per_second(tier)).map(|r| r * secs);
        if usd.is_none() {
            unknown.insert(planned);
        }
        let unknown_dur = job.duration_source == DurationSource::Unknown;
        if unknown_dur {
            unknown_duration += 1;
        }
        let row = rows.entry((planned, tier)).or_insert_with(|| EstimateRow {
            vendor: planned,
            tier,
            jobs: 0,
            jobs_worst_case_duration: 0,
            billed_seconds: 0.0,
            unit: price
                .map(|p| p.unit.clone())
                .unwrap_or_else(|| "unknown".into()),
            cost_units: Some(0.0),
            cost_usd: Some(0.0),
        });
        row.jobs += 1;
        row.jobs_worst_case_duration += u64::from(unknown_dur);
        row.billed_seconds += secs;
        row.cost_units = row.cost_units.zip(units).map(|(a, b)| a + b);
        row.cost_usd = row.cost_usd.zip(usd).map(|(a, b)| a + b);
        expected = expected.zip(usd).map(|(a, b)| a + b);

        let mut job_worst = Some(0.0f64);
        for &v in &job.vendors {
            let s = match job.duration_source {
                DurationSource::Unknown => v.worst_case_seconds(job.spec.orientation),
                _ => seconds_for(job, v),
            };
            let c = prices
                .get(&v)
                .and_then(|p| p.usd_per_second(tier))
                .map(|r| r * s);
            if c.is_none() {
                unknown.insert(v);
            }
            job_worst = job_worst.zip(c).map(|(a, b)| a.max(b));
        }
        worst = worst.zip(job_worst).map(|(a, b)| a + b);
        per_job.push(JobCost {
            planned_vendor: planned,
            billed_seconds: secs,
            expected_usd: usd,
            worst_case_usd: job_worst,
        });
    }
    Estimate {
        rows: rows.into_values().collect(),
        jobs: jobs.len() as u64,
        expected_usd: expected,
        worst_case_usd: worst,
        unknown_prices: unknown.into_iter().collect(),
        jobs_duration_unknown: unknown_duration,
        budget_usd,
        per_job,
    }
}

/// The published default prices (VENDORS.md 6.5). HighwayAPI and Freepik: unknown.
pub fn published_prices() -> PriceTable {
    let mut t = PriceTable::new();
    // EvoLink: $0.120/s (8.1648 credits/s) and $0.160/s (10.88368 credits/s); priced in USD.
    t.insert(
        Vendor::Evolink,
        Price {
            unit: "usd".into(),
            usd_per_unit: Some(1.0),
            std_per_second: Some(0.12),
            pro_per_second: Some(0.16),
        },
    );
    // Kling list price via KKIAI, approximately.
    t.insert(
        Vendor::Kkiai,
        Price {
            unit: "usd".into(),
            usd_per_unit: Some(1.0),
            std_per_second: Some(0.126),
            pro_per_second: Some(0.168),
        },
    );
    // AI Video API: 30 / 40 credits per second, $0.005 a credit.
    t.insert(
        Vendor::Aivideoapi,
        Price {
            unit: "credit".into(),
            usd_per_unit: Some(0.005),
            std_per_second: Some(30.0),
            pro_per_second: Some(40.0),
        },
    );
    t.insert(
        Vendor::Highwayapi,
        Price {
            unit: "usd".into(),
            usd_per_unit: Some(1.0),
            std_per_second: None,
            pro_per_second: None,
        },
    );
    t.insert(
        Vendor::Freepik,
        Price {
            unit: "credit".into(),
            usd_per_unit: None,
            std_per_second: None,
            pro_per_second: None,
        },
    );
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::{validate_bytes, ValidateOptions};

    fn jobs(json: &str) -> Vec<ValidatedJob> {
        let v = validate_bytes(json.as_bytes(), &ValidateOptions::default());
        assert!(v.is_valid(), "{:?}", v.problems);
        v.campaign.unwrap().1
    }

    #[test]
    fn exact_with_known_durations() {
        let j = jobs(
            r#"{"campaign":"c","vendor":"evolink","jobs":[
            {"image":"https://e.com/a.png","video":"https://e.com/v.mp4","video_duration_s":8},
            {"image":"https://e.com/b.png","video":"https://e.com/v.mp4","video_duration_s":10,"tier":"pro"}]}"#,
        );
        let e = estimate(&j, RoutingPolicy::Cheapest, Some(2.0), &published_prices());
        assert_eq!(e.rows.len(), 2);
        let std = &e.rows[0];
        assert_eq!(
            (std.tier, std.jobs, std.billed_seconds),
            (Tier::Std, 1, 8.0)
        );
        assert!((e.expected_usd.unwrap() - (8.0 * 0.12 + 10.0 * 0.16)).abs() < 1e-9);
        assert_eq!(e.expected_usd, e.worst_case_usd);
        assert_eq!(e.fits_budget(), Some(false));
    }

    #[test]
    fn unknown_duration_uses_worst_case_and_says_so() {
        let j = jobs(
            r#"{"campaign":"c","vendor":"aivideoapi","jobs":[
            {"image":"https://e.com/a.png","video":"https://e.com/v.mp4","orientation":"image"}]}"#,
        );
        let e = estimate(&j, RoutingPolicy::Cheapest, None, &published_prices());
        assert_eq!(e.jobs_duration_unknown, 1);
        assert_eq!(e.rows[0].billed_seconds, 10.0);
        assert_eq!(e.rows[0].cost_units, Some(300.0));
        assert!((e.worst_case_usd.unwrap() - 1.5).abs() < 1e-9);
    }

    #[test]
    fn unknown_prices_are_never_guessed() {
        let j = jobs(
            r#"{"campaign":"c","vendor":"freepik","jobs":[
            {"image":"https://e.com/a.png","video":"https://e.com/v.mp4","video_duration_s":5}]}"#,
        );
        let e = estimate(&j, RoutingPolicy::Cheapest, Some(10.0), &published_prices());
        assert_eq!(e.expected_usd, None);
        assert_eq!(e.worst_case_usd, None);
        assert_eq!(e.unknown_prices, vec![Vendor::Freepik]);
        assert_eq!(e.fits_budget(), None);
        assert_eq!(e.rows[0].cost_usd, None);
    }

    #[test]
    fn cheapest_routing_plans_the_cheapest_and_worst_case_takes_the_dearest() {
        let j = jobs(
            r#"{"campaign":"c","vendors":["aivideoapi","evolink"],"jobs":[
            {"image":"https://e.com/a.png","video":"https://e.com/v.mp4","video_duration_s":10}]}"#,
        );
        let p = published_prices();
        let e = estimate(&j, RoutingPolicy::Cheapest, None, &p);
        assert_eq!(e.per_job[0].planned_vendor, Vendor::Evolink);
        assert!((e.expected_usd.unwrap() - 1.2).abs() < 1e-9);
        assert!((e.worst_case_usd.unwrap() - 1.5).abs() < 1e-9);
        let e = estimate(&j, RoutingPolicy::InOrder, None, &p);
        assert_eq!(e.per_job[0].planned_vendor, Vendor::Aivideoapi);
    }
}
