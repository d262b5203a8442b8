//! The metadata log: an event-sourced record of every cluster metadata
//! change, the seed of all metadata (topics, partition counts, partition
//! placement on shards, topic configs, consumer group generations and
//! committed offsets, allocated producer id blocks; later archives).
//!
//! ## Why event sourcing plus snapshots
//!
//! * **One mechanism for durability and distribution.** A change is one
//!   small event appended to a log; making the change durable is one
//!   fdatasync of that append, and telling the other shards is sending the
//!   same event. No in-place updates of a mutable metadata file, so no
//!   torn rewrites to recover from.
//! * **History for free.** `ringlog inspect meta` prints every change with
//!   its time, which is how an operator answers "who moved this partition".
//! * **The same segment machinery as partition data**: events are frames in
//!   segments of kind [`SegmentKind::Meta`], so crc32c framing, torn-tail
//!   recovery and the crash tests of [`Log`] cover the meta log too. One
//!   event per offset; the frame timestamp is the event time (ms).
//! * **Snapshots bound replay.** Replaying from offset 0 grows with history;
//!   a snapshot is the whole state at an applied offset, so open loads the
//!   newest valid snapshot and replays only the events after it.
//!
//! ## The durability rule: durable before applied
//!
//! [`MetaLog::append`] validates an event against the current state,
//! appends it, waits for the fdatasync that covers it, and only then
//! applies it to the in-memory state. So the state never shows a change a
//! crash could take back, and whatever a reader saw survives a restart. If
//! the append or its fdatasync fails, the event is not applied; the log
//! stops ([`Error::Poisoned`]) and after reopening the event is either
//! fully there (its bytes reached the disk) or absent — never half there,
//! and never anything that was not validated.
//!
//! Appends are validated in order under a one-permit semaphore, so the log
//! order is exactly the validation order and every logged event is valid
//! against the state before it (replay relies on that). Validation runs
//! against the *tail* state: the durable state plus every event appended
//! but not yet synced. The permit is released once the event is in the
//! write buffer, so appends that arrive while a fdatasync runs share the
//! next one (group commit: 64 concurrent offset commits cost one or two
//! fdatasyncs, not 64). After its sync, an append applies every event the
//! sync covered to the durable state, in log order, whichever task gets
//! there first. So readers ([`MetaLog::with_state`]) see only durable
//! events, always a prefix of the log.
//!
//! [`MetaLog::append_built`] goes one step further for events computed
//! from the state (a new topic's placement by shard load): the events are
//! built from the tail state under the append permit, so concurrent
//! builders each see the ones before them. [`MetaLog::with_tail_state`]
//! lets a caller precheck against the same state the append validates
//! against (a create of a name whose create is still syncing).
//!
//! The alternative — validate against the durable state only and append
//! concurrently — is wrong: two tasks could both validate "create topic
//! X", both get logged, and replay would then meet an event that does not
//! apply. The price of the tail state is a second copy of the state in
//! memory on the controller.
//!
//! ## Directory layout
//!
//! ```text
//! <meta dir>/log/                    segments of kind 2 (see crate::format)
//! <meta dir>/snapshots/<applied offset, 20 digits>.snap
//! ```
//!
//! ## Snapshot file `<applied offset, 20 digits>.snap`
//!
//! A 64-byte header (magic "RINGLSNP", version, applied offset, payload
//! length and crc32c; laid out in [`crate::format`], whose one snapshot
//! header codec also frames the producer snapshot) and then the rkyv
//! archive of [`MetaState`]: topics with their ids, partition placements
//! and configs; groups with their stored generation and committed
//! offsets; the producer id block end; archives; users' SCRAM
//! credentials; ACL bindings ([`acl`], version 5); and the applied offset
//! again. The file ends exactly at the end of the payload.
//!
//! A snapshot is written to `<name>.tmp`, fdatasync'ed, renamed into place
//! and the directory synced, so a crash leaves the old set of snapshots
//! plus at most a temp file (deleted at open). Open tries snapshots newest
//! first: one that fails any check (header crc, payload crc, rkyv
//! validation, state invariants, file name disagreeing with the header) is
//! skipped with a warning naming the file, falling back to an older one or
//! to a full replay. After each snapshot, log segments wholly below the
//! *oldest kept* snapshot are deleted, so restart cost follows the state
//! size, not the history, and the fallback still has every event it needs.
//! If no valid snapshot covers the events below the log start, open fails
//! with a corruption error instead of replaying a partial history.

