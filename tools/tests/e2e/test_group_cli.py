"""`ringlog group` against a real server and real confluent-kafka
consumers: list, describe (members, committed offsets, lag), delete, and
every reset-offsets mode, each reset checked through the AdminClient and
by a new member of the group resuming exactly at the reset offset."""

from __future__ import annotations

import os
import subprocess
from datetime import datetime, timezone

import confluent_kafka

from group_helpers import (
    PARTITIONS,
    SERVER_ARGS,
    await_partitioned,
    committed,
    consume_exactly,
    describe,
    member,
    produce_tagged,
)
from kafka_clients import CLIENT_TIMEOUT_S, confluent_producer, create_topic
from ringlog_server import RinglogServer, ringlog_bin, wait_until

FIRST_BATCH = 10


def ringlog_group(server: RinglogServer, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("RINGLOG_BOOTSTRAP", None)
    return subprocess.run(
        [str(ringlog_bin()), "group", *args, "--bootstrap", server.bootstrap],
        capture_output=True,
        text=True,
        env=env,
        timeout=CLIENT_TIMEOUT_S,
    )


def succeeded(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, (
        f"{result.args} exited {result.returncode}:\n{result.stderr}{result.stdout}"
    )
    assert result.stderr == "", result.stderr
    return result.stdout


def failed(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, (
        f"{result.args} exited {result.returncode}, expected 1:\n{result.stderr}{result.stdout}"
    )
    return result.stderr


def table(text: str) -> list[dict[str, str]]:
    """A table the CLI printed: a header line, then one row per line."""
    lines = text.strip("\n").splitlines()
    header = lines[0].split()
    rows = [line.split() for line in lines[1:]]
    assert all(len(row) == len(header) for row in rows), text
    return [dict(zip(header, row)) for row in rows]


def listed(server: RinglogServer, *args: str) -> dict[str, tuple[str, str]]:
    out = succeeded(ringlog_group(server, "list", *args))
    if out == "no groups\n":
        return {}
    return {r["GROUP"]: (r["STATE"], r["PROTOCOL-TYPE"]) for r in table(out)}


def produce_with_timestamp(server: RinglogServer, topic: str, counts: dict[int, int], ts_ms: int):
    producer = confluent_producer(server.bootstrap)
    for p, count in counts.items():
        for i in range(count):
            producer.produce(topic, value=f"late.p{p}.{i}".encode(), partition=p, timestamp=ts_ms)
    assert producer.flush(CLIENT_TIMEOUT_S) == 0


def resumed_at(server: RinglogServer, group: str, topic: str) -> dict[int, int]:
    """The offset of the first record a new member of ``group`` reads from
    each partition (it does not commit)."""
    consumer = member(server, group, "resumer")
    first: dict[int, int] = {}
    try:
        consumer.subscribe([topic])

        def every_partition():
            msg = consumer.poll(0.2)
            if msg is not None:
                assert msg.error() is None, msg.error()
                first.setdefault(msg.partition(), msg.offset())
            return len(first) == PARTITIONS

        wait_until(every_partition, CLIENT_TIMEOUT_S, "a record from every partition")
    finally:
        consumer.close()
    await_empty(server, group)
    return first


def await_empty(server: RinglogServer, group: str) -> None:
    wait_until(
        lambda: describe(server, group).state == confluent_kafka.ConsumerGroupState.EMPTY,
        CLIENT_TIMEOUT_S,
        f"group {group} to have no members",
    )


def reset(
    server: RinglogServer, group: str, topic: str, *args: str
) -> tuple[dict[int, tuple[str, str]], str]:
    """Runs reset-offsets; the (old, new) offsets it printed by partition,
    and its last line."""
    out = succeeded(ringlog_group(server, "reset-offsets", group, "--topic", topic, *args))
    lines = out.splitlines()
    rows = table("\n".join(lines[:-1]))
    assert all(r["TOPIC"] == topic for r in rows), out
    return {int(r["PARTITION"]): (r["OLD-OFFSET"], r["NEW-OFFSET"]) for r in rows}, lines[-1]


def test_group_cli_lists_describes_resets_and_deletes(server_factory):
    server = server_factory(*SERVER_ARGS)
    topic, group = "cli-orders", "cli-billing"
    create_topic(server.bootstrap, topic, PARTITIONS)
    assert listed(server) == {}

    # A member consumes and commits the first batch; then more arrives
    # (p + 1 records on partition p, stamped after everything before).
    first = produce_tagged(server, topic, "first", FIRST_BATCH)
    consumer = member(server, group, "cli-a")
    consumer.subscribe([topic])
    await_partitioned([consumer], "the member's assignment")
    consume_exactly([consumer], first, "the first batch")
    assert committed(server, group, topic) == {p: FIRST_BATCH for p in range(PARTITIONS)}
    late_ms = int(datetime.now(timezone.utc).timestamp() * 1000) + 1
    produce_with_timestamp(server, topic, {p: p + 1 for p in range(PARTITIONS)}, late_ms)
    ends = {p: FIRST_BATCH + p + 1 for p in range(PARTITIONS)}

    assert listed(server) == {group: ("Stable", "consumer")}
    assert listed(server, "--state", "stable,PreparingRebalance") == {group: ("Stable", "consumer")}
    assert listed(server, "--state", "Empty") == {}

    out = succeeded(ringlog_group(server, "describe", group))
    header, offsets, members = out.split("\n\n")
    assert table(header) == [
        {"group": "state", group: "Stable"},
        {"group": "protocol-type", group: "consumer"},
        {"group": "protocol", group: "range"},
        {"group": "members", group: "1"},
    ], out
    host = describe(server, group).members[0].host
    member_id = consumer.memberid()
    assert table(offsets) == [
        {
            "TOPIC": topic,
            "PARTITION": str(p),
            "COMMITTED": str(FIRST_BATCH),
            "LOG-END": str(ends[p]),
            "LAG": str(ends[p] - FIRST_BATCH),
            "MEMBER-ID": member_id,
            "CLIENT-ID": "cli-a",
            "HOST": host,
        }
        for p in range(PARTITIONS)
    ], out
    assert table(members) == [
        {
            "MEMBER-ID": member_id,
            "INSTANCE-ID": "-",
            "CLIENT-ID": "cli-a",
            "HOST": host,
            "ASSIGNMENT": f"{topic}:" + ",".join(str(p) for p in range(PARTITIONS)),
        }
    ], out

    # A group with a member can be neither reset nor deleted.
    stderr = failed(
        ringlog_group(server, "reset-offsets", group, "--topic", topic, "--to-earliest")
    )
    assert stderr == (
        f"ringlog group: {group}: the group has 1 active member (state Stable); offsets can "
        "only be reset while it has none: stop its consumers first\n"
    )
    stderr = failed(ringlog_group(server, "delete", group))
    assert stderr == (
        f"ringlog group: {group}: NON_EMPTY_GROUP (68): the group still has members; "
        "stop its consumers first\n"
    )
    assert committed(server, group, topic) == {p: FIRST_BATCH for p in range(PARTITIONS)}

    consumer.close()
    await_empty(server, group)
    assert listed(server, "--state", "Empty") == {group: ("Empty", "consumer")}
    out = succeeded(ringlog_group(server, "describe", group))
    assert out.endswith("\n\nno active members\n"), out
    assert [r["LAG"] for r in table(out.split("\n\n")[1])] == [
        str(ends[p] - FIRST_BATCH) for p in range(PARTITIONS)
    ]

    def check(expected: dict[int, int]) -> None:
        assert committed(server, group, topic) == expected
        assert resumed_at(server, group, topic) == expected

    every = range(PARTITIONS)
    late = datetime.fromtimestamp(late_ms / 1000, timezone.utc).isoformat(timespec="milliseconds")
    now = {p: FIRST_BATCH for p in every}
    # (arguments, the new offsets of the partitions they move)
    steps = [
        (["--to-earliest"], {p: 0 for p in every}),
        (["--to-offset", "4", "--partitions", "0,1"], {0: 4, 1: 4}),
        (["--shift-by", "3"], {0: 7, 1: 7, 2: 3, 3: 3, 4: 3, 5: 3}),
        # Clamped at the log start.
        (["--shift-by", "-5"], {0: 2, 1: 2, 2: 0, 3: 0, 4: 0, 5: 0}),
        # The first record at or after the time: the late batch, then the first.
        (["--to-datetime", late], {p: FIRST_BATCH for p in every}),
        (["--to-datetime", str(late_ms - 1_000_000)], {p: 0 for p in every}),
    ]
    for args, moved in steps:
        printed, summary = reset(server, group, topic, *args)
        assert printed == {p: (str(now[p]), str(new)) for p, new in moved.items()}, args
        assert summary == f"group {group}: committed {len(moved)} offsets on topic {topic}"
        now.update(moved)
        check(now)

    # --dry-run prints the plan and changes nothing.
    printed, summary = reset(server, group, topic, "--to-latest", "--dry-run")
    assert printed == {p: (str(now[p]), str(ends[p])) for p in range(PARTITIONS)}
    assert summary == "dry run: nothing committed"
    check(now)

    printed, _ = reset(server, group, topic, "--to-latest")
    assert printed == {p: (str(now[p]), str(ends[p])) for p in range(PARTITIONS)}
    # The new member's first records are the ones produced after the reset.
    produce_with_timestamp(server, topic, {p: 1 for p in range(PARTITIONS)}, late_ms)
    check(ends)

    # Delete, then a second delete finds nothing.
    assert succeeded(ringlog_group(server, "delete", group)) == f"deleted group {group}\n"
    assert listed(server) == {}
    assert committed(server, group, topic) == {p: -1001 for p in range(PARTITIONS)}
    stderr = failed(ringlog_group(server, "delete", group))
    assert stderr == f"ringlog group: {group}: GROUP_ID_NOT_FOUND (69): no such group\n"
    stderr = failed(ringlog_group(server, "describe", group))
    assert stderr == f"ringlog group: {group}: GROUP_ID_NOT_FOUND (69): no such group\n"
