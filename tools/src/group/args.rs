//! The command line of `ringlog group`. Values are checked while clap
//! parses them (`--state` names, `--to-datetime` times), so a typo is a
//! usage error (exit 2) before anything reaches the broker.
//!
//! `--to-datetime` accepts one fixed RFC 3339 layout (and epoch
//! milliseconds), read byte by byte here so the message can say where the
//! text went wrong; a general parser would accept more forms than the
//! README promises and answer in its own words. The calendar behind it
//! (month lengths, leap years, days since the epoch) is jiff's.

use super::{DELETE_GROUPS_MAX, GROUP_STATES};
use crate::kafka_client::BrokerArgs;
use clap::{ArgGroup, Args, Subcommand};
use jiff::civil::{Date, DateTime, Time};
use jiff::SignedDuration;

/// The Unix epoch, where `--to-datetime` counts milliseconds from.
const EPOCH: DateTime = DateTime::constant(1970, 1, 1, 0, 0, 0, 0);

/// `ringlog group` and its options.
#[derive(Args)]
pub struct GroupArgs {
    #[command(flatten)]
    pub(super) broker: BrokerArgs,
    #[command(subcommand)]
    pub(super) command: GroupCommand,
}

/// The `ringlog group` subcommands.
#[derive(Subcommand)]
pub enum GroupCommand {
    /// List every consumer group with its state and protocol type.
    List {
        /// Only groups in this state (Stable, Empty, PreparingRebalance,
        /// CompletingRebalance, Dead, ...); repeat or comma-separate for several.
        #[arg(
            long = "state",
            value_name = "STATE",
            value_delimiter = ',',
            value_parser = parse_state
        )]
        states: Vec<String>,
    },
    /// Show a group's state, committed offsets, log ends, lag and members.
    Describe {
        /// Group id.
        group: String,
    },
    /// Delete groups that have no members, with their committed offsets.
    Delete {
        /// Group ids.
        #[arg(required = true, num_args = 1..=DELETE_GROUPS_MAX)]
        groups: Vec<String>,
    },
    /// Move a group's committed offsets on a topic (the group must have no members).
    ResetOffsets(ResetArgs),
}

/// `ringlog group reset-offsets` options.
#[derive(Args)]
#[command(group(
    ArgGroup::new("target")
        .args(["to_earliest", "to_latest", "to_offset", "shift_by", "to_datetime"])
        .required(true)
))]
pub struct ResetArgs {
    /// Group id.
    pub(super) group: String,
    /// The topic whose offsets to reset.
    #[arg(long)]
    pub(super) topic: String,
    /// Only these partitions (comma-separated); default every partition.
    #[arg(
        long,
        value_name = "P,P,...",
        value_delimiter = ',',
        value_parser = clap::value_parser!(i32).range(0..)
    )]
    pub(super) partitions: Vec<i32>,
    /// To the log start.
    #[arg(long)]
    to_earliest: bool,
    /// To the log end.
    #[arg(long)]
    to_latest: bool,
    /// To this offset (clamped into the log).
    #[arg(long, value_name = "OFFSET", value_parser = clap::value_parser!(i64).range(0..))]
    to_offset: Option<i64>,
    /// Move the committed offset by N (negative: back), clamped into the log.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    shift_by: Option<i64>,
    /// To the first record at or after this time: RFC 3339
    /// (2024-05-01T12:00:00Z, 2024-05-01T14:00:00.5+02:00) or epoch milliseconds.
    #[arg(long, value_name = "TIME", value_parser = parse_datetime_ms)]
    to_datetime: Option<i64>,
    /// Print the new offsets without committing them.
    #[arg(long)]
    pub(super) dry_run: bool,
}

impl ResetArgs {
    pub(super) fn target(&self) -> ResetTarget {
        match (self.to_offset, self.shift_by, self.to_datetime) {
            _ if self.to_earliest => ResetTarget::Earliest,
            _ if self.to_latest => ResetTarget::Latest,
            (Some(offset), _, _) => ResetTarget::Offset(offset),
            (_, Some(shift), _) => ResetTarget::ShiftBy(shift),
            (_, _, Some(timestamp_ms)) => ResetTarget::Timestamp(timestamp_ms),
            (None, None, None) => unreachable!("clap requires one reset target"),
        }
    }
}