pub mod acl;
mod event;
pub mod quota;
mod snapshot;
mod state;

pub use acl::{
    AclBinding, AclEntry, AclOperation, AclPatternType, AclPatterns, AclPermission,
    AclResourceType, Acls, ACLS_MAX, ACL_BINDINGS_PER_EVENT_MAX, CLUSTER_RESOURCE_NAME,
};
pub use event::{
    decode_event, encode_event, format_topic_id, AclsCreated, AclsDeleted, ArchiveSealed,
    ArchivedMetaEvent, ArchivesTrimmed, ClientQuotasAltered, GroupDeleted, GroupMemberRecord,
    GroupStored, MetaEvent, OffsetCommit, OffsetsCommitted, OffsetsDeleted, PartitionPlaced,
    PartitionsAdded, ProducerIdBlock, QuotaEntity, QuotaName, ShardsStarted, TopicConfigChanged,
    TopicCreated, TopicDeleted, UserScramCredential, UserScramCredentialDeleted,
    ARCHIVE_KEY_BYTES_MAX, GROUP_ID_BYTES_MAX, OFFSET_METADATA_BYTES_MAX,
};
pub use snapshot::{encode_snapshot_file, read_snapshot_file};
pub use state::{
    check_group_id, check_topic_name, check_user_name, scram_key_bytes, ArchiveRecord,
    CommittedOffset, GroupRecord, GroupState, MetaState, PartitionArchives, ScramCredential,
    TopicState, PARTITIONS_MAX, PRODUCER_ID_BLOCK_END_MAX, SCRAM_ITERATIONS_MAX,
    SCRAM_ITERATIONS_MIN, SCRAM_SALT_BYTES_MAX, TOPIC_NAME_BYTES_MAX, USER_NAME_BYTES_MAX,
};

use crate::clock::Clock;
use crate::error::{Corruption, Error, Result};
use crate::format::{
    parse_segment_file_name, SegmentKind, FILE_HEADER_BYTES, FOOTER_PAYLOAD_BYTES,
    FRAME_HEADER_BYTES, META_SNAPSHOT_EXTENSION,
};
use crate::io::{align_up, Storage, BLOCK_BYTES};
use crate::log::{FlushPolicy, Log, LogConfig, LogStats, ReadBatches};
use glommio::sync::Semaphore;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};

/// Bytes asked of [`Log::read`] per step of replay.
const REPLAY_READ_BYTES: usize = 1 << 20;
/// Smallest write-behind buffer of the meta log.
const WRITE_BUFFER_BYTES_MIN: usize = 1 << 20;

/// The log directory inside a meta directory.
pub fn log_dir(meta_dir: &Path) -> PathBuf {
    meta_dir.join("log")
}

/// The snapshot directory inside a meta directory.
pub fn snapshot_dir(meta_dir: &Path) -> PathBuf {
    meta_dir.join("snapshots")
}

/// Settings of a metadata log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetaConfig {
    /// Roll meta segments at this size.
    pub segment_bytes: u64,
    /// Largest encoded event.
    pub max_event_bytes: usize,
    /// Write a snapshot automatically after this many events since the last
    /// one; 0 turns automatic snapshots off. The append that crosses the
    /// interval writes it before returning (appends by other tasks carry
    /// on meanwhile).
    pub snapshot_interval_events: u64,
    /// Snapshots kept after writing one (the newest plus older fallbacks in
    /// case the newest rots); at least 1.
    pub snapshots_kept: usize,
}

impl Default for MetaConfig {
    fn default() -> Self {
        MetaConfig {
            segment_bytes: 64 << 20,
            max_event_bytes: 1 << 20,
            snapshot_interval_events: 100_000,
            snapshots_kept: 2,
        }
    }
}

impl MetaConfig {
    /// Checks the settings (and the log settings they imply).
    pub fn validate(&self) -> Result<()> {
        if self.snapshots_kept == 0 {
            return Err(Error::Config("snapshots_kept must be at least 1".into()));
        }
        self.log_config().validate()
    }

