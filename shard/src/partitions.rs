//! The partitions one shard owns: their logs, and the fetch waiters woken
//! when new records become readable.
//!
//! Everything here lives on the owning shard's executor and nowhere else;
//! other shards and the router reach it only through messages. That is what
//! lets the data path run without locks.

use crate::metrics::Metrics;
use ringlog_engine::io::dma::DmaStorage;
use ringlog_engine::partition::PartitionLog;
use ringlog_engine::{Clock, LogConfig};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::poll_fn;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::Duration;

/// Wakes fetches waiting for a partition's high watermark to move.
/// Waiters are bounded by the fetch requests in flight for the partition.
#[derive(Default)]
pub struct DataGate {
    generation: Cell<u64>,
    waiters: RefCell<Vec<Waker>>,
}

impl DataGate {
    /// The current generation; pass it to [`DataGate::wait_after`].
    pub fn generation(&self) -> u64 {
        self.generation.get()
    }

    /// Records that new data is readable and wakes every waiter.
    pub fn notify(&self) {
        self.generation.set(self.generation.get() + 1);
        for waker in self.waiters.borrow_mut().drain(..) {
            waker.wake();
        }
    }

    /// Resolves when a notify happens after `seen`, or after `timeout`.
    pub async fn wait_after(&self, seen: u64, timeout: Duration) -> bool {
        let notified = poll_fn(|cx| {
            if self.generation.get() != seen {
                Poll::Ready(true)
            } else {
                self.waiters.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            }
        });
        let timed_out = async {
            glommio::timer::sleep(timeout).await;
            false
        };
        futures_lite::future::or(notified, timed_out).await
    }
}

/// One partition on its shard.
pub struct Partition {
    /// The log.
    pub log: PartitionLog<DmaStorage>,
    /// Woken when the high watermark moves.
    pub gate: DataGate,
}

/// `<data>/topics/<topic>/<partition>`.
pub fn partition_dir(data_dir: &Path, topic: &str, partition: u32) -> PathBuf {
    data_dir
        .join("topics")
        .join(topic)
        .join(partition.to_string())
}

/// Topic name and partition index.
type PartitionKey = (Rc<str>, u32);

/// The partitions of one shard.
pub struct Partitions {
    data_dir: PathBuf,
    shard: usize,
    metrics: Arc<Metrics>,
    by_name: RefCell<HashMap<PartitionKey, Rc<Partition>>>,
}

impl Partitions {
    /// No partitions yet; `shard` labels the fsync metrics.
    pub fn new(data_dir: PathBuf, shard: usize, metrics: Arc<Metrics>) -> Self {
        Partitions {
            data_dir,
            shard,
            metrics,
            by_name: RefCell::new(HashMap::new()),
        }
    }

    /// The partition, if this shard owns it.
    pub fn get(&self, topic: &str, partition: u32) -> Option<Rc<Partition>> {
        self.by_name
            .borrow()
            .get(&(Rc::from(topic), partition))
            .cloned()
    }

    /// Opens (recovering) or creates a partition's log.
    pub async fn open(
        &self,
        topic: &str,
        partition: u32,
        config: LogConfig,
    ) -> ringlog_engine::Result<Rc<Partition>> {
        if let Some(existing) = self.get(topic, partition) {
            return Ok(existing);
        }
        let dir = partition_dir(&self.data_dir, topic, partition);
        let log = PartitionLog::open(DmaStorage, dir, config, Clock::System).await?;
        let (metrics, shard) = (self.metrics.clone(), self.shard);
        log.log()
            .set_sync_observer(Rc::new(move |elapsed| metrics.fsync_done(shard, elapsed)));
        let opened = Rc::new(Partition {
            log,
            gate: DataGate::default(),
        });
        self.by_name
            .borrow_mut()
            .insert((Rc::from(topic), partition), opened.clone());
        Ok(opened)
    }

    /// Closes a deleted partition's log and removes its directory. Reads
    /// still holding the log finish on the unlinked files.
    pub async fn remove(&self, topic: &str, partition: u32) -> ringlog_engine::Result<()> {
        let removed = self
            .by_name
            .borrow_mut()
            .remove(&(Rc::from(topic), partition));
        if let Some(p) = removed {
            if let Ok(p) = Rc::try_unwrap(p) {
                p.gate.notify();
                if let Err(e) = p.log.close().await {
                    tracing::warn!(%topic, partition, error = %e, "closing a deleted partition failed");
                }
            }
        }
        let dir = partition_dir(&self.data_dir, topic, partition);
        let removing = dir.clone();
        glommio::executor()
            .spawn_blocking(move || std::fs::remove_dir_all(&removing))
            .await
            .or_else(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Ok(()),
                _ => Err(ringlog_engine::Error::io(&dir, e)),
            })
    }

    /// Every partition, for maintenance.
    pub fn all(&self) -> Vec<Rc<Partition>> {
        self.by_name.borrow().values().cloned().collect()
    }

    /// Closes every log (final flush and fdatasync). Logs still referenced
    /// by a request in flight are synced instead and closed when dropped.
    pub async fn close_all(&self) {
        let partitions: Vec<_> = self.by_name.borrow_mut().drain().collect();
        for ((topic, index), partition) in partitions {
            let closed = match Rc::try_unwrap(partition) {
                Ok(p) => p.log.close().await,
                Err(shared) => shared.log.log().sync().await,
            };
            if let Err(e) = closed {
                tracing::error!(%topic, partition = index, error = %e, "closing partition log failed");
            }
        }
    }
}
