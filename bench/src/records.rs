//! Kafka RecordBatch v2 as the load generator writes and reads it.
//!
//! Why the bench encodes records itself instead of building
//! `kafka_protocol::records::Record` values: at hundreds of thousands of
//! records per second the generator must cost little next to the broker
//! it measures. A record is encoded straight into the batch buffer (one
//! copy of its value, no per-record allocation); the header, the CRC-32C
//! and the codec are applied once per batch. Compression uses
//! `kafka-protocol`'s codecs (gzip, Kafka's xerial-framed snappy, LZ4
//! frames, zstd), so batches are exactly what Kafka clients send.
//! Reading back (end-to-end latency) uses `kafka-protocol`'s decoder,
//! which handles every codec.
//!
//! What a record holds: the value starts with the wall-clock time the
//! record was *due* (nanoseconds since the Unix epoch, big-endian u64), so
//! a consumer anywhere on the host computes produce-to-consume latency
//! without coordinated omission; the rest is random upper-case letters
//! from a shared pool (as `kafka-producer-perf-test` generates), which
//! compresses like text rather than like zeros or noise. Keys, when
//! `--key-cardinality` asks for them, are zero-padded decimal numbers.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};
use kafka_protocol::records::RecordBatchDecoder;
use ringlog_protocol::batch::{BatchView, BATCH_HEADER_BYTES};
use serde::Serialize;

use crate::rng::Rng;

/// Bytes of the due-time stamp at the start of every value.
pub const VALUE_STAMP_BYTES: usize = 8;
/// Random bytes the payload pool holds; values are slices of it.
pub const PAYLOAD_POOL_BYTES: usize = 1 << 20;
/// Position of the CRC-32C and the first byte it covers.
const CRC_AT: usize = 17;
const CRC_START: usize = 21;
/// Largest varint encoding of an i64 (zig-zag).
const VARINT_BYTES_MAX: usize = 10;
/// Upper bound of the per-record framing besides key and value: length,
/// attributes, timestamp delta, offset delta, key and value lengths, header
/// count.
pub const RECORD_OVERHEAD_BYTES_MAX: usize = 1 + 5 * VARINT_BYTES_MAX + 1;

const _: () = assert!(BATCH_HEADER_BYTES == 61 && CRC_START == CRC_AT + 4);

/// The compression codec of produced batches (`--compression`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    /// Stored as is.
    None,
    /// gzip (level 6).
    Gzip,
    /// Snappy with Kafka's (xerial) framing.
    Snappy,
    /// LZ4 frames.
    Lz4,
    /// Zstandard.
    Zstd,
}

impl Codec {
    /// The codec bits of the batch attributes.
    pub fn attribute(self) -> i16 {
        match self {
            Codec::None => 0,
            Codec::Gzip => 1,
            Codec::Snappy => 2,
            Codec::Lz4 => 3,
            Codec::Zstd => 4,
        }
    }
}

/// The shared random bytes values are cut from.
pub struct Payload {
    pool: Vec<u8>,
    tail_bytes: usize,
}

impl Payload {
    /// A pool for values of `message_bytes` (the stamp included), filled
    /// from `seed`.
    pub fn new(seed: u64, message_bytes: usize) -> Payload {
        let tail_bytes = message_bytes.saturating_sub(VALUE_STAMP_BYTES);
        let mut rng = Rng::new(seed, u64::MAX);
        let mut pool = Vec::with_capacity(PAYLOAD_POOL_BYTES + tail_bytes);
        while pool.len() < PAYLOAD_POOL_BYTES + tail_bytes {
            let bits = rng.next_u64();
            for shift in (0..64).step_by(8) {
                pool.push(b'A' + ((bits >> shift) & 0xff) as u8 % 26);
            }
        }
        pool.truncate(PAYLOAD_POOL_BYTES + tail_bytes);
        Payload { pool, tail_bytes }
    }

    /// The value bytes after the stamp, starting at a random place.
    pub fn tail(&self, rng: &mut Rng) -> &[u8] {
        let start = rng.below(PAYLOAD_POOL_BYTES as u64) as usize;
        &self.pool[start..start + self.tail_bytes]
    }

    /// Bytes of every value, the stamp included (values shorter than a
    /// stamp carry none).
    pub fn message_bytes(&self) -> usize {
        self.tail_bytes + VALUE_STAMP_BYTES
    }
}

