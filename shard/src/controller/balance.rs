//! Rebalance plans: which partitions to move so that shards carry even
//! load (produce plus fetch bytes per second) or even partition counts.
//!
//! Layer: controller (see the crate docs). Pure: it plans from what the
//! shards reported and never moves anything itself.
//!
//! Why greedy, one move at a time from the busiest shard to the idlest:
//! each move costs a short write pause on one partition, so a plan should
//! be short, and every move it makes must lower the busiest shard's load.
//! The move chosen is the partition of the busiest shard whose weight is
//! closest to half the gap between it and the idlest shard (the move that
//! brings the two closest together); a partition whose weight is the
//! whole gap or more would only swap their roles, so it never moves. Each
//! partition moves at most once per plan, so a plan has at most one move
//! per partition and always ends.

use crate::admin::{BalanceBy, PlannedMove, ShardLoad};

/// A plan, with each shard's measure before and after it.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The moves, in order.
    pub moves: Vec<PlannedMove>,
    /// Each shard's measure now (by shard id).
    pub before: Vec<f64>,
    /// Each shard's measure once the moves are made.
    pub after: Vec<f64>,
}

/// The weight of one partition under `by`.
fn weight(by: BalanceBy, produce_bytes_per_s: f64, fetch_bytes_per_s: f64) -> f64 {
    match by {
        BalanceBy::Load => produce_bytes_per_s + fetch_bytes_per_s,
        BalanceBy::Count => 1.0,
    }
}

/// Plans moves that even out `by` across `shards` (every shard of the
/// pool, by id).
pub fn plan(shards: &[ShardLoad], by: BalanceBy) -> Plan {
    assert!(!shards.is_empty(), "a pool has at least one shard");
    // (weight, topic, partition, shard now, moved already)
    let mut partitions: Vec<(f64, &str, u32, usize, bool)> = shards
        .iter()
        .enumerate()
        .flat_map(|(shard, load)| {
            load.partitions.iter().map(move |p| {
                let w = weight(by, p.produce_bytes_per_s, p.fetch_bytes_per_s);
                (w, p.topic.as_str(), p.partition, shard, false)
            })
        })
        .collect();
    let measure = |partitions: &[(f64, &str, u32, usize, bool)]| {
        let mut per_shard = vec![0.0; shards.len()];
        for (w, _, _, shard, _) in partitions {
            per_shard[*shard] += w;
        }
        per_shard
    };
    let before = measure(&partitions);
    let mut loads = before.clone();
    let mut moves = Vec::new();
    // Bounded: every round moves a partition that has not moved yet.
    for _ in 0..partitions.len() {
        let by_load = |a: &(usize, &f64), b: &(usize, &f64)| a.1.total_cmp(b.1);
        let (heavy, _) = loads
            .iter()
            .enumerate()
            .max_by(|a, b| by_load(a, b).then(b.0.cmp(&a.0)))
            .expect("at least one shard");
        let (light, _) = loads
            .iter()
            .enumerate()
            .min_by(|a, b| by_load(a, b).then(a.0.cmp(&b.0)))
            .expect("at least one shard");
        let gap = loads[heavy] - loads[light];
        let best = partitions
            .iter_mut()
            .filter(|(w, _, _, shard, moved)| *shard == heavy && !moved && *w > 0.0 && *w < gap)
            .min_by(|a, b| {
                let off = |w: f64| (w - gap / 2.0).abs();
                off(a.0)
                    .total_cmp(&off(b.0))
                    .then((a.1, a.2).cmp(&(b.1, b.2)))
            });
        let Some(chosen) = best else { break };
        chosen.3 = light;
        chosen.4 = true;
        loads[heavy] -= chosen.0;
        loads[light] += chosen.0;
        moves.push(PlannedMove {
            topic: chosen.1.to_string(),
            partition: chosen.2,
            from_shard: heavy as u32,
            to_shard: light as u32,
        });
    }
    let after = measure(&partitions);
    Plan {
        moves,
        before,
        after,
    }
}

