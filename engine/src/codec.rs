//! Kafka's record-batch codecs (attributes bits 0-2: none, gzip, snappy,
//! lz4, zstd), streaming and bounded in both directions.
//!
//! ## Why bounded, and how
//!
//! The compressed bytes come from clients: on the produce path when a
//! topic's `compression.type` makes the broker recompress, and from the
//! log when ListOffsets looks inside a batch stored as produced. A batch of
//! a few KiB can claim gigabytes once decompressed, so every decoder is a
//! [`Decompressor`] that fails with [`CodecError::DecompressedTooLarge`]
//! past a limit
//! (callers pass [`DECOMPRESSED_BYTES_MAX`]), and every encoder writes into
//! an output that fails past the caller's limit (the topic's
//! `max.message.bytes`, which the stored batch must fit anyway). Nothing
//! holds a whole decompressed batch except raw snappy, whose one block is
//! checked against the limit before it is allocated. Garbage is an error,
//! never a panic: all four decoders reject malformed input with an error.
//!
//! ## Formats, as Kafka's clients write and read them
//!
//! * gzip: RFC 1952 members (Java's `GZIPOutputStream`); concatenated
//!   members are read, as `GZIPInputStream` does.
//! * snappy: Java clients write xerial framing (`\x82SNAPPY\0`, two
//!   version words, then a big-endian length and a raw block per 32 KiB of
//!   input); librdkafka writes one raw snappy block. Both are read; xerial
//!   is written, as Kafka's broker writes it.
//! * lz4: the LZ4 frame format, written as Kafka's
//!   `KafkaLZ4BlockOutputStream` writes it: independent 64 KiB blocks, no
//!   checksums.
//! * zstd: zstd frames (several are read in sequence).
//!
//! Levels are what Kafka's defaults do: gzip 6 (`compression.gzip.level`
//! -1 is zlib's default), zstd 3, and lz4's fast compressor (Kafka's
//! default `compression.lz4.level` 9 selects lz4-java's fast compressor,
//! not high-compression level 9, for backward compatibility; LZ4F level 0
//! here).
//!
//! Why these crates (flate2, snap, lz4, zstd) and not `kafka-protocol`'s
//! codec features: the engine must not depend on the protocol crate (it
//! depends on the engine), and those decoders collect the whole output with
//! no limit. These are the crates and versions `kafka-protocol` itself uses,
//! so the lock file gains nothing.

use std::cell::Cell;
use std::fmt;
use std::io::{self, Read, Write};
use std::rc::Rc;

/// The most bytes one batch may decompress to. 64 times the default
/// `max.message.bytes` (1 MiB): above the ratios real record data reaches
/// (text and JSON compress 5-20x), while one hostile batch costs a shard
/// at most this much decoding work (tens of milliseconds) and, for raw
/// snappy, this much memory.
pub const DECOMPRESSED_BYTES_MAX: usize = 64 << 20;

/// Bytes a [`Decompressor`] hands out per [`Decompressor::fill`].
const CHUNK_BYTES: usize = 32 << 10;
/// Xerial snappy: magic, then version and minimum compatible version.
const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
const XERIAL_HEADER_BYTES: usize = 16;
/// Input per xerial block, as snappy-java's `SnappyOutputStream` writes.
const XERIAL_BLOCK_BYTES: usize = 32 << 10;
/// Snappy's densest element (a 3-byte copy of 64 bytes) expands 64/3, so
/// no valid block decompresses to more than 22 times its size; a block
/// claiming more is refused before its buffer is allocated.
const SNAPPY_RATIO_MAX: usize = 22;
const GZIP_LEVEL: u32 = 6;
const LZ4_LEVEL: u32 = 0;
const ZSTD_LEVEL: i32 = 3;

/// A RecordBatch compression codec (the low three attribute bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    /// 0: uncompressed.
    None,
    /// 1: gzip.
    Gzip,
    /// 2: snappy.
    Snappy,
    /// 3: lz4.
    Lz4,
    /// 4: zstd.
    Zstd,
}