    /// The [`LogConfig`] the meta log runs with: segments of kind
    /// [`SegmentKind::Meta`], every append synced ([`FlushPolicy::Always`])
    /// and no retention (events are needed for replay; deleting segments
    /// below the oldest snapshot is future work).
    pub fn log_config(&self) -> LogConfig {
        let frame_max_bytes = (FRAME_HEADER_BYTES + self.max_event_bytes) as u64;
        let footer_frame_bytes = (FRAME_HEADER_BYTES + FOOTER_PAYLOAD_BYTES) as u64;
        let write_buffer_bytes = (align_up(frame_max_bytes + footer_frame_bytes) as usize
            + 2 * BLOCK_BYTES)
            .max(WRITE_BUFFER_BYTES_MIN);
        LogConfig {
            kind: SegmentKind::Meta,
            segment_bytes: self.segment_bytes,
            retention_bytes: None,
            retention_ms: None,
            write_buffer_bytes,
            max_payload_bytes: self.max_event_bytes,
            flush_policy: FlushPolicy::Always,
            ..LogConfig::default()
        }
    }
}

/// The metadata log: a [`Log`] of events plus the state they fold into.
/// Lives on one executor (the controller shard) and is used through
/// `&self` from many tasks; the state sits in a `RefCell` never borrowed
/// across an `.await`.
pub struct MetaLog<S: Storage> {
    storage: S,
    dir: PathBuf,
    snapshot_dir: PathBuf,
    config: MetaConfig,
    clock: Clock,
    log: Log<S>,
    /// The durable state: every event below the log's durable offset.
    state: RefCell<MetaState>,
    /// The durable state plus the appended, not yet durable events; what
    /// new events are validated against.
    tail: RefCell<MetaState>,
    /// Appended events not yet applied to `state`, in offset order, as
    /// encoded payloads. Bounded by the appends in flight.
    pending: RefCell<VecDeque<(u64, Vec<u8>)>>,
    /// Held from validation until the event is in the write buffer: see
    /// the module docs.
    append_permit: Semaphore,
    /// One snapshot write at a time.
    snapshot_permit: Semaphore,
    /// Applied offset of the newest valid snapshot on disk.
    snapshot_offset: Cell<Option<u64>>,
    /// Applied offset at which the next automatic snapshot is due.
    next_snapshot_at: Cell<u64>,
}

impl<S: Storage> MetaLog<S> {
    /// Opens (recovering) or creates the metadata log in `meta_dir`: opens
    /// the event log at `<meta_dir>/log`, loads the newest snapshot that
    /// validates, and replays the events after it.
    pub async fn open(
        storage: S,
        meta_dir: impl Into<PathBuf>,
        config: MetaConfig,
        clock: Clock,
    ) -> Result<Self> {
        config.validate()?;
        let dir = meta_dir.into();
        let log = Log::open(
            storage.clone(),
            log_dir(&dir),
            config.log_config(),
            clock.clone(),
        )
        .await?;
        let snapshot_dir = snapshot_dir(&dir);
        storage
            .create_dir_all(&snapshot_dir)
            .await
            .map_err(|e| Error::io(&snapshot_dir, e))?;
        storage
            .sync_dir(&dir)
            .await
            .map_err(|e| Error::io(&dir, e))?;
        let (state, snapshot_offset) =
            load_snapshot(&storage, &snapshot_dir, log.next_offset()).await?;
        let mut state = state.unwrap_or_default();
        if state.applied_offset() < log.log_start_offset() {
            // Segments below the log start were deleted because a snapshot
            // covered them; without a valid snapshot at or above the log
            // start, those events are gone.
            return Err(Error::corrupt(
                snapshot_dir.clone(),
                0,
                Corruption::Malformed(
                    "no valid snapshot covers the metadata events below the log start",
                ),
            ));
        }
        replay(&log, &mut state).await?;
        assert_eq!(
            state.applied_offset(),
            log.next_offset(),
            "replay reaches the log end"
        );
        tracing::info!(
            dir = %dir.display(),
            snapshot_offset = ?snapshot_offset,
            applied_offset = state.applied_offset(),
            topics = state.topic_count(),
            "metadata log opened"
        );
        let next_snapshot_at = snapshot_offset
            .unwrap_or(0)
            .saturating_add(config.snapshot_interval_events);
        Ok(MetaLog {
            storage,
            dir,
            snapshot_dir,
            config,
            clock,
            log,
            tail: RefCell::new(state.clone()),
            state: RefCell::new(state),
            pending: RefCell::new(VecDeque::new()),
            append_permit: Semaphore::new(1),
            snapshot_permit: Semaphore::new(1),
            snapshot_offset: Cell::new(snapshot_offset),
            next_snapshot_at: Cell::new(next_snapshot_at),
        })
    }

