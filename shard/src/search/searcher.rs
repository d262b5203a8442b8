//! Each shard's searcher thread (`searcher-<shard>`): plans and runs
//! every search of the shard, opening and reading archives' indexes.
//!
//! Why a thread of its own: an archive's index is read through its
//! store (a GET per read on S3), and a cold search can make dozens of
//! reads. On the indexer thread those reads held up every tail's commit,
//! so one slow store made the shard's newest records late to become
//! searchable. It runs at normal priority, unlike the indexers: a search
//! is a client's request.
//!
//! Why it plans on its own: the indexer runs under `SCHED_IDLE`, so on a
//! host whose cores the shards keep busy it may not run for seconds, and
//! a search that waited for it to plan timed out (HTTP 503) exactly when
//! the broker was busiest. The indexer instead publishes, at each tail
//! commit and whenever a partition's indexes change, a [`PartitionView`]
//! (its tail's and local segments' searchers: cheap handles on immutable
//! tantivy segments; its archives and its start), in an order that keeps
//! every record either in a view or in the unindexed ranges; the searcher
//! plans from the views. A search then needs no CPU from the indexer.

use super::archives::{archive_offsets, may_match, ArchiveRef, Opened, OpenedArchives};
use super::indexer::{merge_ranges, PartitionKey, Unindexed};
use super::{search_each, Found, SearchError, SearchRequest, Searched};
use crate::tiered::StoreHandle;
use crossbeam_channel::{Receiver, Sender};
use std::collections::{BTreeMap, HashSet};
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use tantivy::Searcher;

/// Searches waiting for one shard's searcher thread; a search arriving at
/// a full queue is answered unavailable at once.
pub const SEARCHER_QUEUE_JOBS_MAX: usize = 16;

/// One search of one shard's partitions of `topic`.
pub(super) struct SearchJob {
    pub(super) topic: String,
    pub(super) request: SearchRequest,
    pub(super) reply: Sender<Result<Found, SearchError>>,
}

/// What a partition can be searched through, as its indexer last
/// published it.
#[derive(Clone, Default)]
pub(super) struct PartitionView {
    /// Its tail, as of the last commit published.
    pub(super) tail: Option<Searcher>,
    /// Its local sealed segments' indexes, with their offsets.
    pub(super) local: Vec<(Range<u64>, Searcher)>,
    /// Its archives, oldest first.
    pub(super) archives: Vec<ArchiveRef>,
    /// Its first readable offset at the last maintenance pass: hits
    /// below are removed records an archive still holds.
    pub(super) start: Option<u64>,
}

/// What a shard's searcher thread shares with its indexer.
pub(super) struct SearcherShared {
    /// The shard's archive store, once the shard has started it.
    pub(super) store: Arc<OnceLock<StoreHandle>>,
    /// Every partition the indexer knows, as last published.
    pub(super) views: Mutex<BTreeMap<PartitionKey, PartitionView>>,
    /// What the shard's partitions have unindexed.
    pub(super) unindexed: Arc<Unindexed>,
}

