//! The feeder (admission) and the sweep. See the crate docs for fairness and crash safety.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use motionq_core::validate::CampaignSpec;
use motionq_limits::KeyId;
use redis::AsyncCommands;

use crate::error::PipelineError;
use crate::pipeline::{now_ms, Pipeline, ADMIT};

/// What one feeder round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedReport {
    /// Whether this process held the feeder lock (only one feeder admits at a time).
    pub ran: bool,
    /// Jobs admitted per campaign.
    pub admitted: BTreeMap<String, u64>,
    /// Queued jobs of cancelled campaigns moved to `cancelled`.
    pub cancelled: u64,
}

/// `state`, `priority`, `spec` of a campaign's meta hash.
type MetaFields = (Option<String>, Option<i64>, Option<String>);
/// `queued`, `admitted` of a campaign's counts hash.
type CountFields = (Option<u64>, Option<u64>);

/// One campaign as the feeder sees it.
#[derive(Debug)]
struct CampaignView {
    id: String,
    priority: i64,
    queued: u64,
    admitted: u64,
    keys: Vec<KeyId>,
}

impl Pipeline {
    fn feeder_lock_key(&self) -> String {
        format!("{}:feeder:lock", self.prefix)
    }

    /// One admission round, under the deployment-wide feeder lock (a concurrent round of
    /// another process returns `ran: false`). `rotation` rotates the round-robin start.
    pub async fn feed_round(&self, rotation: usize) -> Result<FeedReport, PipelineError> {
        let token = format!("feeder-{}-{}", std::process::id(), rand::random::<u64>());
        let ttl = (self.opts.feeder_interval * 20).max(Duration::from_secs(10));
        let taken: i64 = crate::pipeline::LOCK
            .key(self.feeder_lock_key())
            .arg(&token)
            .arg(ttl.as_millis() as u64)
            .arg("take")
            .invoke_async(&mut self.conn.clone())
            .await?;
        if taken != 1 {
            return Ok(FeedReport::default());
        }
        let r = self.feed_locked(rotation).await;
        let _: redis::RedisResult<i64> = crate::pipeline::LOCK
            .key(self.feeder_lock_key())
            .arg(&token)
            .arg(1)
            .arg("release")
            .invoke_async(&mut self.conn.clone())
            .await;
        r
    }