    /// Validates `event` against the state plus the events appended before
    /// it, appends it, waits until it is durable (sharing the fdatasync
    /// with concurrent appends) and applies it. Returns its offset. A
    /// conflicting event fails with [`Error::Rejected`] and changes nothing;
    /// on any other error the event is not applied (see the module docs
    /// for what a reopen finds).
    pub async fn append(&self, event: &MetaEvent) -> Result<u64> {
        self.append_all(std::slice::from_ref(event)).await
    }

    /// Appends `events` back to back, each validated against the state the
    /// ones before it leave, with one fdatasync for all of them (a topic
    /// creation and its placements). Returns the offset of the first. If
    /// event *k* is rejected, events before it are still made durable and
    /// applied (each was valid), and the rejection is returned.
    pub async fn append_all(&self, events: &[MetaEvent]) -> Result<u64> {
        assert!(!events.is_empty(), "append at least one event");
        let encoded = encode_checked(events)?;
        let permit = self
            .append_permit
            .acquire_permit(1)
            .await
            .expect("append permit never closed");
        self.append_encoded(permit, encoded).await
    }

    /// Builds events from the tail state and appends them like
    /// [`MetaLog::append_all`]; returns the offset of the first and the
    /// events. `build` runs under the append permit, so nothing is appended
    /// between the state it sees and its events: what it computes from that
    /// state (a topic's partition placement by shard load) holds in the log,
    /// however many appends run concurrently.
    pub async fn append_built(
        &self,
        build: impl FnOnce(&MetaState) -> Vec<MetaEvent>,
    ) -> Result<(u64, Vec<MetaEvent>)> {
        let permit = self
            .append_permit
            .acquire_permit(1)
            .await
            .expect("append permit never closed");
        let events = build(&self.tail.borrow());
        assert!(!events.is_empty(), "append at least one event");
        let encoded = encode_checked(&events)?;
        let first = self.append_encoded(permit, encoded).await?;
        Ok((first, events))
    }

    /// Validates and appends encoded events under `permit`, releases it
    /// once they are buffered, waits for their fdatasync and applies them.
    async fn append_encoded(
        &self,
        permit: glommio::sync::Permit<'_>,
        encoded: Vec<Vec<u8>>,
    ) -> Result<u64> {
        let mut first = None;
        let mut end = 0;
        let mut rejected = None;
        {
            let _permit = permit;
            for bytes in encoded {
                let archived = event::access_event(&bytes).expect("checked above");
                let expected = {
                    let tail = self.tail.borrow();
                    if self.log.next_offset() != tail.applied_offset() {
                        // An earlier append failed after reaching the log:
                        // its outcome is unknown until a reopen replays it.
                        return Err(Error::Poisoned {
                            path: self.dir.clone(),
                        });
                    }
                    if let Err(why) = tail.check_archived(archived) {
                        rejected = Some(Error::Rejected(why));
                        break;
                    }
                    tail.applied_offset()
                };
                let event_ms = self.clock.now_ms();
                let offset = self
                    .log
                    .append_with(bytes.len(), 1, event_ms, |dst, _| {
                        dst.copy_from_slice(&bytes)
                    })
                    .await?;
                assert_eq!(offset, expected, "appends are serialized");
                if let Err(why) = self.tail.borrow_mut().apply_archived(offset, archived) {
                    panic!(
                        "metadata event validated under the append permit no longer applies: {why}"
                    );
                }
                self.pending.borrow_mut().push_back((offset, bytes));
                first.get_or_insert(offset);
                end = offset + 1;
            }
        }
        let Some(first) = first else {
            return Err(rejected.expect("no event appended means the first was rejected"));
        };
        self.log.sync_to(end).await?;
        self.apply_durable();
        assert!(self.applied_offset() >= end, "synced events are applied");
        if self.config.snapshot_interval_events > 0 && end >= self.next_snapshot_at.get() {
            // The events are durable and applied: a failed snapshot does not
            // fail the append; it is retried one interval later.
            if let Err(e) = self.auto_snapshot().await {
                tracing::warn!(dir = %self.dir.display(), error = %e, "automatic metadata snapshot failed");
                let applied = self.applied_offset();
                self.next_snapshot_at
                    .set(applied.saturating_add(self.config.snapshot_interval_events));
            }
        }
        match rejected {
            Some(e) => Err(e),
            None => Ok(first),
        }
    }

