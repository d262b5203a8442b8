//! The partition count of a new topic: from the counts a CreateTopics
//! topic asks for, or from its manual replica assignment.
//!
//! Layer: controller (see the crate docs). A manual replica assignment is
//! accepted when it is what a one-broker Kafka accepts: every partition on
//! this broker ([`NODE_ID`]) alone, partitions numbered from 0 without
//! gaps. Which shard holds a partition stays ringlog's choice (by load), as
//! a broker's log directory is Kafka's.

use crate::ids::NODE_ID;
use crate::message::{AdminError, AdminResult};
use kafka_protocol::ResponseError;
use ringlog_engine::meta::PARTITIONS_MAX;

/// The partition count a CreateTopics topic asks for, checked as Kafka's
/// controller (`ReplicationControlManager.createTopic`) checks it on a
/// cluster whose only broker is [`NODE_ID`]. Without `assignments`:
/// `partitions` (-1: `default_partitions`) and a replication factor of 1
/// (or -1). With them: both counts -1 and one partition per entry.
pub fn requested_partitions(
    partitions: i32,
    replication_factor: i16,
    assignments: &[(i32, Vec<i32>)],
    default_partitions: u32,
) -> AdminResult<u32> {
    let count = if assignments.is_empty() {
        if !matches!(replication_factor, -1 | 1) {
            return Err(AdminError::new(
                ResponseError::InvalidReplicationFactor,
                format!("replication factor {replication_factor}: a single broker stores one replica (use 1 or -1)"),
            ));
        }
        match partitions {
            -1 => default_partitions as i64,
            n => n as i64,
        }
    } else {
        if replication_factor != -1 {
            return Err(AdminError::new(
                ResponseError::InvalidRequest,
                "A manual partition assignment was specified, but replication factor was not set to -1.",
            ));
        }
        if partitions != -1 {
            return Err(AdminError::new(
                ResponseError::InvalidRequest,
                "A manual partition assignment was specified, but numPartitions was not set to -1.",
            ));
        }
        check_assignments(assignments)?;
        assignments.len() as i64
    };
    if count < 1 || count > PARTITIONS_MAX as i64 {
        return Err(AdminError::new(
            ResponseError::InvalidPartitions,
            format!("partition count {count} outside 1..={PARTITIONS_MAX}"),
        ));
    }
    Ok(count as u32)
}

/// Kafka's checks of a manual assignment, in its order and with its
/// messages, on a cluster of one broker.
fn check_assignments(assignments: &[(i32, Vec<i32>)]) -> AdminResult {
    let refuse = |message: String| {
        Err(AdminError::new(
            ResponseError::InvalidReplicaAssignment,
            message,
        ))
    };
    let mut seen = std::collections::BTreeSet::new();
    for (partition, brokers) in assignments {
        if !seen.insert(*partition) {
            return refuse(format!(
                "Found multiple manual partition assignments for partition {partition}"
            ));
        }
        if brokers.is_empty() {
            return refuse(
                "The manual partition assignment includes an empty replica list.".to_string(),
            );
        }
        let mut sorted = brokers.clone();
        sorted.sort_unstable();
        for (i, broker) in sorted.iter().enumerate() {
            if *broker != NODE_ID {
                return refuse(format!(
                    "The manual partition assignment includes broker {broker}, but no such broker is registered."
                ));
            }
            if i > 0 {
                return refuse(format!(
                    "The manual partition assignment includes the broker {broker} more than once."
                ));
            }
        }
        // One replica on the only broker: every partition has the same
        // replica count, which Kafka checks next.
    }
    if !(0..assignments.len() as i32).all(|p| seen.contains(&p)) {
        return refuse("partitions should be a consecutive 0-based integer sequence".to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_node(partitions: i32) -> Vec<(i32, Vec<i32>)> {
        (0..partitions).map(|p| (p, vec![NODE_ID])).collect()
    }

    fn refused(assignments: &[(i32, Vec<i32>)]) -> AdminError {
        requested_partitions(-1, -1, assignments, 1).unwrap_err()
    }

    #[test]
    fn counts_and_replication_factors() {
        assert_eq!(requested_partitions(3, 1, &[], 8), Ok(3));
        assert_eq!(requested_partitions(-1, -1, &[], 8), Ok(8));
        for (partitions, rf, error) in [
            (0, 1, ResponseError::InvalidPartitions),
            (-2, 1, ResponseError::InvalidPartitions),
            (
                PARTITIONS_MAX as i32 + 1,
                1,
                ResponseError::InvalidPartitions,
            ),
            (1, 3, ResponseError::InvalidReplicationFactor),
            (1, 0, ResponseError::InvalidReplicationFactor),
        ] {
            let err = requested_partitions(partitions, rf, &[], 8).unwrap_err();
            assert_eq!(err.error, error, "{partitions} x{rf}: {}", err.message);
        }
    }

    #[test]
    fn an_assignment_to_this_broker_alone_gives_its_partition_count() {
        assert_eq!(requested_partitions(-1, -1, &on_node(1), 8), Ok(1));
        assert_eq!(requested_partitions(-1, -1, &on_node(5), 8), Ok(5));
        // Any order of the entries.
        let shuffled = vec![(2, vec![0]), (0, vec![0]), (1, vec![0])];
        assert_eq!(requested_partitions(-1, -1, &shuffled, 8), Ok(3));
    }

    #[test]
    fn other_assignments_are_refused_as_kafka_refuses_them() {
        for (assignments, message) in [
            (
                vec![(0, vec![1])],
                "includes broker 1, but no such broker is registered",
            ),
            (
                vec![(0, vec![0, 1])],
                "includes broker 1, but no such broker is registered",
            ),
            (
                vec![(0, vec![0, 0])],
                "includes the broker 0 more than once",
            ),
            (vec![(0, vec![])], "includes an empty replica list"),
            (
                vec![(0, vec![0]), (0, vec![0])],
                "multiple manual partition assignments for partition 0",
            ),
            (
                vec![(0, vec![0]), (2, vec![0])],
                "consecutive 0-based integer sequence",
            ),
            (vec![(1, vec![0])], "consecutive 0-based integer sequence"),
            (vec![(-1, vec![0])], "consecutive 0-based integer sequence"),
        ] {
            let err = refused(&assignments);
            assert_eq!(
                err.error,
                ResponseError::InvalidReplicaAssignment,
                "{assignments:?}"
            );
            assert!(
                err.message.contains(message),
                "{assignments:?}: {}",
                err.message
            );
        }
        // The counts must be left to the assignment.
        for (partitions, rf, field) in [(1, -1, "numPartitions"), (-1, 1, "replication factor")] {
            let err = requested_partitions(partitions, rf, &on_node(1), 8).unwrap_err();
            assert_eq!(err.error, ResponseError::InvalidRequest);
            assert!(err.message.contains(field), "{}", err.message);
        }
        let too_many = on_node(PARTITIONS_MAX as i32 + 1);
        assert_eq!(refused(&too_many).error, ResponseError::InvalidPartitions);
    }
}
