//! Client quota enforcement on the router: how much a client used, how
//! long it must wait, and the `throttle_time_ms` its answers carry.
//!
//! Layer: runtime (see the crate docs): each shard keeps its router's
//! sensors, and reads the quotas from the shard's metadata replica.
//!
//! Why a token bucket per sensor: a quota is a rate, and a bucket that
//! refills at the quota and lets a client run into debt turns any mix of
//! request sizes into an exact long-run rate: a client that used `debt`
//! bytes more than its quota allowed waits `debt / rate` seconds, then
//! its next request is admitted. Kafka's own sampled-window sensors give
//! the same long-run rate with more state per client. The bucket starts
//! empty, so the quota holds from a client's first request; credit saved
//! while idle is capped at [`QUOTA_BURST_MS`] of the rate.
//!
//! Who shares a sensor (Kafka's rule): the clients that the same
//! configured entity applies to and that share the names the entity
//! names. A quota on `user=alice` is one sensor for every client of alice;
//! a quota on `user=<default>` is one sensor per user.
//!
//! How a throttle is applied (KIP-219): the answer goes out at once with
//! `throttle_time_ms`, then the connection is muted, its socket not read,
//! for that long; a client that honours the field waits on its side too,
//! one that ignores it is held back by the mute. Sensors are per router
//! shard: with `--router-cores all` a client's connections may land on
//! several routers, so each enforces its share of the quota (the quota
//! divided by the routers), as Kafka brokers each enforce theirs.
//!
//! Cost when no quota is configured: one check of an empty map per
//! request.

use crate::runtime::ShardClient;
use kafka_protocol::messages::{ApiKey, ResponseKind};
use ringlog_engine::meta::quota::{CONSUMER_BYTE_RATE, PRODUCER_BYTE_RATE, REQUEST_PERCENTAGE};
use ringlog_engine::meta::{QuotaEntity, QuotaName};
use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Credit a client can save while idle: this much time at its rate.
pub const QUOTA_BURST_MS: u64 = 1_000;
/// Longest single throttle; a client deeper in debt is throttled again on
/// its next request.
pub const THROTTLE_MS_MAX: u64 = 30_000;
/// Sensors one router keeps; when full, the least recently used goes.
pub const SENSORS_MAX: usize = 16_384;
/// Microseconds of router time per second that `request_percentage` 100
/// stands for: all of one thread.
const THREAD_US_PER_S: f64 = 1_000_000.0;

/// What a request used, by quota key.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    /// Bytes of a Produce request.
    pub produced_bytes: u64,
    /// Bytes of a Fetch answer.
    pub fetched_bytes: u64,
    /// The router's own time on the request: parsing it and encoding its
    /// answer (waits in the handlers, a long-polling Fetch or an fsync,
    /// are not work of the router's thread).
    pub router_time: Duration,
}

impl Usage {
    /// What a request of `key` with these sizes and router time used.
    pub fn of(key: ApiKey, request_bytes: usize, answer_bytes: usize, time: Duration) -> Usage {
        Usage {
            produced_bytes: if key == ApiKey::Produce {
                request_bytes as u64
            } else {
                0
            },
            fetched_bytes: if key == ApiKey::Fetch {
                answer_bytes as u64
            } else {
                0
            },
            router_time: time,
        }
    }
}

/// One sensor: the quota key, and the user and client id it counts (each
/// `None` when the matched entity does not name that part).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct SensorKey {
    key: &'static str,
    user: Option<String>,
    client_id: Option<String>,
}

/// A token bucket whose credit may go negative (debt).
#[derive(Clone, Copy, Debug)]
struct Bucket {
    credit: f64,
    updated: Instant,
}