/// Where `reset-offsets` moves each partition's committed offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetTarget {
    /// The log start offset.
    Earliest,
    /// The log end offset.
    Latest,
    /// This offset.
    Offset(i64),
    /// The committed offset plus this (may be negative).
    ShiftBy(i64),
    /// The first offset whose record is at or after this time (ms since
    /// the epoch); the log end when there is none.
    Timestamp(i64),
}

/// A group state given to `--state`, in Kafka's spelling; any case is
/// accepted.
pub fn parse_state(text: &str) -> Result<String, String> {
    GROUP_STATES
        .iter()
        .find(|state| state.eq_ignore_ascii_case(text))
        .map(|state| state.to_string())
        .ok_or_else(|| {
            format!(
                "{text:?} is not a group state (one of {})",
                GROUP_STATES.join(", ")
            )
        })
}

/// Milliseconds since the Unix epoch of `text`: a non-negative integer
/// (already milliseconds), or an RFC 3339 date-time such as
/// `2024-05-01T12:00:00Z` or `2024-05-01t14:00:00.250+02:00` (fractions
/// beyond milliseconds are dropped).
pub fn parse_datetime_ms(text: &str) -> Result<i64, String> {
    let invalid = |why: &str| {
        format!("{text:?} is not RFC 3339 (like 2024-05-01T12:00:00Z) or epoch milliseconds: {why}")
    };
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<i64>().map_err(|_| invalid("too large"));
    }
    let bytes = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Result<i64, String> {
        match bytes.get(range.clone()) {
            Some(part) if part.iter().all(u8::is_ascii_digit) => Ok(part
                .iter()
                .fold(0, |value, digit| value * 10 + i64::from(digit - b'0'))),
            _ => Err(invalid(&format!("expected digits at byte {}", range.start))),
        }
    };
    let separator = |at: usize, allowed: &[u8]| -> Result<(), String> {
        match bytes.get(at) {
            Some(b) if allowed.contains(b) => Ok(()),
            _ => Err(invalid(&format!(
                "expected {:?} at byte {at}",
                String::from_utf8_lossy(allowed)
            ))),
        }
    };
    let year = digits(0..4)?;
    separator(4, b"-")?;
    let month = digits(5..7)?;
    separator(7, b"-")?;
    let day = digits(8..10)?;
    separator(10, b"Tt ")?;
    let hour = digits(11..13)?;
    separator(13, b":")?;
    let minute = digits(14..16)?;
    separator(16, b":")?;
    let second = digits(17..19)?;
    let mut at = 19;
    let mut fraction_ms = 0;
    if bytes.get(at) == Some(&b'.') {
        let start = at + 1;
        at = start;
        while bytes.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        if at == start {
            return Err(invalid("no digits after '.'"));
        }
        // The first three digits are milliseconds; pad shorter fractions.
        let kept = &text[start..at.min(start + 3)];
        fraction_ms = format!("{kept:0<3}")
            .parse::<i64>()
            .map_err(|e| invalid(&e.to_string()))?;
    }
    let offset_minutes = match bytes.get(at) {
        Some(b'Z' | b'z') if at + 1 == bytes.len() => 0,
        Some(sign @ (b'+' | b'-')) if at + 6 == bytes.len() => {
            let hours = digits(at + 1..at + 3)?;
            separator(at + 3, b":")?;
            let minutes = digits(at + 4..at + 6)?;
            if hours > 23 || minutes > 59 {
                return Err(invalid("UTC offset out of range"));
            }
            let total = hours * 60 + minutes;
            if *sign == b'-' {
                -total
            } else {
                total
            }
        }
        _ => return Err(invalid("expected Z or a UTC offset like +02:00 at the end")),
    };
    if !(1..=12).contains(&month) {
        return Err(invalid("month out of range"));
    }
    // Every field was read from at most four digits (the year) or two (the
    // rest), so the casts below keep its value. jiff checks the calendar:
    // days per month with leap years, 00:00:00 to 23:59:59 (no leap
    // second). With the year and month in range, only the day can make
    // `Date::new` fail.
    let date =
        Date::new(year as i16, month as i8, day as i8).map_err(|_| invalid("day out of range"))?;
    let time = Time::new(hour as i8, minute as i8, second as i8, 0)
        .map_err(|_| invalid("time of day out of range"))?;
    // Local time minus its offset is UTC. Counted as a duration from the
    // epoch, not as a jiff `Timestamp`: that one ends a day early
    // (9999-12-30T22:00Z) so every offset can show it, and the last
    // instants of 9999 are valid input here.
    let since_epoch =
        date.to_datetime(time).duration_since(EPOCH) - SignedDuration::from_mins(offset_minutes);
    let ms = since_epoch.as_secs() * 1000 + fraction_ms;
    if ms < 0 {
        return Err(invalid("before 1970-01-01T00:00:00Z"));
    }
    Ok(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The message `--to-datetime` shows for `text`, rejected because of `why`.
    fn rejection(text: &str, why: &str) -> String {
        format!("{text:?} is not RFC 3339 (like 2024-05-01T12:00:00Z) or epoch milliseconds: {why}")
    }

    #[test]
    fn datetimes_give_exact_epoch_milliseconds() {
        for (text, ms) in [
            // Epoch milliseconds, as given.
            ("0", 0),
            ("00001", 1),
            ("1714564800000", 1_714_564_800_000),
            ("9223372036854775807", i64::MAX),
            // UTC, with every spelling of the separators.
            ("1970-01-01T00:00:00Z", 0),
            ("2024-05-01T12:00:00Z", 1_714_564_800_000),
            ("2024-05-01t12:00:00z", 1_714_564_800_000),
            ("2024-05-01 12:00:00Z", 1_714_564_800_000),
            ("1999-12-31T23:59:59Z", 946_684_799_000),
            ("2000-01-01T00:00:00Z", 946_684_800_000),
            // Leap years: every 4th, not every 100th, every 400th.
            ("1972-02-29T00:00:00Z", 68_169_600_000),
            ("2000-02-29T00:00:00Z", 951_782_400_000),
            ("2024-02-29T23:59:59+00:00", 1_709_251_199_000),
            ("2100-02-28T23:59:59Z", 4_107_542_399_000),
            ("2100-03-01T00:00:00Z", 4_107_542_400_000),
            ("2400-02-29T00:00:00Z", 13_574_563_200_000),
            // Fractions: milliseconds, padded or truncated (never rounded).
            ("1970-01-01T00:00:00.001Z", 1),
            ("1970-01-01T00:00:00.1Z", 100),
            ("1970-01-01T00:00:00.12Z", 120),
            ("1970-01-01T00:00:00.123Z", 123),
            ("1970-01-01T00:00:00.1239Z", 123),
            ("1970-01-01T00:00:00.000000001Z", 0),
            ("1970-01-01T00:00:00.12345678901234567890Z", 123),
            ("2024-12-31T23:59:59.999Z", 1_735_689_599_999),
            // Offsets: local time minus the offset.
            ("1970-01-01T01:00:00+01:00", 0),
            ("1970-01-01T00:00:00-00:00", 0),
            ("1970-01-01T00:00:00-23:59", 86_340_000),
            ("2024-01-01T00:00:00+23:59", 1_703_980_860_000),
            ("2024-05-01T14:00:00.5+02:00", 1_714_564_800_500),
            ("2024-05-01T14:00:00.500999+02:00", 1_714_564_800_500),
            ("2024-05-01T17:45:00+05:45", 1_714_564_800_000),
            ("2000-03-01T00:00:00-00:30", 951_870_600_000),
            // The last representable instants.
            ("9999-12-31T23:59:59.999Z", 253_402_300_799_999),
            ("9999-12-31T23:59:59-23:59", 253_402_387_139_000),
        ] {
            assert_eq!(parse_datetime_ms(text), Ok(ms), "{text}");
        }
    }

    #[test]
    fn every_month_ends_on_its_last_day() {
        const LAST_DAYS: [(i64, [i64; 12]); 4] = [
            (2023, [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]),
            (2024, [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]),
            (2100, [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]),
            (2000, [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]),
        ];
        const DAY_MS: i64 = 86_400_000;
        for (year, last_days) in LAST_DAYS {
            for (month, last) in (1..=12).zip(last_days) {
                let last_day = format!("{year}-{month:02}-{last:02}T00:00:00Z");
                let after = format!("{year}-{month:02}-{:02}T00:00:00Z", last + 1);
                let next = if month == 12 {
                    format!("{}-01-01T00:00:00Z", year + 1)
                } else {
                    format!("{year}-{:02}-01T00:00:00Z", month + 1)
                };
                assert_eq!(
                    parse_datetime_ms(&last_day).map(|ms| ms + DAY_MS),
                    parse_datetime_ms(&next),
                    "{last_day} is the day before {next}"
                );
                assert_eq!(
                    parse_datetime_ms(&after),
                    Err(rejection(&after, "day out of range"))
                );
            }
        }
    }

    #[test]
    fn bad_datetimes_are_refused_with_the_reason() {
        assert_eq!(
            parse_datetime_ms("2024-05-01"),
            Err(
                "\"2024-05-01\" is not RFC 3339 (like 2024-05-01T12:00:00Z) or epoch \
                 milliseconds: expected \"Tt \" at byte 10"
                    .to_string()
            )
        );
        for (text, why) in [
            ("", "expected digits at byte 0"),
            ("yesterday", "expected digits at byte 0"),
            ("-5", "expected digits at byte 0"),
            ("+5", "expected digits at byte 0"),
            ("99999999999999999999", "too large"),
            ("24-05-01T12:00:00Z", "expected digits at byte 0"),
            ("2024/05/01T12:00:00Z", "expected \"-\" at byte 4"),
            ("2024-5-01T12:00:00Z", "expected digits at byte 5"),
            ("2024-05-0\u{ff11}T00:00:00Z", "expected digits at byte 8"),
            ("2024-05-01_12:00:00Z", "expected \"Tt \" at byte 10"),
            ("2024-05-01T12:00Z", "expected \":\" at byte 16"),
            (
                "2024-05-01T12:00:00",
                "expected Z or a UTC offset like +02:00 at the end",
            ),
            ("2024-05-01T12:00:00.Z", "no digits after '.'"),
            (
                "2024-05-01T12:00:00,5Z",
                "expected Z or a UTC offset like +02:00 at the end",
            ),
            (
                "2024-05-01T12:00:00+0200",
                "expected Z or a UTC offset like +02:00 at the end",
            ),
            (
                "2024-05-01T12:00:00+02",
                "expected Z or a UTC offset like +02:00 at the end",
            ),
            ("2024-05-01T12:00:00+02:0x", "expected digits at byte 23"),
            ("2024-05-01T12:00:00+02-00", "expected \":\" at byte 22"),
            ("2024-05-01T12:00:00+24:00", "UTC offset out of range"),
            ("2024-05-01T12:00:00-00:60", "UTC offset out of range"),
            (
                "2024-05-01T12:00:00Zjunk",
                "expected Z or a UTC offset like +02:00 at the end",
            ),
            (
                "2024-05-01T12:00:00Z[UTC]",
                "expected Z or a UTC offset like +02:00 at the end",
            ),
            ("2024-00-01T00:00:00Z", "month out of range"),
            ("2024-13-01T00:00:00Z", "month out of range"),
            ("2024-13-45T25:61:61Z", "month out of range"),
            ("2024-05-00T00:00:00Z", "day out of range"),
            ("2023-02-29T00:00:00Z", "day out of range"),
            ("2100-02-29T00:00:00Z", "day out of range"),
            ("2024-04-31T00:00:00Z", "day out of range"),
            ("2023-02-29T24:00:00Z", "day out of range"),
            ("2024-05-01T24:00:00Z", "time of day out of range"),
            ("2024-05-01T23:60:00Z", "time of day out of range"),
            ("2024-05-01T23:59:60Z", "time of day out of range"),
            ("2024-05-01T24:00:00+24:00", "UTC offset out of range"),
            ("1969-12-31T23:59:59Z", "before 1970-01-01T00:00:00Z"),
            ("1969-12-31T23:59:59.999Z", "before 1970-01-01T00:00:00Z"),
            ("1970-01-01T00:00:00+00:01", "before 1970-01-01T00:00:00Z"),
            ("0000-03-01T00:00:00Z", "before 1970-01-01T00:00:00Z"),
        ] {
            assert_eq!(parse_datetime_ms(text), Err(rejection(text, why)), "{text}");
        }
    }
}