    /// Applies every pending event the log has made durable, in order.
    fn apply_durable(&self) {
        let durable = self.log.durable_offset();
        let mut pending = self.pending.borrow_mut();
        let mut state = self.state.borrow_mut();
        while let Some((offset, bytes)) = pending.front() {
            if *offset >= durable {
                break;
            }
            let archived = event::access_event(bytes).expect("pending events were validated");
            if let Err(why) = state.apply_archived(*offset, archived) {
                panic!("a durable metadata event does not apply in log order: {why}");
            }
            pending.pop_front();
        }
    }

    async fn auto_snapshot(&self) -> Result<()> {
        let _permit = self
            .snapshot_permit
            .acquire_permit(1)
            .await
            .expect("snapshot permit never closed");
        if self.applied_offset() < self.next_snapshot_at.get() {
            return Ok(()); // a concurrent caller wrote one meanwhile
        }
        self.snapshot_locked().await.map(|_| ())
    }

    /// Writes a snapshot at the current applied offset (unless the newest
    /// valid snapshot is already there), then deletes all but the newest
    /// [`MetaConfig::snapshots_kept`] snapshots. Returns the snapshot's
    /// applied offset. Log segments wholly below the oldest kept snapshot are
    /// deleted: restart time depends on the state size, not on history.
    pub async fn snapshot(&self) -> Result<u64> {
        let _permit = self
            .snapshot_permit
            .acquire_permit(1)
            .await
            .expect("snapshot permit never closed");
        self.snapshot_locked().await
    }

    async fn snapshot_locked(&self) -> Result<u64> {
        let offset = self.applied_offset();
        if self.snapshot_offset.get() == Some(offset) {
            return Ok(offset);
        }
        // Encoded in one synchronous step, so it is the state at `offset`.
        let image = encode_snapshot_file(&self.state.borrow());
        let path = snapshot::snapshot_path(&self.snapshot_dir, offset);
        let image = image.map_err(|why| Error::io(&path, std::io::Error::other(why)))?;
        snapshot::write_snapshot_file(&self.storage, &self.snapshot_dir, offset, &image)
            .await
            .map_err(|e| Error::io(&path, e))?;
        self.snapshot_offset.set(Some(offset));
        self.next_snapshot_at
            .set(offset.saturating_add(self.config.snapshot_interval_events));
        tracing::debug!(file = %path.display(), bytes = image.len(), "metadata snapshot written");
        let oldest_kept = self.prune_snapshots(offset).await?;
        // Keep the events after the oldest kept snapshot, so falling back
        // to it (if the newest rots) still replays to the end.
        self.log.delete_segments_below(oldest_kept).await?;
        Ok(offset)
    }