/// Kafka's murmur2 (the hash of the Java client's default partitioner).
pub fn murmur2(data: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

/// The partition (index into `count` partitions) of a key, as Kafka's
/// default partitioner picks it: positive murmur2 modulo the count.
pub fn partition_of_key(key: &[u8], count: usize) -> usize {
    assert!(count > 0);
    ((murmur2(key) & 0x7fff_ffff) as usize) % count
}

/// Writes key number `n` of a key space of `cardinality` keys into `out`
/// as zero-padded decimal digits (all keys of a run have the same length).
pub fn write_key(n: u64, cardinality: u64, out: &mut Vec<u8>) {
    assert!(n < cardinality);
    let width = (cardinality - 1).max(1).ilog10() as usize + 1;
    out.clear();
    out.resize(width, b'0');
    let mut rest = n;
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
}

fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn varint_len(value: i64) -> usize {
    let bits = 64 - (zigzag(value) | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

fn put_varint(out: &mut BytesMut, value: i64) {
    let mut v = zigzag(value);
    while v >= 0x80 {
        out.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

/// One batch being filled: its encoded (uncompressed) records and the due
/// time of each record, for latency.
#[derive(Debug)]
pub struct BatchBuilder {
    records: BytesMut,
    count: u32,
    base_timestamp_ms: i64,
    max_timestamp_ms: i64,
    due_ns: Vec<u64>,
}

impl BatchBuilder {
    /// An empty batch with room for `capacity_bytes` of records.
    pub fn new(capacity_bytes: usize) -> BatchBuilder {
        BatchBuilder {
            records: BytesMut::with_capacity(capacity_bytes),
            count: 0,
            base_timestamp_ms: 0,
            max_timestamp_ms: 0,
            due_ns: Vec::new(),
        }
    }

    /// Records so far.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Whether no record was added.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Size of the batch if it were finished uncompressed now.
    pub fn size_bytes(&self) -> usize {
        BATCH_HEADER_BYTES + self.records.len()
    }

    /// Due time (ns since the run started) of the first record.
    pub fn first_due_ns(&self) -> Option<u64> {
        self.due_ns.first().copied()
    }

    /// Due times of the records, in order.
    pub fn due_ns(&self) -> &[u64] {
        &self.due_ns
    }

    /// Bytes the record would add.
    pub fn record_bytes(key: Option<&[u8]>, value_bytes: usize) -> usize {
        key.map_or(0, <[u8]>::len) + value_bytes + RECORD_OVERHEAD_BYTES_MAX
    }

    /// Appends one record whose value is `stamp` (the due time in ns since
    /// the Unix epoch, big-endian; omitted when `tail` is the whole value)
    /// followed by `tail`. `timestamp_ms` is the record's Kafka timestamp,
    /// `due_ns` its due time in ns since the run started.
    pub fn push(
        &mut self,
        key: Option<&[u8]>,
        stamp: Option<u64>,
        tail: &[u8],
        timestamp_ms: i64,
        due_ns: u64,
    ) {
        if self.count == 0 {
            self.base_timestamp_ms = timestamp_ms;
            self.max_timestamp_ms = timestamp_ms;
        }
        self.max_timestamp_ms = self.max_timestamp_ms.max(timestamp_ms);
        let timestamp_delta = timestamp_ms - self.base_timestamp_ms;
        let offset_delta = i64::from(self.count);
        let key_len = key.map_or(-1, |k| k.len() as i64);
        let value_len = (stamp.map_or(0, |_| VALUE_STAMP_BYTES) + tail.len()) as i64;
        let body_len = 1
            + varint_len(timestamp_delta)
            + varint_len(offset_delta)
            + varint_len(key_len)
            + key.map_or(0, <[u8]>::len)
            + varint_len(value_len)
            + value_len as usize
            + varint_len(0);
        let records = &mut self.records;
        records.reserve(body_len + VARINT_BYTES_MAX);
        put_varint(records, body_len as i64);
        records.put_u8(0); // attributes
        put_varint(records, timestamp_delta);
        put_varint(records, offset_delta);
        put_varint(records, key_len);
        if let Some(key) = key {
            records.put_slice(key);
        }
        put_varint(records, value_len);
        if let Some(stamp) = stamp {
            records.put_u64(stamp);
        }
        records.put_slice(tail);
        put_varint(records, 0); // header count
        self.count += 1;
        self.due_ns.push(due_ns);
    }

    /// The finished batch (header, records compressed with `codec`,
    /// CRC-32C), and the records' due times.
    ///
    /// # Errors
    ///
    /// The codec failed (it does not, for in-memory buffers, but the codec
    /// crates report errors and the bench passes them on).
    pub fn finish(self, codec: Codec) -> Result<FinishedBatch, String> {
        assert!(self.count > 0, "an empty batch is never sent");
        let mut out = BytesMut::with_capacity(BATCH_HEADER_BYTES + self.records.len());
        out.put_i64(0); // base offset, assigned by the broker
        out.put_i32(0); // batch length, patched below
        out.put_i32(-1); // partition leader epoch
        out.put_i8(2); // magic
        out.put_u32(0); // crc, patched below
        out.put_i16(codec.attribute());
        out.put_i32(self.count as i32 - 1); // last offset delta
        out.put_i64(self.base_timestamp_ms);
        out.put_i64(self.max_timestamp_ms);
        out.put_i64(-1); // producer id
        out.put_i16(-1); // producer epoch
        out.put_i32(-1); // base sequence
        out.put_i32(self.count as i32);
        debug_assert_eq!(out.len(), BATCH_HEADER_BYTES);
        let mut records = self.records;
        let swap_in = |tmp: &mut BytesMut| {
            std::mem::swap(tmp, &mut records);
            Ok(())
        };
        let compressed = match codec {
            Codec::None => {
                out.extend_from_slice(&records);
                Ok(())
            }
            Codec::Gzip => Gzip::compress(&mut out, swap_in),
            Codec::Snappy => Snappy::compress(&mut out, swap_in),
            Codec::Lz4 => Lz4::compress(&mut out, swap_in),
            Codec::Zstd => Zstd::compress(&mut out, swap_in),
        };
        compressed.map_err(|e| format!("{codec:?} compression failed: {e:#}"))?;
        let batch_length = i32::try_from(out.len() - 12)
            .map_err(|_| format!("batch of {} bytes is too large", out.len()))?;
        out[8..12].copy_from_slice(&batch_length.to_be_bytes());
        let crc = crc32c::crc32c(&out[CRC_START..]);
        out[CRC_AT..CRC_START].copy_from_slice(&crc.to_be_bytes());
        Ok(FinishedBatch {
            bytes: out.freeze(),
            records: self.count,
            due_ns: self.due_ns,
        })
    }
}

/// A batch ready for the wire.
#[derive(Debug)]
pub struct FinishedBatch {
    /// The RecordBatch v2 bytes.
    pub bytes: Bytes,
    /// Records in it.
    pub records: u32,
    /// Each record's due time, ns since the run started.
    pub due_ns: Vec<u64>,
}

/// What a fetched partition's records hold, counted from the batch headers
/// (no decompression).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FetchedCount {
    /// Records in the whole batches.
    pub records: u64,
    /// Bytes of the whole batches.
    pub bytes: u64,
    /// The offset after the last whole batch, if there was one.
    pub next_offset: Option<i64>,
    /// The whole batches, in order (for decoding).
    pub batches: Vec<Bytes>,
}

/// Splits a Fetch partition's `records` into whole batches, validating each
/// CRC-32C. A trailing partial batch (brokers may cut the last one at
/// `max_bytes`) is ignored: it is fetched again from its start.
///
/// # Errors
///
/// A whole batch that is not valid RecordBatch v2 (bad CRC, magic or
/// counts): the data the broker returned is corrupt.
pub fn count_fetched(records: &Bytes) -> Result<FetchedCount, String> {
    let mut out = FetchedCount::default();
    for batch in ringlog_protocol::batches(records) {
        let Ok(batch) = batch else {
            break; // partial trailing batch
        };
        let view = BatchView::parse(&batch).map_err(|e| format!("fetched batch: {e}"))?;
        out.records += view.record_count().max(0) as u64;
        out.bytes += batch.len() as u64;
        out.next_offset = Some(view.base_offset() + i64::from(view.last_offset_delta()) + 1);
        out.batches.push(batch);
    }
    Ok(out)
}

/// The due-time stamps (ns since the Unix epoch) of every record in a
/// batch, decompressing it if needed. Records whose value is shorter than a
/// stamp yield nothing.
///
/// # Errors
///
/// The batch does not decode.
pub fn value_stamps(batch: &Bytes) -> Result<Vec<u64>, String> {
    let mut buf = batch.clone();
    let set = RecordBatchDecoder::decode(&mut buf).map_err(|e| format!("decode batch: {e:#}"))?;
    Ok(set
        .records
        .iter()
        .filter_map(|r| r.value.as_ref())
        .filter(|v| v.len() >= VALUE_STAMP_BYTES)
        .map(|v| u64::from_be_bytes(v[..VALUE_STAMP_BYTES].try_into().expect("8 bytes")))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::records::Compression;

    const CODECS: [Codec; 5] = [
        Codec::None,
        Codec::Gzip,
        Codec::Snappy,
        Codec::Lz4,
        Codec::Zstd,
    ];

    /// (key, value) of each record built.
    type Expected = Vec<(Option<Vec<u8>>, Vec<u8>)>;

    fn sample(codec: Codec) -> (FinishedBatch, Expected) {
        let payload = Payload::new(9, 100);
        let mut rng = Rng::new(9, 0);
        let mut builder = BatchBuilder::new(4096);
        let mut expected = Vec::new();
        let mut key = Vec::new();
        for i in 0..20u64 {
            let key = if i % 3 == 0 {
                write_key(i, 1000, &mut key);
                Some(key.clone())
            } else {
                None
            };
            let tail = payload.tail(&mut rng).to_vec();
            let stamp = 1_700_000_000_000_000_000 + i * 1000;
            builder.push(
                key.as_deref(),
                Some(stamp),
                &tail,
                1_700_000_000_000 + i as i64,
                i,
            );
            let mut value = stamp.to_be_bytes().to_vec();
            value.extend_from_slice(&tail);
            expected.push((key, value));
        }
        (builder.finish(codec).unwrap(), expected)
    }

    #[test]
    fn batches_have_valid_crc_and_header_for_every_codec() {
        for codec in CODECS {
            let (batch, _) = sample(codec);
            let view = BatchView::parse(&batch.bytes).unwrap_or_else(|e| panic!("{codec:?}: {e}"));
            assert_eq!(view.record_count(), 20);
            assert_eq!(view.offset_count(), 20);
            assert_eq!(view.base_timestamp(), 1_700_000_000_000);
            assert_eq!(view.max_timestamp(), 1_700_000_000_019);
            assert_eq!(
                i16::from_be_bytes([batch.bytes[21], batch.bytes[22]]) & 7,
                codec.attribute()
            );
            assert_eq!(batch.records, 20);
            assert_eq!(batch.due_ns, (0..20).collect::<Vec<u64>>());
        }
    }

    #[test]
    fn batches_decode_back_with_kafka_protocol_for_every_codec() {
        for codec in CODECS {
            let (batch, expected) = sample(codec);
            let mut buf = batch.bytes.clone();
            let set = RecordBatchDecoder::decode(&mut buf).unwrap();
            let want = match codec {
                Codec::None => Compression::None,
                Codec::Gzip => Compression::Gzip,
                Codec::Snappy => Compression::Snappy,
                Codec::Lz4 => Compression::Lz4,
                Codec::Zstd => Compression::Zstd,
            };
            assert_eq!(set.compression, want);
            assert_eq!(set.records.len(), expected.len());
            for (i, (record, (key, value))) in set.records.iter().zip(&expected).enumerate() {
                assert_eq!(record.offset, i as i64);
                assert_eq!(record.timestamp, 1_700_000_000_000 + i as i64);
                assert_eq!(record.key.as_deref(), key.as_deref());
                assert_eq!(record.value.as_deref(), Some(value.as_slice()));
                assert!(record.headers.is_empty());
            }
            let stamps = value_stamps(&batch.bytes).unwrap();
            assert_eq!(stamps.len(), 20);
            assert_eq!(stamps[3], 1_700_000_000_000_003_000);
        }
    }

    #[test]
    fn compression_shrinks_letter_payloads() {
        let (plain, _) = sample(Codec::None);
        for codec in [Codec::Gzip, Codec::Zstd] {
            let (packed, _) = sample(codec);
            assert!(packed.bytes.len() < plain.bytes.len(), "{codec:?}");
        }
    }

    #[test]
    fn size_estimate_bounds_the_encoding() {
        let payload = Payload::new(1, 1024);
        let mut rng = Rng::new(1, 0);
        let mut builder = BatchBuilder::new(0);
        let mut bound = BATCH_HEADER_BYTES;
        for i in 0..50 {
            builder.push(Some(b"key-1"), Some(i), payload.tail(&mut rng), 0, i);
            bound += BatchBuilder::record_bytes(Some(b"key-1"), 1024);
            assert!(builder.size_bytes() <= bound);
        }
        let batch = builder.finish(Codec::None).unwrap();
        assert!(batch.bytes.len() <= bound);
        // Overhead per 1 KiB record is a few bytes, not the bound's 52.
        assert!(batch.bytes.len() < BATCH_HEADER_BYTES + 50 * (1024 + 5 + 12));
    }

    #[test]
    fn large_deltas_use_long_varints() {
        let mut builder = BatchBuilder::new(0);
        builder.push(None, None, b"a", 0, 0);
        builder.push(None, None, b"b", 1 << 40, 1);
        builder.push(None, None, b"c", -5, 2);
        let batch = builder.finish(Codec::None).unwrap();
        let mut buf = batch.bytes.clone();
        let set = RecordBatchDecoder::decode(&mut buf).unwrap();
        let times: Vec<i64> = set.records.iter().map(|r| r.timestamp).collect();
        assert_eq!(times, [0, 1 << 40, -5]);
        assert!(
            value_stamps(&batch.bytes).unwrap().is_empty(),
            "values without stamps"
        );
    }

    #[test]
    fn varint_lengths_match_encoding() {
        for value in [
            0i64,
            1,
            -1,
            63,
            64,
            -64,
            -65,
            8191,
            8192,
            i64::MAX,
            i64::MIN,
        ] {
            let mut out = BytesMut::new();
            put_varint(&mut out, value);
            assert_eq!(out.len(), varint_len(value), "{value}");
        }
    }

    #[test]
    fn murmur2_matches_kafka() {
        // From Kafka's UtilsTest and librdkafka's rdmurmur2 unit test.
        assert_eq!(murmur2(b"21") as i32, -973_932_308);
        assert_eq!(murmur2(b"foobar") as i32, -790_332_482);
        assert_eq!(murmur2(b"a-little-bit-long-string") as i32, -985_981_536);
        assert_eq!(
            murmur2(b"a-little-bit-longer-string") as i32,
            -1_486_304_829
        );
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") as i32,
            -58_897_971
        );
        assert_eq!(murmur2(b"abc") as i32, 479_470_107);
        assert_eq!(murmur2(b"kafka"), 0xd067_cf64);
    }

    #[test]
    fn keys_are_fixed_width_and_spread() {
        let mut key = Vec::new();
        write_key(7, 1000, &mut key);
        assert_eq!(key, b"007");
        write_key(0, 1, &mut key);
        assert_eq!(key, b"0");
        write_key(99_999, 100_000, &mut key);
        assert_eq!(key, b"99999");
        let mut counts = [0u32; 8];
        for n in 0..8000 {
            write_key(n, 8000, &mut key);
            counts[partition_of_key(&key, 8)] += 1;
        }
        assert!(
            counts.iter().all(|&c| (800..1200).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn payload_is_letters_and_reproducible() {
        let a = Payload::new(5, 1024);
        let b = Payload::new(5, 1024);
        let (mut ra, mut rb) = (Rng::new(1, 1), Rng::new(1, 1));
        let (ta, tb) = (a.tail(&mut ra), b.tail(&mut rb));
        assert_eq!(ta, tb);
        assert_eq!(ta.len(), 1024 - VALUE_STAMP_BYTES);
        assert!(ta.iter().all(u8::is_ascii_uppercase));
        assert_eq!(a.message_bytes(), 1024);
    }

    #[test]
    fn fetched_counts_skip_a_partial_tail_and_catch_corruption() {
        let (one, _) = sample(Codec::None);
        let (two, _) = sample(Codec::Lz4);
        let mut second = two.bytes.to_vec();
        second[0..8].copy_from_slice(&20i64.to_be_bytes());
        let mut blob = one.bytes.to_vec();
        blob.extend_from_slice(&second);
        blob.extend_from_slice(&one.bytes[..30]);
        let counted = count_fetched(&Bytes::from(blob.clone())).unwrap();
        assert_eq!(counted.records, 40);
        assert_eq!(counted.bytes, (one.bytes.len() + two.bytes.len()) as u64);
        assert_eq!(counted.next_offset, Some(40));
        assert_eq!(counted.batches.len(), 2);
        let last = one.bytes.len() - 1;
        blob[last] ^= 1;
        assert!(count_fetched(&Bytes::from(blob))
            .unwrap_err()
            .contains("CRC"));
    }
}