/// `--core-balancing continuous`'s judgement, fed one observation of
/// every shard's load (bytes per second) at a time: it answers "rebalance
/// now" once the busiest shard has carried more than `threshold` times
/// the mean for `debounce`, and starts over after saying so. A pool below
/// `floor_bytes_per_s` in total is never judged (at a trickle, differences
/// are noise).
#[derive(Clone, Debug)]
pub struct Watch {
    threshold: f64,
    debounce: std::time::Duration,
    floor_bytes_per_s: f64,
    since: Option<std::time::Instant>,
}

impl Watch {
    /// A watch that has seen nothing yet.
    pub fn new(threshold: f64, debounce: std::time::Duration, floor_bytes_per_s: f64) -> Self {
        assert!(
            threshold > 1.0,
            "a threshold at or below the mean is always exceeded"
        );
        Watch {
            threshold,
            debounce,
            floor_bytes_per_s,
            since: None,
        }
    }

    /// Takes the load of every shard at `now`; true when a rebalance is due.
    pub fn observe(&mut self, now: std::time::Instant, per_shard: &[f64]) -> bool {
        let total: f64 = per_shard.iter().sum();
        let mean = total / per_shard.len().max(1) as f64;
        let busiest = per_shard.iter().cloned().fold(0.0, f64::max);
        if total < self.floor_bytes_per_s || busiest <= self.threshold * mean {
            self.since = None;
            return false;
        }
        let since = *self.since.get_or_insert(now);
        if now.duration_since(since) < self.debounce {
            return false;
        }
        self.since = None;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::PartitionLoad;
    use std::time::{Duration, Instant};

    #[test]
    fn a_watch_waits_for_the_imbalance_to_last_and_forgets_a_blip() {
        let mut watch = Watch::new(1.25, Duration::from_secs(30), 1e6);
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let skewed = [9e6, 1e6];
        assert!(!watch.observe(at(0), &skewed), "imbalance starts");
        assert!(!watch.observe(at(29), &skewed), "not for long enough yet");
        // Balanced for a moment: the debounce starts again.
        assert!(!watch.observe(at(30), &[5e6, 5e6]));
        assert!(!watch.observe(at(31), &skewed));
        assert!(!watch.observe(at(60), &skewed));
        assert!(watch.observe(at(61), &skewed), "30 s of imbalance");
        assert!(
            !watch.observe(at(62), &skewed),
            "it starts over after a rebalance"
        );
        // Below the floor nothing is judged, however uneven.
        let mut idle = Watch::new(1.25, Duration::ZERO, 1e6);
        assert!(!idle.observe(at(0), &[9e5, 0.0]));
        assert!(idle.observe(at(0), &[2e6, 0.0]));
        // Within the threshold: 1.2 x the mean is not imbalance at 1.25.
        assert!(!idle.observe(at(0), &[6e6, 4e6]));
    }

    fn shard(id: u32, partitions: &[(&str, u32, f64)]) -> ShardLoad {
        ShardLoad {
            shard: id,
            cpu: None,
            partitions: partitions
                .iter()
                .map(|(topic, partition, rate)| PartitionLoad {
                    topic: topic.to_string(),
                    partition: *partition,
                    bytes: 0,
                    produce_bytes_per_s: *rate,
                    fetch_bytes_per_s: 0.0,
                })
                .collect(),
            busy: 0.0,
            in_flight: 0,
        }
    }

    fn spread(plan: &Plan) -> f64 {
        let max = plan.after.iter().cloned().fold(f64::MIN, f64::max);
        let min = plan.after.iter().cloned().fold(f64::MAX, f64::min);
        max - min
    }

    #[test]
    fn hot_partitions_on_one_shard_are_spread() {
        let hot: Vec<(&str, u32, f64)> = (0..4).map(|p| ("hot", p, 100.0)).collect();
        let shards = [shard(0, &hot), shard(1, &[])];
        let plan = plan(&shards, BalanceBy::Load);
        assert_eq!(plan.before, vec![400.0, 0.0]);
        assert_eq!(plan.after, vec![200.0, 200.0]);
        assert_eq!(plan.moves.len(), 2);
        assert!(plan
            .moves
            .iter()
            .all(|m| m.from_shard == 0 && m.to_shard == 1));
    }

    #[test]
    fn counts_even_out_to_within_one() {
        let many: Vec<(&str, u32, f64)> = (0..7).map(|p| ("t", p, 0.0)).collect();
        let shards = [shard(0, &many), shard(1, &[]), shard(2, &[("u", 0, 0.0)])];
        let plan = plan(&shards, BalanceBy::Count);
        assert_eq!(plan.before, vec![7.0, 0.0, 1.0]);
        assert!(spread(&plan) <= 1.0, "{:?}", plan.after);
        assert_eq!(plan.after.iter().sum::<f64>(), 8.0);
        assert_eq!(plan.moves.len(), 4, "{:?}", plan.moves);
    }

    #[test]
    fn a_balanced_pool_or_an_idle_one_plans_nothing() {
        let even = [
            shard(0, &[("t", 0, 50.0), ("t", 2, 10.0)]),
            shard(1, &[("t", 1, 60.0)]),
        ];
        assert!(plan(&even, BalanceBy::Load).moves.is_empty());
        let idle = [shard(0, &[("t", 0, 0.0), ("t", 1, 0.0)]), shard(1, &[])];
        assert!(plan(&idle, BalanceBy::Load).moves.is_empty());
        assert_eq!(
            plan(&[shard(0, &[("t", 0, 9.0)])], BalanceBy::Load).moves,
            vec![]
        );
    }

    #[test]
    fn a_partition_as_heavy_as_the_gap_stays() {
        // Moving the 90 would only make shard 1 the busiest (175).
        let shards = [
            shard(0, &[("big", 0, 90.0), ("small", 0, 10.0)]),
            shard(1, &[("other", 0, 85.0)]),
        ];
        let plan = plan(&shards, BalanceBy::Load);
        assert_eq!(
            plan.moves,
            vec![PlannedMove {
                topic: "small".into(),
                partition: 0,
                from_shard: 0,
                to_shard: 1
            }]
        );
        assert_eq!(plan.after, vec![90.0, 95.0]);
    }

    #[test]
    fn every_plan_never_raises_the_busiest_shard_and_moves_each_partition_once() {
        // A deterministic spread of shapes: shard counts 1..=4, skewed rates.
        for shards_n in 1..=4u32 {
            for seed in 0..50u64 {
                let mut x = seed * 2_654_435_761 + u64::from(shards_n);
                let mut next = || {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x
                };
                let shards: Vec<ShardLoad> = (0..shards_n)
                    .map(|s| {
                        let n = next() % 6;
                        let parts: Vec<(String, u32, f64)> = (0..n as u32)
                            .map(|p| (format!("s{s}"), p, (next() % 1000) as f64))
                            .collect();
                        let refs: Vec<(&str, u32, f64)> =
                            parts.iter().map(|(t, p, r)| (t.as_str(), *p, *r)).collect();
                        shard(s, &refs)
                    })
                    .collect();
                let plan = plan(&shards, BalanceBy::Load);
                let max = |v: &[f64]| v.iter().cloned().fold(0.0, f64::max);
                assert!(max(&plan.after) <= max(&plan.before), "{plan:?}");
                let mut seen = std::collections::BTreeSet::new();
                for m in &plan.moves {
                    assert!(seen.insert((m.topic.clone(), m.partition)), "{plan:?}");
                    assert_ne!(m.from_shard, m.to_shard);
                }
                let total = |v: &[f64]| v.iter().sum::<f64>();
                assert!((total(&plan.after) - total(&plan.before)).abs() < 1e-6);
            }
        }
    }
}