impl Codec {
    /// Every codec, by id.
    pub const ALL: [Codec; 5] = [
        Codec::None,
        Codec::Gzip,
        Codec::Snappy,
        Codec::Lz4,
        Codec::Zstd,
    ];

    /// The codec with this attribute id; `None` for ids 5-7.
    pub fn from_id(id: u8) -> Option<Codec> {
        Codec::ALL.get(id as usize).copied()
    }

    /// The attribute id.
    pub fn id(self) -> u8 {
        self as u8
    }

    /// Kafka's name (`CompressionType.name`).
    pub fn name(self) -> &'static str {
        match self {
            Codec::None => "none",
            Codec::Gzip => "gzip",
            Codec::Snappy => "snappy",
            Codec::Lz4 => "lz4",
            Codec::Zstd => "zstd",
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why bytes could not be decompressed or compressed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodecError {
    /// The input is not valid for its codec.
    Corrupt {
        /// The codec.
        codec: Codec,
        /// What the decoder said.
        reason: String,
    },
    /// Decompressed, the input exceeds this many bytes.
    DecompressedTooLarge {
        /// The limit.
        limit: usize,
    },
    /// Compressed, the output exceeds this many bytes.
    CompressedTooLarge {
        /// The limit.
        limit: usize,
    },
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecError::Corrupt { codec, reason } => write!(f, "{codec} data: {reason}"),
            CodecError::DecompressedTooLarge { limit } => {
                write!(f, "decompressed size exceeds {limit} bytes")
            }
            CodecError::CompressedTooLarge { limit } => {
                write!(f, "compressed size exceeds {limit} bytes")
            }
        }
    }
}

impl std::error::Error for CodecError {}

fn corrupt(codec: Codec, reason: impl fmt::Display) -> CodecError {
    CodecError::Corrupt {
        codec,
        reason: reason.to_string(),
    }
}

/// Snappy in either framing, one block at a time.
struct SnappyBlocks<'a> {
    /// Input not yet decoded.
    input: &'a [u8],
    /// Xerial framing (else one raw block).
    xerial: bool,
    block: Vec<u8>,
    at: usize,
    /// Output bytes still allowed.
    budget: usize,
    limit: usize,
}

impl<'a> SnappyBlocks<'a> {
    fn new(input: &'a [u8], limit: usize) -> Result<Self, CodecError> {
        let xerial = input.starts_with(XERIAL_MAGIC);
        let input = if xerial {
            input
                .get(XERIAL_HEADER_BYTES..)
                .ok_or_else(|| corrupt(Codec::Snappy, "xerial header shorter than 16 bytes"))?
        } else {
            input
        };
        Ok(SnappyBlocks {
            input,
            xerial,
            block: Vec::new(),
            at: 0,
            budget: limit,
            limit,
        })
    }

    /// Decodes the next block; false at the end of the input.
    fn next_block(&mut self) -> Result<bool, CodecError> {
        if self.input.is_empty() {
            return Ok(false);
        }
        let compressed = if self.xerial {
            let Some((length, rest)) = self.input.split_first_chunk::<4>() else {
                return Err(corrupt(Codec::Snappy, "xerial block length cut short"));
            };
            let length = u32::from_be_bytes(*length) as usize;
            let Some(block) = rest.get(..length) else {
                return Err(corrupt(Codec::Snappy, "xerial block runs past the input"));
            };
            self.input = &rest[length..];
            block
        } else {
            std::mem::take(&mut self.input)
        };
        let length =
            snap::raw::decompress_len(compressed).map_err(|e| corrupt(Codec::Snappy, e))?;
        if length > self.budget {
            return Err(CodecError::DecompressedTooLarge { limit: self.limit });
        }
        if length > compressed.len().saturating_mul(SNAPPY_RATIO_MAX) {
            return Err(corrupt(
                Codec::Snappy,
                format!(
                    "a block of {} bytes claims {length} bytes",
                    compressed.len()
                ),
            ));
        }
        self.block.clear();
        self.block.resize(length, 0);
        snap::raw::Decoder::new()
            .decompress(compressed, &mut self.block)
            .map_err(|e| corrupt(Codec::Snappy, e))?;
        self.budget -= length;
        self.at = 0;
        Ok(true)
    }
}