    async fn feed_locked(&self, rotation: usize) -> Result<FeedReport, PipelineError> {
        let mut report = FeedReport {
            ran: true,
            ..Default::default()
        };
        let ids = self.store.campaign_ids().await?;
        let mut views = Vec::new();
        for id in ids {
            let mut conn = self.conn.clone();
            let keys = self.store.keys();
            let ((state, priority, spec), (queued, admitted)): (MetaFields, CountFields) =
                redis::pipe()
                    .cmd("HMGET")
                    .arg(keys.meta(&id))
                    .arg("state")
                    .arg("priority")
                    .arg("spec")
                    .cmd("HMGET")
                    .arg(keys.counts(&id))
                    .arg("queued")
                    .arg("admitted")
                    .query_async(&mut conn)
                    .await?;
            let queued = queued.unwrap_or(0);
            match state.as_deref() {
                Some("cancelled") if queued > 0 => {
                    let moved = self
                        .admit(
                            &id,
                            self.opts.feeder_batch,
                            "cancelled",
                            "campaign cancelled",
                        )
                        .await?;
                    report.cancelled += moved.len() as u64;
                }
                Some("active") => {
                    let spec: Option<CampaignSpec> =
                        spec.and_then(|s| serde_json::from_str(&s).ok());
                    let keys: Vec<KeyId> = spec
                        .map(|s| s.vendors)
                        .unwrap_or_default()
                        .iter()
                        .flat_map(|v| self.keys_by_vendor.get(v).cloned().unwrap_or_default())
                        .collect();
                    views.push(CampaignView {
                        id,
                        priority: priority.unwrap_or(0),
                        queued,
                        admitted: admitted.unwrap_or(0),
                        keys,
                    });
                }
                _ => {}
            }
        }
        // Room per key: free concurrency slots plus a small floor, minus the jobs already
        // admitted (waiting in the submit queue) by the campaigns that use the key.
        let all_keys: BTreeSet<KeyId> = views.iter().flat_map(|v| v.keys.iter().cloned()).collect();
        let mut room: HashMap<KeyId, i64> = HashMap::new();
        for k in all_keys {
            let st = self.limits.state(&k).await?;
            let r = if st.parked.is_some() {
                0
            } else {
                i64::from(st.max_concurrent.saturating_sub(st.in_flight))
                    + i64::from(self.opts.feeder_floor)
            };
            room.insert(k, r);
        }
        for v in &views {
            let mut left = v.admitted as i64;
            while left > 0 {
                let Some(best) = v
                    .keys
                    .iter()
                    .max_by_key(|k| room.get(*k).copied().unwrap_or(0))
                else {
                    break;
                };
                let r = room.entry(best.clone()).or_insert(0);
                if *r <= 0 {
                    break;
                }
                *r -= 1;
                left -= 1;
            }
        }
        let want = plan(&views, &mut room, rotation, self.opts.feeder_batch);
        // Keys whose room ran out while a campaign using them still has queued jobs: a slot
        // they release is worth an early round (see `Pipeline::release_slot_and_wake`).
        let mut starved: Vec<&KeyId> = Vec::new();
        for (k, r) in &room {
            if *r > 0 {
                continue;
            }
            let left = views.iter().any(|v| {
                let planned = want
                    .iter()
                    .find(|(id, _)| *id == v.id)
                    .map_or(0, |(_, n)| *n as u64);
                v.keys.contains(k) && v.queued > planned
            });
            if left {
                starved.push(k);
            }
        }
        if !starved.is_empty() {
            let ttl = (self.opts.feeder_interval * 4).as_millis().max(1) as u64;
            let mut pipe = redis::pipe();
            for k in starved {
                pipe.cmd("SET")
                    .arg(self.starved_key(k))
                    .arg(1)
                    .arg("PX")
                    .arg(ttl)
                    .ignore();
            }
            let _: () = pipe.query_async(&mut self.conn.clone()).await?;
        }
        for (id, n) in want {
            if n == 0 {
                continue;
            }
            let moved = self
                .admit(&id, n, "admitted", "admitted by the feeder")
                .await?;
            for j in &moved {
                self.push_submit(&id, j).await?;
            }
            for _ in &moved {
                self.metrics.job_transition(
                    &id,
                    motionq_core::JobState::Queued,
                    motionq_core::JobState::Admitted,
                );
            }
            if !moved.is_empty() {
                report.admitted.insert(id, moved.len() as u64);
            }
        }
        Ok(report)
    }

    /// Moves up to `n` queued jobs of a campaign to `to` (the script, atomically per job).
    async fn admit(
        &self,
        campaign: &str,
        n: usize,
        to: &str,
        detail: &str,
    ) -> Result<Vec<String>, PipelineError> {
        let keys = self.store.keys();
        Ok(ADMIT
            .key(keys.queued(campaign))
            .key(keys.counts(campaign))
            .key(keys.events(campaign))
            .key(self.inflight_key(campaign))
            .arg(n)
            .arg(1_000_000)
            .arg(keys.job(campaign, ""))
            .arg(to)
            .arg(detail)
            .invoke_async(&mut self.conn.clone())
            .await?)
    }

    /// Re-pushes the stage message of in-flight jobs that no stage touched for
    /// `sweep_stale` (a lost or dead-lettered message, or a crash between a record write and
    /// a push), and forgets finished ones. Returns how many messages it pushed.
    pub async fn sweep(&self) -> Result<u64, PipelineError> {
        let stale = self.opts.sweep_stale.as_millis() as u64;
        let now = now_ms();
        let mut pushed = 0;
        for c in self.store.campaign_ids().await? {
            let ik = self.inflight_key(&c);
            let mut conn = self.conn.clone();
            let ids: Vec<String> = redis::cmd("ZRANGEBYSCORE")
                .arg(&ik)
                .arg("-inf")
                .arg(now.saturating_sub(stale))
                .arg("LIMIT")
                .arg(0)
                .arg(500)
                .query_async(&mut conn)
                .await?;
            for j in ids {
                let (state, state_at, seen_at, next_poll): (
                    Option<String>,
                    Option<u64>,
                    Option<u64>,
                    Option<u64>,
                ) = conn
                    .hmget(
                        self.store.keys().job(&c, &j),
                        &["state", "state_at", "seen_at", "next_poll_at"],
                    )
                    .await?;
                let last = [state_at, seen_at, next_poll]
                    .into_iter()
                    .flatten()
                    .max()
                    .unwrap_or(0);
                match state.as_deref() {
                    // Waiting its turn on the collect backlog is not stale.
                    Some("completed") if self.on_collect_backlog(&c, &j).await? => {
                        let _: () = conn.zadd(&ik, &j, now).await?;
                    }
                    Some("admitted") | Some("submitting") | Some("submitted")
                    | Some("completed")
                        if now.saturating_sub(last) > stale =>
                    {
                        match state.as_deref() {
                            Some("submitted") => self.push_poll(&c, &j, Duration::ZERO).await?,
                            Some("completed") => self.push_collect(&c, &j, None).await?,
                            _ => self.push_submit(&c, &j).await?,
                        }
                        tracing::info!(campaign = %c, job = %j, state = ?state, "sweep: re-pushed a stale job");
                        pushed += 1;
                        let _: () = conn.zadd(&ik, &j, now).await?;
                    }
                    Some("admitted") | Some("submitting") | Some("submitted")
                    | Some("completed") => {
                        let _: () = conn.zadd(&ik, &j, last).await?;
                    }
                    _ => {
                        let _: () = conn.zrem(&ik, &j).await?;
                    }
                }
            }
        }
        Ok(pushed)
    }
}