impl SearcherShared {
    pub(super) fn views(&self) -> MutexGuard<'_, BTreeMap<PartitionKey, PartitionView>> {
        // Views are replaced whole under the lock: a poisoned map is whole.
        self.views.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One search of one shard, planned from the published views.
struct SearchPlan {
    /// The wanted partitions' tails, as committed.
    tails: Vec<Searcher>,
    /// The wanted partitions' local segments' indexes: partition, offsets.
    local: Vec<(u32, Range<u64>, Searcher)>,
    /// The wanted partitions' unindexed ranges.
    unindexed: BTreeMap<u32, Vec<Range<u64>>>,
    /// The wanted partitions' archives that may hold a match (by the
    /// metadata log's timestamps and offsets), with their partition.
    archives: Vec<(u32, ArchiveRef)>,
    /// The wanted partitions' first readable offsets.
    starts: BTreeMap<u32, u64>,
}

/// The plan of `job`, and every archive the shard's partitions have now
/// (opened indexes of others, deleted by retention, are dropped).
fn plan(shared: &SearcherShared, job: &SearchJob) -> (SearchPlan, HashSet<String>) {
    let request = &job.request;
    let wanted =
        |(t, p): &PartitionKey| *t == job.topic && request.partition.is_none_or(|want| want == *p);
    let mut plan = SearchPlan {
        tails: Vec::new(),
        local: Vec::new(),
        unindexed: BTreeMap::new(),
        archives: Vec::new(),
        starts: BTreeMap::new(),
    };
    let mut live = HashSet::new();
    for (key, view) in shared.views().iter() {
        live.extend(view.archives.iter().map(|a| a.key.clone()));
        if !wanted(key) {
            continue;
        }
        plan.tails.extend(view.tail.iter().cloned());
        plan.local.extend(
            view.local
                .iter()
                .map(|(offsets, searcher)| (key.1, offsets.clone(), searcher.clone())),
        );
        plan.archives.extend(
            view.archives
                .iter()
                .filter(|a| may_match(a, request))
                .map(|a| (key.1, a.clone())),
        );
        if let Some(start) = view.start {
            plan.starts.insert(key.1, start);
        }
    }
    plan.unindexed = shared
        .unindexed
        .lock()
        .iter()
        .filter(|(key, _)| wanted(key))
        .map(|((_, p), ranges)| (*p, ranges.clone()))
        .collect();
    (plan, live)
}

/// The searcher thread's loop; ends when the indexer, and with it the
/// sender, is gone.
pub(super) fn serve_searches(shard: usize, jobs: &Receiver<SearchJob>, shared: &SearcherShared) {
    let mut opened = OpenedArchives::default();
    for job in jobs {
        let (plan, live) = plan(shared, &job);
        opened.retain(|key| live.contains(key));
        let found = run(shard, &mut opened, shared.store.get(), &job, &plan);
        // The asker may have given up; nobody to tell then.
        let _ = job.reply.send(found);
    }
}

/// Opens the plan's archives (those not open yet), searches them with
/// the plan's searchers, and reports what could not be searched.
fn run(
    shard: usize,
    opened: &mut OpenedArchives,
    store: Option<&StoreHandle>,
    job: &SearchJob,
    plan: &SearchPlan,
) -> Result<Found, SearchError> {
    let topic = job.topic.as_str();
    let mut unindexed = plan.unindexed.clone();
    let mut searchers = plan.tails.clone();
    let first_local = searchers.len();
    searchers.extend(plan.local.iter().map(|(_, _, searcher)| searcher.clone()));
    let first_archive = searchers.len();
    // The archive behind each searcher from `first_archive` on.
    let mut searched_archives: Vec<(u32, &ArchiveRef)> = Vec::new();
    for (partition, archive) in &plan.archives {
        let opening = match store {
            Some(store) => opened.open(store, archive),
            None => Err("this broker reads no archives (--archive off)".to_string()),
        };
        match opening.as_deref() {
            Ok(Opened::Index(index)) => {
                searchers.push(index.searcher());
                searched_archives.push((*partition, archive));
                continue;
            }
            Ok(Opened::NoIndex) => {}
            Err(e) => {
                tracing::warn!(shard, topic, partition, object = archive.key, error = %e, "search: an archive's index cannot be read; its offsets are reported unindexed");
            }
        }
        unindexed
            .entry(*partition)
            .or_default()
            .push(archive_offsets(archive));
    }
    let mut archives_searched = searched_archives.len() as u64;
    let refs: Vec<_> = searchers.iter().collect();
    let Searched { mut hits, failed } = search_each(&refs, &job.request)?;
    for (index, e) in failed {
        // Tails are in RAM; local and archived indexes read (and check)
        // their data on demand, from a scratch file or the store.
        if index < first_local {
            return Err(e);
        }
        if let Some((partition, offsets, _)) = plan.local.get(index - first_local) {
            tracing::warn!(shard, topic, partition, offsets = ?offsets, error = %e, "search: a local segment's index failed while searched; its offsets are reported unindexed");
            unindexed
                .entry(*partition)
                .or_default()
                .push(offsets.clone());
            continue;
        }
        let Some(&(partition, archive)) = index
            .checked_sub(first_archive)
            .and_then(|i| searched_archives.get(i))
        else {
            return Err(e);
        };
        tracing::warn!(shard, topic, partition, object = archive.key, error = %e, "search: an archive's index failed while searched; its offsets are reported unindexed");
        archives_searched -= 1;
        unindexed
            .entry(partition)
            .or_default()
            .push(archive_offsets(archive));
    }
    for ranges in unindexed.values_mut() {
        merge_ranges(ranges);
    }
    hits.retain(|hit| {
        plan.starts
            .get(&hit.partition)
            .is_none_or(|&start| hit.offset >= start)
    });
    Ok(Found {
        hits,
        unindexed,
        archives_searched,
    })
}
