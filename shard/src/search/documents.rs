//! One stored RecordBatch v2 -> one tantivy document per record, through
//! the engine's bounded record walk (every codec; corrupt bytes are an
//! error, never a panic).

use super::schema::{encode_header, SearchSchema, MEMBER_STRING_BYTES_MAX};
use super::SearchError;
use ringlog_engine::batch::{BatchError, BatchView};
use ringlog_engine::records::{Record, RecordWalker};
use std::collections::BTreeMap;
use tantivy::schema::OwnedValue;
use tantivy::TantivyDocument;

/// The documents of every record of `batch` (a stored batch: CRC-checked
/// here, offsets from its base offset) in `partition`, and the bytes of
/// their keys, values and headers (decompressed). All or nothing: a
/// batch that does not decode yields no document. The batch bounds the
/// result (its records decompress to at most the engine's
/// `DECOMPRESSED_BYTES_MAX`).
pub fn batch_documents(
    schema: &SearchSchema,
    partition: u32,
    batch: &[u8],
) -> Result<(Vec<TantivyDocument>, u64), SearchError> {
    let view = BatchView::parse(batch)?;
    let mut walker = RecordWalker::new(&view).map_err(BatchError::from)?;
    let mut documents = Vec::new();
    let mut records_bytes = 0;
    while let Some(record) = walker.next_record().map_err(BatchError::from)? {
        let headers_bytes: usize = record
            .headers()
            .map(|h| h.key.len() + h.value.map_or(0, <[u8]>::len))
            .sum();
        records_bytes += (record.key.map_or(0, <[u8]>::len)
            + record.value.map_or(0, <[u8]>::len)
            + headers_bytes) as u64;
        documents.push(record_document(schema, partition, &record));
    }
    Ok((documents, records_bytes))
}

/// A JSON member as `value` indexes it: numbers, booleans and strings up
/// to [`MEMBER_STRING_BYTES_MAX`] by value, objects and arrays member by
/// member; a longer string is left to `value_text` (see the schema).
/// `None` when nothing of it is indexed here. Bounded by the value's
/// nesting, which serde_json limits to 128 levels.
fn member_value(member: serde_json::Value) -> Option<OwnedValue> {
    use serde_json::Value as J;
    match member {
        J::String(s) if s.len() > MEMBER_STRING_BYTES_MAX => None,
        J::Object(object) => Some(OwnedValue::Object(
            object
                .into_iter()
                .filter_map(|(name, member)| Some((name, member_value(member)?)))
                .collect(),
        )),
        J::Array(items) => Some(OwnedValue::Array(
            items.into_iter().filter_map(member_value).collect(),
        )),
        other => Some(OwnedValue::from(other)),
    }
}

/// The document of one record.
fn record_document(schema: &SearchSchema, partition: u32, record: &Record<'_>) -> TantivyDocument {
    let mut doc = TantivyDocument::new();
    doc.add_u64(schema.offset, record.offset);
    doc.add_i64(schema.timestamp, record.timestamp_ms);
    doc.add_u64(schema.partition, u64::from(partition));
    if let Some(key) = record.key {
        let text = String::from_utf8_lossy(key);
        doc.add_text(schema.key, &text);
        doc.add_text(schema.key_raw, &text);
        doc.add_bytes(schema.key_bytes, key);
    }
    if let Some(value) = record.value {
        if let Ok(serde_json::Value::Object(object)) = serde_json::from_slice(value) {
            let members: BTreeMap<String, OwnedValue> = object
                .into_iter()
                .filter_map(|(name, member)| Some((name, member_value(member)?)))
                .collect();
            doc.add_object(schema.value, members);
        }
        doc.add_text(schema.value_text, String::from_utf8_lossy(value));
        doc.add_bytes(schema.value_bytes, value);
    }
    for header in record.headers() {
        let key = String::from_utf8_lossy(header.key);
        let text = match header.value {
            Some(value) => format!("{key} {}", String::from_utf8_lossy(value)),
            None => key.into_owned(),
        };
        doc.add_text(schema.headers, text);
        doc.add_bytes(
            schema.header_bytes,
            &encode_header(header.key, header.value),
        );
    }
    doc
}