impl Bucket {
    /// Refills at `rate` per second since the last use (up to the burst),
    /// takes `amount`, and returns how long the debt takes to repay.
    fn take(&mut self, amount: f64, rate: f64, now: Instant) -> Duration {
        debug_assert!(rate > 0.0 && rate.is_finite());
        let elapsed_s = now.saturating_duration_since(self.updated).as_secs_f64();
        let burst = rate * QUOTA_BURST_MS as f64 / 1000.0;
        self.credit = (self.credit + elapsed_s * rate).min(burst) - amount;
        self.updated = now;
        if self.credit >= 0.0 {
            return Duration::ZERO;
        }
        let wait_ms = (-self.credit / rate * 1000.0).ceil();
        Duration::from_millis((wait_ms as u64).min(THROTTLE_MS_MAX))
    }
}

/// One router's sensors.
#[derive(Default)]
pub struct Throttles {
    sensors: RefCell<HashMap<SensorKey, Bucket>>,
}

impl Throttles {
    /// Charges a request's `usage` to the sensors of the client (user and
    /// client id) that the configured quotas in `client`'s replica apply
    /// to; returns how long the client must wait (zero: not throttled).
    pub fn charge(
        &self,
        client: &ShardClient,
        user: &str,
        client_id: &str,
        usage: Usage,
        now: Instant,
    ) -> Duration {
        let routers = client.local().config.router_count().max(1);
        let charges = [
            (PRODUCER_BYTE_RATE, usage.produced_bytes as f64, 1.0),
            (CONSUMER_BYTE_RATE, usage.fetched_bytes as f64, 1.0),
            (
                REQUEST_PERCENTAGE,
                usage.router_time.as_secs_f64() * THREAD_US_PER_S,
                THREAD_US_PER_S / 100.0,
            ),
        ];
        client.local().meta.with(|state| {
            if state.client_quotas().is_empty() {
                return Duration::ZERO;
            }
            let mut wait = Duration::ZERO;
            for (key, amount, unit) in charges {
                if amount <= 0.0 {
                    continue;
                }
                let Some((entity, quota)) = state.client_quota(user, client_id, key) else {
                    continue;
                };
                let rate = quota * unit / routers as f64;
                let sensor = sensor_key(key, entity, user, client_id);
                wait = wait.max(self.take(sensor, amount, rate, now));
            }
            wait
        })
    }

    fn take(&self, sensor: SensorKey, amount: f64, rate: f64, now: Instant) -> Duration {
        let mut sensors = self.sensors.borrow_mut();
        if !sensors.contains_key(&sensor) && sensors.len() >= SENSORS_MAX {
            let oldest = sensors
                .iter()
                .min_by_key(|(_, bucket)| bucket.updated)
                .map(|(key, _)| key.clone());
            if let Some(oldest) = oldest {
                sensors.remove(&oldest);
            }
        }
        let bucket = sensors.entry(sensor).or_insert(Bucket {
            credit: 0.0,
            updated: now,
        });
        let wait = bucket.take(amount, rate, now);
        assert!(sensors.len() <= SENSORS_MAX);
        wait
    }

    /// Sensors kept now.
    pub fn len(&self) -> usize {
        self.sensors.borrow().len()
    }

    /// Whether no sensor is kept.
    pub fn is_empty(&self) -> bool {
        self.sensors.borrow().is_empty()
    }
}

/// The sensor of `key` for a client, given the configured entity whose
/// quota applies: the parts the entity names, with the client's own names
/// (a default entity's quota is per name, as in Kafka).
fn sensor_key(key: &'static str, entity: &QuotaEntity, user: &str, client_id: &str) -> SensorKey {
    let part = |part: &Option<QuotaName>, name: &str| part.as_ref().map(|_| name.to_string());
    SensorKey {
        key,
        user: part(&entity.user, user),
        client_id: part(&entity.client_id, client_id),
    }
}

/// The user a principal names, as quotas match it: `User:alice` is
/// `alice`; anything else (no SASL, no certificate) is `ANONYMOUS`, as in
/// Kafka.
pub fn quota_user(principal: &str) -> &str {
    principal.strip_prefix("User:").unwrap_or(principal)
}

