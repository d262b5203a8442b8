//! The properties the protocol fuzz targets check, as plain functions.
//!
//! Why here and not in the fuzz crate: the fuzz targets (`protocol/fuzz`,
//! cargo-fuzz on nightly) and the corpus replay test
//! (`protocol/tests/fuzz_corpus.rs`, stable `cargo test`) must check exactly
//! the same thing, and CI runs the replay everywhere, including where no
//! nightly toolchain exists. Each function panics when a property fails,
//! which is how libFuzzer learns of a finding; for any input it returns
//! normally otherwise.
//!
//! Input layouts are chosen so that random bytes reach the interesting
//! code: an input selects an API and version from [`SUPPORTED_APIS`]
//! instead of spelling the key, and the batch target can reseal CRC-32Cs so
//! mutations get past the checksum into the header checks.

use bytes::{Bytes, BytesMut};

use crate::batch::{batches, set_base_offset, BatchError, BatchView, BATCH_HEADER_BYTES};
use crate::frame::next_frame;
use crate::request::{parse_request, RequestError, FIXED_HEADER_BYTES};
use crate::versions::{self, VersionError, SUPPORTED_APIS};

/// Frame size limit of the raw mode of [`request_decoder`]: large enough
/// for every seed, small enough that a forged size prefix stays cheap.
const RAW_MAX_FRAME_BYTES: usize = 1 << 16;

/// Input byte 0 with this bit set: the rest is a raw byte stream (size
/// prefixes and all). Clear: a steered request, see [`request_decoder`].
const RAW_STREAM: u8 = 0x80;

/// Builds the steered-mode input for a request frame (the bytes after the
/// size prefix) of a supported API and version: the index of the API in
/// [`SUPPORTED_APIS`], the version above its minimum, then the frame from
/// the correlation id on. The seed corpus is written with it.
///
/// # Panics
///
/// If the frame is shorter than the API key and version, or names an API
/// or version the broker does not support.
pub fn steered_request_input(frame: &[u8]) -> Vec<u8> {
    assert!(frame.len() >= 4, "a frame starts with API key and version");
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let index = SUPPORTED_APIS
        .iter()
        .position(|e| e.key as i16 == key)
        .expect("a supported API");
    let entry = SUPPORTED_APIS[index];
    assert!(
        (entry.min..=entry.max).contains(&version),
        "a supported version"
    );
    let mut input = vec![index as u8, (version - entry.min) as u8];
    input.extend_from_slice(&frame[4..]);
    input
}

/// The request decoder target: whatever the bytes, [`parse_request`]
/// returns, and what it returns agrees with the frame's fixed header and
/// the version table.
///
/// Input: byte 0 below 0x80 picks `SUPPORTED_APIS[byte 0 % len]`, byte 1
/// the version (`min + byte 1 % range`), and the rest follows the API key
/// and version in the frame (correlation id, client id, body), so every
/// API and version the broker decodes gets about the same share of inputs.
/// With bit 0x80 set, the rest is a raw stream of size-prefixed frames fed
/// through [`next_frame`], reaching unknown keys, unsupported versions and
/// the framing rules too.
pub fn request_decoder(input: &[u8]) {
    let Some((&mode, rest)) = input.split_first() else {
        return;
    };
    if mode & RAW_STREAM != 0 {
        let mut stream = BytesMut::from(rest);
        while let Ok(Some(frame)) = next_frame(&mut stream, RAW_MAX_FRAME_BYTES) {
            assert!(frame.len() <= RAW_MAX_FRAME_BYTES);
            check_request(frame);
        }
        return;
    }
    let entry = SUPPORTED_APIS[mode as usize % SUPPORTED_APIS.len()];
    let range = (entry.max - entry.min + 1) as u8;
    let version = entry.min + (rest.first().copied().unwrap_or(0) % range) as i16;
    let mut frame = Vec::with_capacity(4 + rest.len());
    frame.extend_from_slice(&(entry.key as i16).to_be_bytes());
    frame.extend_from_slice(&version.to_be_bytes());
    frame.extend_from_slice(rest.get(1..).unwrap_or_default());
    check_request(Bytes::from(frame));
}

/// Parses one frame and checks the result against its fixed header.
fn check_request(frame: Bytes) {
    let len = frame.len();
    let fixed = frame.get(..FIXED_HEADER_BYTES).map(|f| {
        (
            i16::from_be_bytes([f[0], f[1]]),
            i16::from_be_bytes([f[2], f[3]]),
            i32::from_be_bytes([f[4], f[5], f[6], f[7]]),
        )
    });
    let result = parse_request(frame.clone());
    // Compared as printed: a float field may hold NaN (an AlterClientQuotas
    // value), which is never equal to itself though both parses read the
    // same bits; the broker refuses such a value when it validates it.
    assert_eq!(
        format!("{:?}", parse_request(frame)),
        format!("{result:?}"),
        "parsing the same frame twice gives the same answer"
    );
    let Some((key, version, correlation_id)) = fixed else {
        assert_eq!(result, Err(RequestError::Truncated { len }));
        return;
    };
    match versions::check(key, version) {
        Err(VersionError::UnknownApi(_)) => assert_eq!(
            result,
            Err(RequestError::UnknownApi {
                api_key: key,
                api_version: version,
                correlation_id
            })
        ),
        Err(VersionError::UnsupportedVersion { key, version }) => assert_eq!(
            result,
            Err(RequestError::UnsupportedVersion {
                api_key: key,
                api_version: version,
                correlation_id
            })
        ),
        Ok(api_key) => match &result {
            Ok(request) => {
                assert_eq!((request.api_key, request.api_version), (api_key, version));
                assert_eq!(request.correlation_id(), correlation_id);
                assert_eq!(request.header.request_api_key, key);
                assert_eq!(request.header.request_api_version, version);
            }
            Err(RequestError::BadHeader {
                api_key: k,
                api_version: v,
                ..
            }) => assert_eq!((*k, *v), (api_key, version)),
            Err(RequestError::BadBody {
                header,
                api_key: k,
                api_version: v,
                ..
            }) => {
                assert_eq!((*k, *v), (api_key, version));
                assert_eq!(header.correlation_id, correlation_id);
            }
            Err(other) => panic!("{api_key:?} v{version} is supported, yet: {other:?}"),
        },
    }
    if let Err(e) = &result {
        assert_eq!(e.correlation_id(), Some(correlation_id));
        assert!(e.response_error().is_some(), "{e:?} can be answered");
    }
}