    /// Deletes snapshots older than the newest `snapshots_kept` at or below
    /// `newest`; returns the offset of the oldest snapshot kept.
    async fn prune_snapshots(&self, newest: u64) -> Result<u64> {
        let dir = &self.snapshot_dir;
        let names = self
            .storage
            .list_dir(dir)
            .await
            .map_err(|e| Error::io(dir, e))?;
        let mut offsets: Vec<u64> = names
            .iter()
            .filter_map(|n| parse_segment_file_name(n, META_SNAPSHOT_EXTENSION))
            .filter(|&o| o <= newest)
            .collect();
        offsets.sort_unstable_by(|a, b| b.cmp(a));
        let kept = self.config.snapshots_kept.clamp(1, offsets.len().max(1));
        let oldest_kept = offsets.get(kept - 1).copied().unwrap_or(newest);
        let doomed = offsets.get(kept..).unwrap_or_default();
        for &offset in doomed {
            let path = snapshot::snapshot_path(dir, offset);
            match self.storage.remove(&path).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
        if !doomed.is_empty() {
            self.storage
                .sync_dir(dir)
                .await
                .map_err(|e| Error::io(dir, e))?;
        }
        Ok(oldest_kept)
    }

    /// Runs `f` on the current state. Do not hold on to anything across an
    /// `.await` (the borrow ends when `f` returns).
    pub fn with_state<T>(&self, f: impl FnOnce(&MetaState) -> T) -> T {
        f(&self.state.borrow())
    }

    /// Runs `f` on the tail state: the durable state plus the events
    /// appended but not yet durable — what the next append is validated
    /// against. For prechecks that should agree with that validation (a
    /// second create of a name whose first create is still syncing); never
    /// for answers, which must show only durable events.
    pub fn with_tail_state<T>(&self, f: impl FnOnce(&MetaState) -> T) -> T {
        f(&self.tail.borrow())
    }

    /// A copy of the current state.
    pub fn state(&self) -> MetaState {
        self.state.borrow().clone()
    }

    /// The offset of the next event; everything below is durable and
    /// applied.
    pub fn applied_offset(&self) -> u64 {
        self.state.borrow().applied_offset()
    }

    /// The event log's end offset (equals [`MetaLog::applied_offset`]
    /// unless an append failed and the log is stopped).
    pub fn log_end_offset(&self) -> u64 {
        self.log.next_offset()
    }

    /// Applied offset of the newest valid snapshot known on disk.
    pub fn snapshot_offset(&self) -> Option<u64> {
        self.snapshot_offset.get()
    }

    /// The meta directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Counters of the event log.
    pub fn log_stats(&self) -> LogStats {
        self.log.stats()
    }

    /// Closes the event log after a final sync. Does not snapshot.
    pub async fn close(self) -> Result<()> {
        self.log.close().await
    }
}

/// Encodes each event and checks that the encoding reads back.
fn encode_checked(events: &[MetaEvent]) -> Result<Vec<Vec<u8>>> {
    let mut encoded = Vec::with_capacity(events.len());
    for event in events {
        let bytes = encode_event(event).map_err(Error::Rejected)?;
        event::access_event(&bytes)
            .map_err(|c| Error::Rejected(format!("event fails its own encoding: {c}")))?;
        encoded.push(bytes);
    }
    Ok(encoded)
}

/// The newest snapshot that validates, with its offset. Corrupt snapshots
/// are skipped with a warning; I/O errors fail the open.
async fn load_snapshot<S: Storage>(
    storage: &S,
    dir: &Path,
    log_end: u64,
) -> Result<(Option<MetaState>, Option<u64>)> {
    let names = storage.list_dir(dir).await.map_err(|e| Error::io(dir, e))?;
    let mut offsets = Vec::new();
    for name in &names {
        if name.ends_with(snapshot::TMP_SUFFIX) {
            let path = dir.join(name);
            tracing::debug!(file = %path.display(), "removing interrupted snapshot");
            storage
                .remove(&path)
                .await
                .map_err(|e| Error::io(&path, e))?;
        } else if let Some(offset) = parse_segment_file_name(name, META_SNAPSHOT_EXTENSION) {
            offsets.push(offset);
        }
    }
    offsets.sort_unstable_by(|a, b| b.cmp(a));
    for offset in offsets {
        let path = snapshot::snapshot_path(dir, offset);
        let bytes = snapshot::read_whole_file(storage, &path)
            .await
            .map_err(|e| Error::io(&path, e))?;
        let (applied_offset, state) = match read_snapshot_file(&bytes) {
            Ok(found) => found,
            Err(corruption) => {
                tracing::warn!(file = %path.display(), %corruption, "skipping corrupt metadata snapshot");
                continue;
            }
        };
        if applied_offset != offset {
            tracing::warn!(file = %path.display(), applied_offset, "skipping metadata snapshot whose name disagrees with its header");
            continue;
        }
        if applied_offset > log_end {
            // Snapshots hold only durable events, so the log lost
            // acknowledged events: refuse rather than reuse their offsets.
            return Err(Error::corrupt(
                &path,
                16,
                Corruption::Malformed("snapshot is ahead of the metadata log end"),
            ));
        }
        return Ok((Some(state), Some(applied_offset)));
    }
    Ok((None, None))
}

/// Applies every event from `state.applied_offset()` to the log end.
///
/// Reads are pipelined: while one chunk is applied, the read of the next
/// is already at the disk (the apply step first yields so the reactor
/// submits it), so replay runs at the speed of the slower of the two
/// rather than their sum — and other tasks get a turn between chunks.
async fn replay<S: Storage>(log: &Log<S>, state: &mut MetaState) -> Result<()> {
    let end = log.next_offset();
    if state.applied_offset() >= end {
        return Ok(());
    }
    let mut batches = log.read(state.applied_offset(), REPLAY_READ_BYTES).await?;
    loop {
        let Some(next) = batches.next_offset() else {
            let offset = state.applied_offset();
            let (path, position) = locate_frame(log, offset).await;
            return Err(Error::corrupt(
                path,
                position,
                Corruption::Malformed("metadata log ends before its end offset"),
            ));
        };
        let prefetch = async {
            if next < end {
                Some(log.read(next, REPLAY_READ_BYTES).await)
            } else {
                None
            }
        };
        let apply = async {
            glommio::executor().yield_task_queue_now().await;
            apply_batches(state, &batches)
        };
        let (read, applied) = futures_lite::future::zip(prefetch, apply).await;
        if let Err((offset, corruption)) = applied {
            let (path, position) = locate_frame(log, offset).await;
            tracing::error!(file = %path.display(), position, offset, %corruption, "corrupt metadata event");
            return Err(Error::corrupt(path, position, corruption));
        }
        assert_eq!(
            state.applied_offset(),
            next,
            "a chunk applies every event it holds"
        );
        match read {
            Some(read) => batches = read?,
            None => return Ok(()),
        }
    }
}

/// Applies one chunk of frames; the offset and problem of the first bad
/// one on failure.
fn apply_batches<R: std::ops::Deref<Target = [u8]>>(
    state: &mut MetaState,
    batches: &ReadBatches<R>,
) -> std::result::Result<(), (u64, Corruption)> {
    for (frame, payload) in batches.iter() {
        let offset = state.applied_offset();
        if frame.base_offset != offset {
            let gap = Corruption::OffsetGap {
                expected: offset,
                found: frame.base_offset,
            };
            return Err((frame.base_offset, gap));
        }
        if frame.count != 1 {
            return Err((
                offset,
                Corruption::Malformed("metadata frame covers more than one offset"),
            ));
        }
        let archived = event::access_event(payload).map_err(|c| (offset, c))?;
        if let Err(why) = state.apply_archived(offset, archived) {
            tracing::error!(offset, %why, "metadata event conflicts with the replayed state");
            return Err((
                offset,
                Corruption::Malformed("metadata event conflicts with the state before it"),
            ));
        }
    }
    Ok(())
}

/// The segment file and byte position of the frame holding `offset`, for
/// error reports (cold path: rescans the segment from its start). Falls
/// back to the log directory and position 0 when it cannot tell.
async fn locate_frame<S: Storage>(log: &Log<S>, offset: u64) -> (PathBuf, u64) {
    let Some(segment) = log
        .segments()
        .into_iter()
        .find(|s| s.base_offset <= offset && offset < s.end_offset.max(s.base_offset + 1))
    else {
        return (log.dir().to_path_buf(), 0);
    };
    // Frames of a segment are contiguous from its header on, and each read
    // returns whole consecutive frames from the requested offset.
    let mut position = FILE_HEADER_BYTES as u64;
    let mut next = segment.base_offset;
    while next < segment.end_offset {
        let Ok(batches) = log.read(next, REPLAY_READ_BYTES).await else {
            break;
        };
        if batches.is_empty() {
            break;
        }
        for (frame, payload) in batches.iter() {
            if frame.base_offset == offset {
                return (segment.path, position);
            }
            position += (FRAME_HEADER_BYTES + payload.len()) as u64;
            next = frame.base_offset + frame.count as u64;
        }
    }
    (segment.path, 0)
}
