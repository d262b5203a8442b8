//! The one tantivy schema of every record index (tail and sealed segment
//! alike), so one parsed query runs against all of them.
//!
//! Indexed text and stored bytes are separate fields: a record's key,
//! value and headers are stored once, as the bytes produced (so a hit is
//! returned exactly, binary or not, without reading the log), and indexed
//! as text derived from them. Text is the lossy UTF-8 conversion of the
//! bytes (`String::from_utf8_lossy`): every valid run is indexed, an
//! invalid byte becomes U+FFFD, which the tokenizer treats as a word
//! break, so a binary value still matches on the words it contains.
//!
//! Field names are chosen for the query language: the JSON field is
//! `value`, so `value.user:alice` reaches the `user` member of a JSON
//! object value (numbers and booleans by value, strings up to
//! [`MEMBER_STRING_BYTES_MAX`] whole and case-insensitively); the words of
//! every value (JSON or not) are `value_text`, a default field, so a bare
//! `alice` finds it either way.

use super::SearchError;
use tantivy::schema::{
    Field, IndexRecordOption, JsonObjectOptions, Schema, TextFieldIndexing, FAST, INDEXED, STORED,
    STRING, TEXT,
};
use tantivy::tokenizer::{LowerCaser, RawTokenizer, TextAnalyzer, TokenizerManager};
use tantivy::{Index, IndexWriter, TantivyDocument};

/// Field names of [`SearchSchema`], as a query names them.
pub mod names {
    /// The record's offset (u64).
    pub const OFFSET: &str = "offset";
    /// The record's timestamp (i64, milliseconds since the epoch).
    pub const TIMESTAMP: &str = "timestamp";
    /// The partition (u64).
    pub const PARTITION: &str = "partition";
    /// The key's words.
    pub const KEY: &str = "key";
    /// The whole key, for exact matches (`key_raw:"user-1"`).
    pub const KEY_RAW: &str = "key_raw";
    /// A JSON object value, by member (`value.user:alice`).
    pub const VALUE: &str = "value";
    /// Every value's words, JSON or not.
    pub const VALUE_TEXT: &str = "value_text";
    /// One entry per header: its key and value as words (`headers:trace`).
    pub const HEADERS: &str = "headers";
}

/// The tokenizer of JSON members' string values: the whole string,
/// lowercased, so `value.user:alice` matches a member whose value is
/// `"Alice"` and nothing longer.
pub const MEMBER_TOKENIZER: &str = "ringlog_member";
/// The longest JSON string member indexed by value in `value`; a longer
/// one (a message, a description) is found by its words, through
/// `value_text`, which holds every value's words anyway. Indexing each
/// word once, not once per field, is what halves the cost of a JSON
/// record (BENCHMARKS.md, "Search").
pub const MEMBER_STRING_BYTES_MAX: usize = 64;

/// The tokenizers of every index and query: tantivy's, and
/// [`MEMBER_TOKENIZER`].
pub fn tokenizers() -> TokenizerManager {
    let manager = TokenizerManager::default();
    manager.register(
        MEMBER_TOKENIZER,
        TextAnalyzer::builder(RawTokenizer::default())
            .filter(LowerCaser)
            .build(),
    );
    manager
}

/// Stored only: the key as produced (absent: a null key).
const KEY_BYTES: &str = "key_bytes";
/// Stored only: the value as produced (absent: a null value).
const VALUE_BYTES: &str = "value_bytes";
/// Stored only: one entry per header, in order (see [`encode_header`]).
const HEADER_BYTES: &str = "header_bytes";

/// The schema and its fields.
#[derive(Clone, Debug)]
pub struct SearchSchema {
    /// The tantivy schema.
    pub schema: Schema,
    /// `offset`: INDEXED, FAST, STORED.
    pub offset: Field,
    /// `timestamp`: INDEXED, FAST, STORED.
    pub timestamp: Field,
    /// `partition`: INDEXED, FAST, STORED.
    pub partition: Field,
    /// `key`: TEXT.
    pub key: Field,
    /// `key_raw`: STRING.
    pub key_raw: Field,
    /// `value`: JSON, TEXT-indexed members.
    pub value: Field,
    /// `value_text`: TEXT.
    pub value_text: Field,
    /// `headers`: TEXT, one entry per header.
    pub headers: Field,
    /// The stored key bytes.
    pub key_bytes: Field,
    /// The stored value bytes.
    pub value_bytes: Field,
    /// The stored headers.
    pub header_bytes: Field,
}

impl SearchSchema {
    /// A new, empty index of this schema in RAM, and its one-thread writer
    /// with `memory_bytes` of arena (at least tantivy's 15 MB minimum).
    pub fn ram_index(
        &self,
        memory_bytes: usize,
    ) -> Result<(Index, IndexWriter<TantivyDocument>), SearchError> {
        let index = Index::builder()
            .schema(self.schema.clone())
            .tokenizers(tokenizers())
            .create_in_ram()?;
        let writer = index.writer_with_num_threads(1, memory_bytes)?;
        Ok((index, writer))
    }

    /// Builds the schema.
    pub fn new() -> Self {
        let mut builder = Schema::builder();
        let offset = builder.add_u64_field(names::OFFSET, INDEXED | FAST | STORED);
        let timestamp = builder.add_i64_field(names::TIMESTAMP, INDEXED | FAST | STORED);
        let partition = builder.add_u64_field(names::PARTITION, INDEXED | FAST | STORED);
        let key = builder.add_text_field(names::KEY, TEXT);
        let key_raw = builder.add_text_field(names::KEY_RAW, STRING);
        let value = builder.add_json_field(
            names::VALUE,
            JsonObjectOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer(MEMBER_TOKENIZER)
                    .set_index_option(IndexRecordOption::Basic),
            ),
        );
        let value_text = builder.add_text_field(names::VALUE_TEXT, TEXT);
        let headers = builder.add_text_field(names::HEADERS, TEXT);
        let key_bytes = builder.add_bytes_field(KEY_BYTES, STORED);
        let value_bytes = builder.add_bytes_field(VALUE_BYTES, STORED);
        let header_bytes = builder.add_bytes_field(HEADER_BYTES, STORED);
        SearchSchema {
            schema: builder.build(),
            offset,
            timestamp,
            partition,
            key,
            key_raw,
            value,
            value_text,
            headers,
            key_bytes,
            value_bytes,
            header_bytes,
        }
    }

    /// The fields a query word without a field name searches.
    pub fn default_fields(&self) -> Vec<Field> {
        vec![self.value_text, self.value, self.key, self.headers]
    }
}

impl Default for SearchSchema {
    fn default() -> Self {
        SearchSchema::new()
    }
}

/// One stored header: a flag byte (1: the value is null), the key's
/// length (u32 little-endian), the key, then the value.
pub(crate) fn encode_header(key: &[u8], value: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + key.len() + value.map_or(0, <[u8]>::len));
    out.push(u8::from(value.is_none()));
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(value.unwrap_or_default());
    out
}

/// The header [`encode_header`] wrote; `None` if the bytes are not one.
pub(crate) fn decode_header(bytes: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    let (&flag, rest) = bytes.split_first()?;
    let length = rest.get(..4)?;
    let length = u32::from_le_bytes(length.try_into().ok()?) as usize;
    let key = rest.get(4..4usize.checked_add(length)?)?;
    let value = rest.get(4 + length..)?;
    match flag {
        0 => Some((key, Some(value))),
        1 if value.is_empty() => Some((key, None)),
        _ => None,
    }
}