/// Input byte 0 bit for [`record_batch_view`]: reseal the CRC-32C of every
/// batch the splitter yields before parsing it.
const RESEAL_CRC: u8 = 0x01;

/// The RecordBatch view target: splitting a Produce `records` blob with
/// [`batches`] and parsing each batch with [`BatchView::parse`] never
/// panics, and a batch the view accepts is consistent (length, magic,
/// counts) and survives the base-offset rewrite the log performs.
///
/// Input: byte 0 holds flags ([`RESEAL_CRC`]: recompute each batch's
/// CRC-32C first, so mutations reach the checks behind it); the rest is
/// the blob.
pub fn record_batch_view(input: &[u8]) {
    let Some((&flags, blob)) = input.split_first() else {
        return;
    };
    let records = Bytes::copy_from_slice(blob);
    let mut consumed = 0usize;
    let mut split = batches(&records);
    for item in split.by_ref() {
        let Ok(batch) = item else {
            break;
        };
        assert_eq!(
            &batch[..],
            &blob[consumed..consumed + batch.len()],
            "batches are consecutive slices of the blob"
        );
        consumed += batch.len();
        let mut owned = batch.to_vec();
        if flags & RESEAL_CRC != 0 {
            reseal_crc(&mut owned);
        }
        check_batch(&owned);
    }
    assert!(split.next().is_none(), "the splitter stops after an error");
    assert!(consumed <= blob.len());
}

/// Recomputes the CRC-32C of a whole batch (bytes 21.. into bytes 17..21).
fn reseal_crc(batch: &mut [u8]) {
    if batch.len() >= BATCH_HEADER_BYTES {
        let crc = crc32c::crc32c(&batch[21..]);
        batch[17..21].copy_from_slice(&crc.to_be_bytes());
    }
}

/// Checks one batch the splitter yielded.
fn check_batch(batch: &[u8]) {
    let unverified = BatchView::parse_unverified(batch);
    match BatchView::parse(batch) {
        Ok(view) => {
            assert_eq!(view.bytes().len(), batch.len());
            assert_eq!(batch[16], 2, "magic");
            assert!(view.record_count() >= 0 && view.last_offset_delta() >= 0);
            assert!(view.record_count() as u32 <= view.offset_count());
            assert!(view.offset_count() >= 1);
            assert!(
                unverified.is_ok(),
                "a verified batch passes the unverified checks"
            );
            let mut moved = batch.to_vec();
            set_base_offset(&mut moved, 0x1234_5678);
            let moved_view = BatchView::parse(&moved).expect("the base offset is outside the CRC");
            assert_eq!(moved_view.base_offset(), 0x1234_5678);
            assert_eq!(moved_view.offset_count(), view.offset_count());
            // The idempotent producer rules read the same header fields;
            // they must answer (accept or refuse), never panic.
            let _ = ringlog_engine::producer::classify(&view);
        }
        Err(BatchError::CrcMismatch { stored, computed }) => {
            assert_ne!(stored, computed);
            assert_eq!(computed, crc32c::crc32c(&batch[21..]));
        }
        Err(BatchError::TooShort(n)) => assert!(n < BATCH_HEADER_BYTES),
        Err(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringlog_engine::batch::build_batch;

    #[test]
    fn resealing_repairs_a_damaged_crc() {
        let mut batch = build_batch(7, &[b"abc".as_slice()]);
        batch[17] ^= 0xff;
        assert!(BatchView::parse(&batch).is_err());
        reseal_crc(&mut batch);
        assert!(BatchView::parse(&batch).is_ok());
    }

    #[test]
    fn steered_input_round_trips_every_api() {
        for (index, entry) in SUPPORTED_APIS.iter().enumerate() {
            let mut frame = (entry.key as i16).to_be_bytes().to_vec();
            frame.extend_from_slice(&entry.max.to_be_bytes());
            frame.extend_from_slice(&[0, 0, 0, 9]);
            let input = steered_request_input(&frame);
            assert_eq!(input[0] as usize, index);
            assert_eq!(input[1] as i16, entry.max - entry.min);
            request_decoder(&input);
        }
    }

    #[test]
    fn empty_and_tiny_inputs_return() {
        request_decoder(&[]);
        request_decoder(&[0]);
        request_decoder(&[RAW_STREAM]);
        record_batch_view(&[]);
        record_batch_view(&[RESEAL_CRC]);
    }
}