impl Read for SnappyBlocks<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.at == self.block.len() {
            if !self.next_block().map_err(io::Error::other)? {
                return Ok(0);
            }
        }
        let n = out.len().min(self.block.len() - self.at);
        out[..n].copy_from_slice(&self.block[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

enum Source<'a> {
    /// Uncompressed: handed out as one chunk, without a copy.
    Plain { input: &'a [u8], handed_out: bool },
    /// A decoder's output, copied out a chunk at a time.
    Decoded(Box<dyn Read + 'a>),
}

/// The decompressed bytes of one batch's records, pulled in chunks.
///
/// Uncompressed input is handed out as it is (no copy). Every byte handed
/// out can also be copied into a [`Compressor`] (the tee), which is how a
/// batch is recompressed without holding its decompressed records.
pub struct Decompressor<'a> {
    codec: Codec,
    source: Source<'a>,
    chunk: Vec<u8>,
    /// Bytes of the current chunk consumed so far, and its length.
    at: usize,
    len: usize,
    produced: usize,
    limit: usize,
    tee: Option<&'a mut Compressor>,
}

impl<'a> Decompressor<'a> {
    /// Starts decoding `input` (a batch's records section) with `codec`;
    /// more than `limit` bytes of output is
    /// [`CodecError::DecompressedTooLarge`].
    pub fn new(codec: Codec, input: &'a [u8], limit: usize) -> Result<Self, CodecError> {
        let fail = |e: io::Error| corrupt(codec, e);
        let source = match codec {
            Codec::None if input.len() > limit => {
                return Err(CodecError::DecompressedTooLarge { limit })
            }
            Codec::None => Source::Plain {
                input,
                handed_out: false,
            },
            Codec::Gzip => Source::Decoded(Box::new(flate2::read::MultiGzDecoder::new(input))),
            Codec::Snappy => Source::Decoded(Box::new(SnappyBlocks::new(input, limit)?)),
            Codec::Lz4 => Source::Decoded(Box::new(lz4::Decoder::new(input).map_err(fail)?)),
            Codec::Zstd => Source::Decoded(Box::new(
                zstd::stream::read::Decoder::with_buffer(input).map_err(fail)?,
            )),
        };
        Ok(Decompressor {
            codec,
            source,
            chunk: Vec::new(),
            at: 0,
            len: 0,
            produced: 0,
            limit,
            tee: None,
        })
    }

    /// Copies every byte handed out from now on into `sink`.
    pub fn tee(&mut self, sink: &'a mut Compressor) {
        self.tee = Some(sink);
    }

    /// The bytes not yet consumed of the current chunk, decoding the next
    /// chunk when it is used up; empty at the end of the data.
    pub fn fill(&mut self) -> Result<&[u8], CodecError> {
        if self.at == self.len {
            self.refill()?;
        }
        Ok(match &self.source {
            Source::Plain { input, .. } => &input[self.at..self.len],
            Source::Decoded(_) => &self.chunk[self.at..self.len],
        })
    }

    /// Marks `n` bytes of what [`Decompressor::fill`] returned as used.
    pub fn consume(&mut self, n: usize) {
        assert!(n <= self.len - self.at, "consumed more than was filled");
        self.at += n;
    }

    fn refill(&mut self) -> Result<(), CodecError> {
        let read = match &mut self.source {
            Source::Plain {
                handed_out: true, ..
            } => return Ok(()),
            Source::Plain { input, handed_out } => {
                *handed_out = true;
                (self.at, self.len) = (0, input.len());
                if let Some(tee) = self.tee.as_deref_mut() {
                    tee.write(input)?;
                }
                return Ok(());
            }
            Source::Decoded(decoder) => {
                self.chunk.resize(CHUNK_BYTES, 0);
                // One byte more than the budget, to notice a stream past it.
                let want = CHUNK_BYTES.min((self.limit - self.produced).saturating_add(1));
                decoder.read(&mut self.chunk[..want]).map_err(|e| {
                    match e
                        .get_ref()
                        .and_then(|inner| inner.downcast_ref::<CodecError>())
                    {
                        Some(known) => known.clone(),
                        None => corrupt(self.codec, e),
                    }
                })?
            }
        };
        self.produced += read;
        if self.produced > self.limit {
            return Err(CodecError::DecompressedTooLarge { limit: self.limit });
        }
        (self.at, self.len) = (0, read);
        if let Some(tee) = self.tee.as_deref_mut() {
            tee.write(&self.chunk[..read])?;
        }
        Ok(())
    }
}

/// A `Vec` that refuses to grow past a limit (the compressor's output).
/// The encoders own it and pass its error through as an `io::Error`; the
/// shared flag tells the [`Compressor`] that this, not the codec, failed.
struct BoundedVec {
    bytes: Vec<u8>,
    limit: usize,
    exceeded: Rc<Cell<bool>>,
}

impl Write for BoundedVec {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.bytes.len() + data.len() > self.limit {
            self.exceeded.set(true);
            return Err(io::Error::other("compressed output over its limit"));
        }
        self.bytes.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Xerial-framed snappy, one block per [`XERIAL_BLOCK_BYTES`] of input.
struct XerialWriter {
    out: BoundedVec,
    pending: Vec<u8>,
    scratch: Vec<u8>,
}

impl XerialWriter {
    fn new(mut out: BoundedVec) -> io::Result<Self> {
        out.write_all(XERIAL_MAGIC)?;
        out.write_all(&1i32.to_be_bytes())?; // version
        out.write_all(&1i32.to_be_bytes())?; // minimum compatible version
        Ok(XerialWriter {
            out,
            pending: Vec::with_capacity(XERIAL_BLOCK_BYTES),
            scratch: vec![0; snap::raw::max_compress_len(XERIAL_BLOCK_BYTES)],
        })
    }

    fn emit_block(&mut self) -> io::Result<()> {
        let n = snap::raw::Encoder::new()
            .compress(&self.pending, &mut self.scratch)
            .map_err(io::Error::other)?;
        self.pending.clear();
        self.out.write_all(&(n as u32).to_be_bytes())?;
        self.out.write_all(&self.scratch[..n])
    }

    fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let take = (XERIAL_BLOCK_BYTES - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.pending.len() == XERIAL_BLOCK_BYTES {
                self.emit_block()?;
            }
        }
        Ok(())
    }

    fn finish(mut self) -> io::Result<BoundedVec> {
        if !self.pending.is_empty() {
            self.emit_block()?;
        }
        Ok(self.out)
    }
}

enum Encoder {
    Plain(BoundedVec),
    Gzip(flate2::write::GzEncoder<BoundedVec>),
    Snappy(XerialWriter),
    Lz4(lz4::Encoder<BoundedVec>),
    Zstd(zstd::stream::write::Encoder<'static, BoundedVec>),
}

/// Compresses a batch's records, appending to a prefix (the batch header)
/// in one buffer of at most `limit` bytes.
pub struct Compressor {
    codec: Codec,
    encoder: Encoder,
    limit: usize,
    exceeded: Rc<Cell<bool>>,
}

impl Compressor {
    /// A compressor for `codec` whose output starts with `prefix`; output
    /// beyond `limit` bytes in all is [`CodecError::CompressedTooLarge`].
    pub fn new(codec: Codec, prefix: &[u8], limit: usize) -> Result<Self, CodecError> {
        let exceeded = Rc::new(Cell::new(false));
        let mut out = BoundedVec {
            bytes: Vec::with_capacity(limit.min(CHUNK_BYTES)),
            limit,
            exceeded: exceeded.clone(),
        };
        out.write_all(prefix)
            .map_err(|_| CodecError::CompressedTooLarge { limit })?;
        let fail = |e: io::Error| corrupt(codec, e);
        let encoder = match codec {
            Codec::None => Encoder::Plain(out),
            Codec::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                out,
                flate2::Compression::new(GZIP_LEVEL),
            )),
            Codec::Snappy => Encoder::Snappy(XerialWriter::new(out).map_err(fail)?),
            Codec::Lz4 => Encoder::Lz4(
                lz4::EncoderBuilder::new()
                    .level(LZ4_LEVEL)
                    .block_size(lz4::BlockSize::Max64KB)
                    .block_mode(lz4::BlockMode::Independent)
                    .block_checksum(lz4::liblz4::BlockChecksum::NoBlockChecksum)
                    .checksum(lz4::ContentChecksum::NoChecksum)
                    .build(out)
                    .map_err(fail)?,
            ),
            Codec::Zstd => {
                Encoder::Zstd(zstd::stream::write::Encoder::new(out, ZSTD_LEVEL).map_err(fail)?)
            }
        };
        Ok(Compressor {
            codec,
            encoder,
            limit,
            exceeded,
        })
    }

    fn error(&self, e: io::Error) -> CodecError {
        if self.exceeded.get() {
            CodecError::CompressedTooLarge { limit: self.limit }
        } else {
            corrupt(self.codec, e)
        }
    }

    /// Compresses `data`.
    pub fn write(&mut self, data: &[u8]) -> Result<(), CodecError> {
        let written = match &mut self.encoder {
            Encoder::Plain(out) => out.write_all(data),
            Encoder::Gzip(e) => e.write_all(data),
            Encoder::Snappy(e) => e.write_all(data),
            Encoder::Lz4(e) => e.write_all(data),
            Encoder::Zstd(e) => e.write_all(data),
        };
        written.map_err(|e| self.error(e))
    }

    /// Ends the stream; the prefix followed by the compressed bytes.
    pub fn finish(self) -> Result<Vec<u8>, CodecError> {
        let done = match self.encoder {
            Encoder::Plain(out) => Ok(out),
            Encoder::Gzip(e) => e.finish(),
            Encoder::Snappy(e) => e.finish(),
            Encoder::Lz4(e) => {
                let (out, result) = e.finish();
                result.map(|()| out)
            }
            Encoder::Zstd(e) => e.finish(),
        };
        match done {
            Ok(out) => Ok(out.bytes),
            Err(_) if self.exceeded.get() => {
                Err(CodecError::CompressedTooLarge { limit: self.limit })
            }
            Err(e) => Err(corrupt(self.codec, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(codec: Codec, input: &[u8], limit: usize) -> Result<Vec<u8>, CodecError> {
        let mut d = Decompressor::new(codec, input, limit)?;
        let mut out = Vec::new();
        loop {
            let chunk = d.fill()?;
            if chunk.is_empty() {
                return Ok(out);
            }
            let n = chunk.len();
            out.extend_from_slice(chunk);
            d.consume(n);
        }
    }

    fn encode(codec: Codec, data: &[u8]) -> Vec<u8> {
        let mut c = Compressor::new(codec, b"head", usize::MAX).unwrap();
        c.write(data).unwrap();
        let out = c.finish().unwrap();
        assert_eq!(&out[..4], b"head");
        out[4..].to_vec()
    }

    fn sample(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i % 251) as u8 ^ (i / 997) as u8)
            .collect()
    }

    #[test]
    fn every_codec_round_trips() {
        for codec in Codec::ALL {
            for len in [0, 1, 100, CHUNK_BYTES + 7, 3 * XERIAL_BLOCK_BYTES + 1] {
                let data = sample(len);
                let packed = encode(codec, &data);
                assert_eq!(
                    decode_all(codec, &packed, DECOMPRESSED_BYTES_MAX).unwrap(),
                    data,
                    "{codec} {len}"
                );
            }
        }
    }

    #[test]
    fn ids_and_names() {
        for (id, codec) in Codec::ALL.iter().enumerate() {
            assert_eq!(Codec::from_id(id as u8), Some(*codec));
            assert_eq!(codec.id() as usize, id);
        }
        assert_eq!(Codec::from_id(5), None);
        assert_eq!(Codec::Zstd.to_string(), "zstd");
    }

    #[test]
    fn raw_snappy_is_read_too() {
        let data = sample(10_000);
        let raw = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        assert_eq!(
            decode_all(Codec::Snappy, &raw, DECOMPRESSED_BYTES_MAX).unwrap(),
            data
        );
    }

    #[test]
    fn a_bomb_stops_at_the_limit() {
        let zeros = vec![0u8; 1 << 20];
        for codec in Codec::ALL {
            let packed = encode(codec, &zeros);
            assert_eq!(
                decode_all(codec, &packed, (1 << 20) - 1),
                Err(CodecError::DecompressedTooLarge {
                    limit: (1 << 20) - 1
                }),
                "{codec}"
            );
            assert_eq!(decode_all(codec, &packed, 1 << 20).unwrap().len(), 1 << 20);
        }
    }

    #[test]
    fn snappy_claims_are_checked_before_allocating() {
        // A raw block claiming 2^31 bytes from 6 bytes of input.
        let claim = [0x80, 0x80, 0x80, 0x80, 0x08, 0x00];
        assert!(matches!(
            decode_all(Codec::Snappy, &claim, usize::MAX),
            Err(CodecError::Corrupt { .. })
        ));
        assert_eq!(
            decode_all(Codec::Snappy, &claim, 1 << 20),
            Err(CodecError::DecompressedTooLarge { limit: 1 << 20 })
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for round in 0..300 {
            let len = round % 200;
            let garbage: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            for codec in [Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd] {
                let _ = decode_all(codec, &garbage, 1 << 20);
            }
        }
        // Valid streams cut short or with flipped bytes.
        let data = sample(50_000);
        for codec in [Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd] {
            let packed = encode(codec, &data);
            // A cut stream is an error or a prefix (lz4 and zstd streams
            // cut at a block boundary read as shorter data).
            for cut in [1, packed.len() / 3, packed.len() - 1] {
                if let Ok(out) = decode_all(codec, &packed[..cut], 1 << 20) {
                    assert!(data.starts_with(&out), "{codec} cut at {cut}");
                }
            }
            for at in (0..packed.len()).step_by(97) {
                let mut flipped = packed.clone();
                flipped[at] ^= 0x5a;
                let _ = decode_all(codec, &flipped, 1 << 20);
            }
        }
    }

    #[test]
    fn output_over_the_limit_is_too_large() {
        let data = sample(100_000);
        for codec in Codec::ALL {
            let mut c = Compressor::new(codec, b"head", 1000).unwrap();
            let result = c.write(&data).and_then(|()| c.finish().map(|_| ()));
            assert_eq!(
                result,
                Err(CodecError::CompressedTooLarge { limit: 1000 }),
                "{codec}"
            );
        }
    }

    #[test]
    fn the_tee_sees_every_byte() {
        let data = sample(100_000);
        let packed = encode(Codec::Zstd, &data);
        for source in [Codec::None, Codec::Zstd] {
            let input = if source == Codec::None {
                &data[..]
            } else {
                &packed[..]
            };
            let mut sink = Compressor::new(Codec::Gzip, b"", usize::MAX).unwrap();
            {
                let mut d = Decompressor::new(source, input, DECOMPRESSED_BYTES_MAX).unwrap();
                d.tee(&mut sink);
                loop {
                    let n = d.fill().unwrap().len();
                    if n == 0 {
                        break;
                    }
                    d.consume(n);
                }
            }
            let gz = sink.finish().unwrap();
            assert_eq!(
                decode_all(Codec::Gzip, &gz, DECOMPRESSED_BYTES_MAX).unwrap(),
                data
            );
        }
    }
}
