//! Each shard's searcher thread (`searcher-<shard>`): runs a search the
//! shard's indexer planned, opening and reading archives' indexes.
//!
//! Why a thread of its own: an archive's index is read through its
//! store (a GET per read on S3), and a cold search can make dozens of
//! reads. On the indexer thread those reads held up every tail's commit,
//! so one slow store made the shard's newest records late to become
//! searchable. The indexer now only takes a snapshot of what it holds in
//! RAM (its tails' and local segments' searchers, cheap handles on
//! immutable tantivy segments) and hands the search over; this thread
//! owns the opened archives and does the reads. It runs at normal
//! priority, unlike the indexers: a search is a client's request, and the
//! reads it waits on take no CPU.

use super::archives::{archive_offsets, ArchiveRef, Opened, OpenedArchives};
use super::indexer::merge_ranges;
use super::{search_each, Found, SearchError, SearchRequest, Searched};
use crate::tiered::StoreHandle;
use crossbeam_channel::{Receiver, Sender};
use std::collections::{BTreeMap, HashSet};
use std::ops::Range;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use tantivy::Searcher;

/// Searches waiting for one shard's searcher thread; a search arriving at
/// a full queue is answered unavailable at once.
pub const SEARCHER_QUEUE_JOBS_MAX: usize = 16;

/// One search of one shard, as its indexer planned it.
pub(super) struct SearchPlan {
    pub(super) topic: String,
    pub(super) request: SearchRequest,
    /// The wanted partitions' tails and local segments, as committed.
    pub(super) searchers: Vec<Searcher>,
    /// The wanted partitions' unindexed ranges.
    pub(super) unindexed: BTreeMap<u32, Vec<Range<u64>>>,
    /// The wanted partitions' archives that may hold a match (by the
    /// metadata log's timestamps and offsets), with their partition.
    pub(super) archives: Vec<(u32, ArchiveRef)>,
    /// The wanted partitions' first readable offsets: hits below are
    /// removed records an archive still holds.
    pub(super) starts: BTreeMap<u32, u64>,
    pub(super) reply: Sender<Result<Found, SearchError>>,
}

/// What a shard's searcher thread shares with its indexer.
pub(super) struct SearcherShared {
    /// The shard's archive store, once the shard has started it.
    pub(super) store: Arc<OnceLock<StoreHandle>>,
    /// Every archive the shard's partitions have now: opened indexes of
    /// others (deleted by retention) are dropped before the next search.
    pub(super) live: Mutex<HashSet<String>>,
}

/// The searcher thread's loop; ends when the indexer, and with it the
/// sender, is gone.
pub(super) fn serve_searches(shard: usize, plans: &Receiver<SearchPlan>, shared: &SearcherShared) {
    let mut opened = OpenedArchives::default();
    for plan in plans {
        {
            let live = shared.live.lock().unwrap_or_else(PoisonError::into_inner);
            opened.retain(|key| live.contains(key));
        }
        let found = run(shard, &mut opened, shared.store.get(), &plan);
        // The asker may have given up; nobody to tell then.
        let _ = plan.reply.send(found);
    }
}

/// Opens the plan's archives (those not open yet), searches them with
/// the plan's searchers, and reports what could not be searched.
fn run(
    shard: usize,
    opened: &mut OpenedArchives,
    store: Option<&StoreHandle>,
    plan: &SearchPlan,
) -> Result<Found, SearchError> {
    let topic = plan.topic.as_str();
    let mut unindexed = plan.unindexed.clone();
    let mut searchers = plan.searchers.clone();
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
    let Searched { mut hits, failed } = search_each(&refs, &plan.request)?;
    for (index, e) in failed {
        // Tails and local indexes are in RAM and checked when built;
        // only an archive's index reads (and checks) bytes on demand.
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