/// Distributes key room to campaigns: higher priority first; within one priority, one job at a
/// time round robin (starting at `rotation`), each job taking room from the campaign's key with
/// the most room. Returns jobs to admit per campaign.
fn plan(
    views: &[CampaignView],
    room: &mut HashMap<KeyId, i64>,
    rotation: usize,
    batch: usize,
) -> Vec<(String, usize)> {
    let mut want: Vec<usize> = vec![0; views.len()];
    let mut prios: Vec<i64> = views.iter().map(|v| v.priority).collect();
    prios.sort_unstable_by(|a, b| b.cmp(a));
    prios.dedup();
    for prio in prios {
        let group: Vec<usize> = (0..views.len())
            .filter(|&i| views[i].priority == prio)
            .collect();
        if group.is_empty() {
            continue;
        }
        let start = rotation % group.len();
        let order: Vec<usize> = group[start..]
            .iter()
            .chain(group[..start].iter())
            .copied()
            .collect();
        loop {
            let mut progress = false;
            for &i in &order {
                let v = &views[i];
                if want[i] as u64 >= v.queued || want[i] >= batch {
                    continue;
                }
                let Some(best) = v
                    .keys
                    .iter()
                    .max_by_key(|k| room.get(*k).copied().unwrap_or(0))
                else {
                    continue;
                };
                let r = room.entry(best.clone()).or_insert(0);
                if *r <= 0 {
                    continue;
                }
                *r -= 1;
                want[i] += 1;
                progress = true;
            }
            if !progress {
                break;
            }
        }
    }
    views
        .iter()
        .zip(want)
        .map(|(v, n)| (v.id.clone(), n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use motionq_core::Vendor;

    fn view(id: &str, prio: i64, queued: u64, keys: &[&KeyId]) -> CampaignView {
        CampaignView {
            id: id.into(),
            priority: prio,
            queued,
            admitted: 0,
            keys: keys.iter().map(|k| (*k).clone()).collect(),
        }
    }

    #[test]
    fn round_robin_splits_a_shared_key_evenly() {
        let k = KeyId::new(Vendor::Evolink, "main").unwrap();
        let views = [view("a", 0, 1000, &[&k]), view("b", 0, 1000, &[&k])];
        let mut room = HashMap::from([(k.clone(), 7)]);
        let w = plan(&views, &mut room, 0, 500);
        assert_eq!(w, vec![("a".into(), 4), ("b".into(), 3)]);
        let mut room = HashMap::from([(k.clone(), 7)]);
        let w = plan(&views, &mut room, 1, 500);
        assert_eq!(
            w,
            vec![("a".into(), 3), ("b".into(), 4)],
            "rotation gives the odd one to the other"
        );
    }

    #[test]
    fn priority_first_and_queued_bounds() {
        let k = KeyId::new(Vendor::Evolink, "main").unwrap();
        let views = [view("low", 0, 1000, &[&k]), view("high", 5, 2, &[&k])];
        let mut room = HashMap::from([(k.clone(), 6)]);
        let w = plan(&views, &mut room, 0, 500);
        assert_eq!(w, vec![("low".into(), 4), ("high".into(), 2)]);
    }

    #[test]
    fn campaigns_without_keys_get_nothing() {
        let views = [view("a", 0, 10, &[])];
        let mut room = HashMap::new();
        assert_eq!(plan(&views, &mut room, 0, 500), vec![("a".into(), 0)]);
    }
}