/// The client id of a Produce request frame (header and body, without
/// the size prefix), read from its header without parsing the rest;
/// `None` for any other API or a header too short to hold one (the
/// request's parse then answers for it).
///
/// Request headers v1 and v2 both start `api_key: i16, api_version: i16,
/// correlation_id: i32, client_id: nullable string (i16 length, -1 for
/// null)`, so the client id's length is at bytes 8..10 and its text
/// follows from byte 10.
pub fn produce_client_id(frame: &[u8]) -> Option<&str> {
    const CLIENT_ID_AT: usize = 8;
    let api_key = i16::from_be_bytes(frame.get(..2)?.try_into().ok()?);
    if api_key != ApiKey::Produce as i16 {
        return None;
    }
    let len = i16::from_be_bytes(frame.get(CLIENT_ID_AT..CLIENT_ID_AT + 2)?.try_into().ok()?);
    let Ok(len) = usize::try_from(len) else {
        return Some(""); // a null client id
    };
    let start = CLIENT_ID_AT + 2;
    std::str::from_utf8(frame.get(start..start + len)?).ok()
}

/// Sets `throttle_time_ms` on an answer that has the field; `false` for
/// one that has none (the throttle is then the mute alone).
pub fn set_throttle_time(body: &mut ResponseKind, throttle_ms: i32) -> bool {
    macro_rules! set {
        ($($kind:ident),*) => {
            match body {
                $(ResponseKind::$kind(b) => {
                    b.throttle_time_ms = throttle_ms;
                    true
                })*
                _ => false,
            }
        };
    }
    set!(
        Produce,
        Fetch,
        ListOffsets,
        Metadata,
        OffsetCommit,
        OffsetFetch,
        FindCoordinator,
        JoinGroup,
        Heartbeat,
        LeaveGroup,
        SyncGroup,
        DescribeGroups,
        ListGroups,
        ApiVersions,
        CreateTopics,
        DeleteTopics,
        DeleteRecords,
        InitProducerId,
        DescribeConfigs,
        AlterConfigs,
        CreatePartitions,
        DeleteGroups,
        IncrementalAlterConfigs,
        OffsetDelete,
        DescribeClientQuotas,
        AlterClientQuotas,
        DescribeCluster
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_holds_a_client_to_its_rate() {
        let start = Instant::now();
        let mut bucket = Bucket {
            credit: 0.0,
            updated: start,
        };
        // 1000 bytes/s: a 500-byte request right away is 500 ms of debt.
        assert_eq!(
            bucket.take(500.0, 1000.0, start),
            Duration::from_millis(500)
        );
        // Waited out, the debt is repaid and the next request at the rate
        // is admitted.
        let later = start + Duration::from_millis(500);
        assert_eq!(bucket.take(0.0, 1000.0, later), Duration::ZERO);
        // A client that sends 10 x 100 bytes every 50 ms (2000 bytes/s)
        // owes half of it after a second.
        let mut now = later;
        let mut wait = Duration::ZERO;
        for _ in 0..20 {
            now += Duration::from_millis(50);
            wait = bucket.take(100.0, 1000.0, now);
        }
        assert_eq!(wait, Duration::from_millis(1000));
    }

    #[test]
    fn idle_credit_is_capped_at_the_burst() {
        let start = Instant::now();
        let mut bucket = Bucket {
            credit: 0.0,
            updated: start,
        };
        let much_later = start + Duration::from_secs(3600);
        // An hour idle saves one burst (1 s at 1000 bytes/s), no more.
        assert_eq!(bucket.take(1000.0, 1000.0, much_later), Duration::ZERO);
        assert_eq!(
            bucket.take(1000.0, 1000.0, much_later),
            Duration::from_millis(1000)
        );
    }

    #[test]
    fn a_throttle_is_capped() {
        let start = Instant::now();
        let mut bucket = Bucket {
            credit: 0.0,
            updated: start,
        };
        assert_eq!(
            bucket.take(1e9, 1.0, start),
            Duration::from_millis(THROTTLE_MS_MAX)
        );
    }

    #[test]
    fn sensors_are_bounded_and_the_oldest_goes() {
        let throttles = Throttles::default();
        let start = Instant::now();
        let sensor = |i: usize| SensorKey {
            key: PRODUCER_BYTE_RATE,
            user: Some(format!("user-{i}")),
            client_id: None,
        };
        for i in 0..SENSORS_MAX + 10 {
            let now = start + Duration::from_millis(i as u64);
            throttles.take(sensor(i), 1.0, 1e6, now);
        }
        assert_eq!(throttles.len(), SENSORS_MAX);
        let sensors = throttles.sensors.borrow();
        assert!(!sensors.contains_key(&sensor(0)), "the oldest went");
        assert!(sensors.contains_key(&sensor(SENSORS_MAX + 9)));
    }

    #[test]
    fn sensors_follow_the_matched_entity() {
        let user_default = QuotaEntity {
            user: Some(QuotaName::Default),
            client_id: None,
        };
        let key = sensor_key(PRODUCER_BYTE_RATE, &user_default, "alice", "app-1");
        assert_eq!(
            (key.user.as_deref(), key.client_id.as_deref()),
            (Some("alice"), None),
            "a default user quota is per user, shared by the user's clients"
        );
        let client = QuotaEntity {
            user: None,
            client_id: Some(QuotaName::Named("app-1".into())),
        };
        let key = sensor_key(CONSUMER_BYTE_RATE, &client, "alice", "app-1");
        assert_eq!(
            (key.user.as_deref(), key.client_id.as_deref()),
            (None, Some("app-1"))
        );
    }

    #[test]
    fn principals_become_quota_users() {
        assert_eq!(quota_user("User:alice"), "alice");
        assert_eq!(quota_user("User:ANONYMOUS"), "ANONYMOUS");
        assert_eq!(
            quota_user("User:CN=client,O=ringlog"),
            "CN=client,O=ringlog"
        );
    }

    #[test]
    fn usage_counts_by_api() {
        let time = Duration::from_millis(2);
        let produce = Usage::of(ApiKey::Produce, 1000, 50, time);
        assert_eq!((produce.produced_bytes, produce.fetched_bytes), (1000, 0));
        let fetch = Usage::of(ApiKey::Fetch, 80, 5000, time);
        assert_eq!((fetch.produced_bytes, fetch.fetched_bytes), (0, 5000));
        let metadata = Usage::of(ApiKey::Metadata, 80, 5000, time);
        assert_eq!((metadata.produced_bytes, metadata.fetched_bytes), (0, 0));
        assert_eq!(metadata.router_time, time);
    }

    #[test]
    fn a_produce_frame_shows_its_client_id() {
        let header = |key: i16, client: Option<&str>| {
            let mut frame = Vec::new();
            frame.extend_from_slice(&key.to_be_bytes());
            frame.extend_from_slice(&9i16.to_be_bytes());
            frame.extend_from_slice(&7i32.to_be_bytes());
            match client {
                Some(client) => {
                    frame.extend_from_slice(&(client.len() as i16).to_be_bytes());
                    frame.extend_from_slice(client.as_bytes());
                }
                None => frame.extend_from_slice(&(-1i16).to_be_bytes()),
            }
            frame.extend_from_slice(b"body");
            frame
        };
        assert_eq!(produce_client_id(&header(0, Some("app-1"))), Some("app-1"));
        assert_eq!(produce_client_id(&header(0, None)), Some(""));
        assert_eq!(
            produce_client_id(&header(1, Some("app-1"))),
            None,
            "a Fetch"
        );
        let full = header(0, Some("app-1"));
        for cut in 0..12 {
            assert_eq!(produce_client_id(&full[..cut]), None, "cut at {cut}");
        }
        let mut bad_utf8 = header(0, Some("ab"));
        bad_utf8[10] = 0xff;
        assert_eq!(produce_client_id(&bad_utf8), None);
    }

    #[test]
    fn answers_with_the_field_carry_the_throttle() {
        let mut produce = ResponseKind::Produce(Default::default());
        assert!(set_throttle_time(&mut produce, 250));
        let ResponseKind::Produce(body) = produce else {
            unreachable!()
        };
        assert_eq!(body.throttle_time_ms, 250);
        let mut sasl = ResponseKind::SaslHandshake(Default::default());
        assert!(!set_throttle_time(&mut sasl, 250));
    }
}
