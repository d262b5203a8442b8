"""Consumer groups with real clients: membership and rebalances, committed
offsets, session expiry, restarts (clean and kill -9), and the admin
APIs (ListGroups, DescribeGroups, DeleteGroups, OffsetDelete)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import confluent_kafka
import kafka
import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

from group_helpers import (
    PARTITIONS,
    SERVER_ARGS,
    SESSION_TIMEOUT_MS,
    assignments,
    await_partitioned,
    committed,
    consume_exactly,
    describe,
    member,
    produce_tagged,
)
from kafka_clients import CLIENT_TIMEOUT_S, admin, create_topic, kafka_error
from kafka_wire import KafkaConn, Reader, i32, string
from ringlog_server import RinglogServer, wait_until


def test_three_consumers_share_take_over_resume_and_survive_restart(server_factory):
    server = server_factory(*SERVER_ARGS)
    topic, group = "orders", "billing"
    create_topic(server.bootstrap, topic, PARTITIONS)
    a, b, c = (member(server, group, n) for n in ("a", "b", "c"))
    for consumer in (a, b, c):
        consumer.subscribe([topic])
    split = await_partitioned([a, b, c], "three members to split six partitions")
    assert all(len(parts) == 2 for parts in split), split
    batch1 = produce_tagged(server, topic, "b1", 50)
    consume_exactly([a, b, c], batch1, "stable three-member group")
    assert committed(server, group, topic) == {p: 50 for p in range(PARTITIONS)}
    description = describe(server, group)
    assert description.state == confluent_kafka.ConsumerGroupState.STABLE
    assert sorted(m.client_id for m in description.members) == ["a", "b", "c"]

    # c leaves: a and b take over its partitions from its commits.
    taken = {tp.partition for tp in c.assignment()}
    c.close()
    split = await_partitioned([a, b], "two members to take over the leaver's partitions")
    assert taken <= {p for parts in split for p in parts}
    batch2 = produce_tagged(server, topic, "b2", 30)
    consume_exactly([a, b], batch2, "after a member left")

    # A new member resumes exactly after the committed offsets.
    d = member(server, group, "d")
    d.subscribe([topic])
    await_partitioned([a, b, d], "a new member to join")
    batch3 = produce_tagged(server, topic, "b3", 20)
    consume_exactly([a, b, d], batch3, "after a member joined")
    before = committed(server, group, topic)
    assert before == {p: 100 for p in range(PARTITIONS)}
    members_before = sorted(m.member_id for m in describe(server, group).members)

    # Restart on the same port: the members reconnect and carry on in the
    # same generation (same member ids), reading only new records.
    server.restart(keep_ports=True)
    assert committed(server, group, topic) == before
    batch4 = produce_tagged(server, topic, "b4", 10)
    consume_exactly([a, b, d], batch4, "after a server restart")
    description = describe(server, group)
    assert sorted(m.member_id for m in description.members) == members_before
    for consumer in (a, b, d):
        consumer.close()
    assert committed(server, group, topic) == {p: 110 for p in range(PARTITIONS)}
    assert describe(server, group).state == confluent_kafka.ConsumerGroupState.EMPTY


def test_member_that_stops_heartbeating_is_removed_after_its_session(server_factory):
    server = server_factory(*SERVER_ARGS)
    topic, group = "frozen", "watchers"
    create_topic(server.bootstrap, topic, PARTITIONS)
    frozen = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("group_member.py")),
            server.bootstrap,
            group,
            topic,
            str(SESSION_TIMEOUT_MS),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    frozen_lines: list[list[int]] = []
    reader = threading.Thread(
        target=lambda: frozen_lines.extend(json.loads(line)["assigned"] for line in frozen.stdout),
        daemon=True,
    )
    reader.start()
    try:
        live = member(server, group, "live")
        live.subscribe([topic])

        def shared():
            live.poll(0.1)
            now = assignments([live])[0]
            frozen_now = frozen_lines[-1] if frozen_lines else []
            both = sorted(now + frozen_now)
            return now if both == list(range(PARTITIONS)) and now and frozen_now else None

        wait_until(shared, CLIENT_TIMEOUT_S, "the two members to share the partitions")
        frozen.send_signal(signal.SIGSTOP)
        stopped_at = time.monotonic()
        assert len(describe(server, group).members) == 2

        def alone():
            live.poll(0.1)
            return assignments([live])[0] == list(range(PARTITIONS))

        wait_until(alone, CLIENT_TIMEOUT_S, "the live member to get every partition")
        waited = time.monotonic() - stopped_at
        # Removed by the session timeout, not before it.
        assert waited >= SESSION_TIMEOUT_MS / 1000 * 0.8, waited
        description = describe(server, group)
        assert [m.client_id for m in description.members] == ["live"]
        assert "member session expired" in server.log_text()
        live.close()
    finally:
        frozen.send_signal(signal.SIGCONT)
        frozen.kill()
        frozen.wait()


def test_kafka_python_group_consumes_once_takes_over_and_resumes(server_factory):
    server = server_factory(*SERVER_ARGS)
    topic, group = "kp-orders", "kp-group"
    create_topic(server.bootstrap, topic, PARTITIONS)

    def kp_member(name: str) -> kafka.KafkaConsumer:
        consumer = kafka.KafkaConsumer(
            topic,
            bootstrap_servers=server.bootstrap,
            group_id=group,
            client_id=name,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=500,
            fetch_max_wait_ms=100,
        )
        # Load the topic's metadata before the first poll joins the group.
        # Otherwise a leader can assign before its metadata arrives (the
        # join is immediate with no initial rebalance delay), assign
        # nothing, and rejoin once the metadata lands; kafka-python 3.0
        # drops the result of such a metadata-triggered rejoin when it
        # completes after a short poll() timed out (its poll() then sees no
        # rejoin needed, never finishes the join and stops heartbeating), so
        # the member sits with no partitions until the test times out.
        assert consumer.partitions_for_topic(topic) == set(range(PARTITIONS))
        return consumer

    def read(consumers, expected: set[bytes], what: str) -> None:
        seen: Counter = Counter()
        deadline = time.monotonic() + CLIENT_TIMEOUT_S
        while not expected <= set(seen):
            assert time.monotonic() < deadline, f"{what}: {len(expected - set(seen))} unread"
            for c in consumers:
                batches = c.poll(timeout_ms=100)
                for records in batches.values():
                    for r in records:
                        seen[r.value] += 1
                if batches:
                    c.commit()
        assert set(seen) == expected, f"{what}: read records of another batch"
        assert max(seen.values()) == 1, f"{what}: records read twice"

    first, second = kp_member("kp-1"), kp_member("kp-2")

    def split():
        for c in (first, second):
            c.poll(timeout_ms=50)
        parts = [sorted(tp.partition for tp in c.assignment()) for c in (first, second)]
        both = sorted(parts[0] + parts[1])
        return parts if both == list(range(PARTITIONS)) and all(parts) else None

    wait_until(split, CLIENT_TIMEOUT_S, "two kafka-python members to split the partitions")
    read([first, second], produce_tagged(server, topic, "k1", 40), "two members")
    second.close()
    wait_until(
        lambda: first.poll(timeout_ms=50) is not None
        and sorted(tp.partition for tp in first.assignment()) == list(range(PARTITIONS)),
        CLIENT_TIMEOUT_S,
        "the remaining member to take every partition",
    )
    read([first], produce_tagged(server, topic, "k2", 20), "after a member left")
    first.close()
    assert committed(server, group, topic) == {p: 60 for p in range(PARTITIONS)}
    third = kp_member("kp-3")
    read([third], produce_tagged(server, topic, "k3", 5), "a new member after the commits")
    third.close()


def test_committed_offsets_survive_kill_9(server_factory):
    """Commits acknowledged before kill -9 are all there after restart."""
    server = server_factory(*SERVER_ARGS)
    topic, group = "kill-commits", "killers"
    create_topic(server.bootstrap, topic, PARTITIONS)
    client = admin(server.bootstrap)
    acked: dict[int, int] = {}
    attempted: dict[int, int] = {}
    stop = threading.Event()
    failures: list[BaseException] = []

    def commit_loop():
        offset = 0
        while not stop.is_set():
            offset += 1
            tps = [TopicPartition(topic, p, offset * 10 + p) for p in range(PARTITIONS)]
            for tp in tps:
                attempted[tp.partition] = tp.offset
            try:
                futures = client.alter_consumer_group_offsets(
                    [ConsumerGroupTopicPartitions(group, tps)], request_timeout=5
                )
                futures[group].result(10)
            except Exception as e:  # the kill interrupts one commit
                failures.append(e)
                return
            for tp in tps:
                acked[tp.partition] = tp.offset

    thread = threading.Thread(target=commit_loop)
    thread.start()
    wait_until(lambda: len(acked) == PARTITIONS and acked[0] >= 500, 60, "commits to flow")
    server.kill()
    stop.set()
    thread.join(60)
    assert not thread.is_alive()
    server.start()
    after = committed(server, group, topic)
    for p in range(PARTITIONS):
        assert acked[p] <= after[p] <= attempted[p], (p, acked[p], after[p], attempted[p])


def test_group_admin_apis(server_factory):
    server = server_factory(*SERVER_ARGS, "--offsets-retention-ms", "1500")
    topic = "admin-groups"
    create_topic(server.bootstrap, topic, PARTITIONS)
    client = admin(server.bootstrap)
    # A "simple" commit to a group without members (admin tools do this).
    tps = [TopicPartition(topic, p, 7 + p, metadata=f"m{p}") for p in range(3)]
    client.alter_consumer_group_offsets([ConsumerGroupTopicPartitions("simple", tps)])[
        "simple"
    ].result(CLIENT_TIMEOUT_S)
    assert committed(server, "simple", topic) == {
        **{p: 7 + p for p in range(3)},
        **{p: -1001 for p in range(3, PARTITIONS)},
    }
    groups = {g.group_id: g.state for g in client.list_consumer_groups().result(CLIENT_TIMEOUT_S).valid}
    assert groups.get("simple") == confluent_kafka.ConsumerGroupState.EMPTY, groups

    # A live member blocks DeleteGroups and OffsetDelete of its topic.
    live = member(server, "busy", "busy-1")
    live.subscribe([topic])
    await_partitioned([live], "the member's assignment")
    live.commit(
        offsets=[TopicPartition(topic, p, 3) for p in range(PARTITIONS)], asynchronous=False
    )
    with pytest.raises(confluent_kafka.KafkaException) as refused:
        client.delete_consumer_groups(["busy"])["busy"].result(CLIENT_TIMEOUT_S)
    assert kafka_error(refused.value).code() == confluent_kafka.KafkaError.NON_EMPTY_GROUP
    assert offset_delete(server, "busy", topic, [0]) == (0, [(0, 86)])  # GROUP_SUBSCRIBED_TO_TOPIC
    assert offset_delete(server, "nobody", topic, [0])[0] == 69  # GROUP_ID_NOT_FOUND
    live.close()
    assert offset_delete(server, "busy", topic, [0, 1]) == (0, [(0, 0), (1, 0)])
    assert committed(server, "busy", topic) == {
        p: (-1001 if p < 2 else 3) for p in range(PARTITIONS)
    }
    client.delete_consumer_groups(["busy"])["busy"].result(CLIENT_TIMEOUT_S)
    assert committed(server, "busy", topic) == {p: -1001 for p in range(PARTITIONS)}
    with pytest.raises(confluent_kafka.KafkaException) as missing:
        client.delete_consumer_groups(["busy"])["busy"].result(CLIENT_TIMEOUT_S)
    assert kafka_error(missing.value).code() == confluent_kafka.KafkaError.GROUP_ID_NOT_FOUND

    # The simple group has no members: its offsets expire after the
    # retention (1.5 s here), and the group goes with them.
    wait_until(
        lambda: "simple" not in {g.group_id for g in client.list_consumer_groups().result(30).valid},
        30,
        "the simple group's offsets to expire",
    )
    assert committed(server, "simple", topic) == {p: -1001 for p in range(PARTITIONS)}
    assert server.log_lines("committed offsets expired")


def offset_delete(server: RinglogServer, group: str, topic: str, partitions: list[int]):
    """OffsetDelete v0 on the wire (confluent-kafka's AdminClient has no
    call for it): the top-level error and (partition, error) pairs."""
    body = (
        string(group)
        + i32(1)
        + string(topic)
        + i32(len(partitions))
        + b"".join(i32(p) for p in partitions)
    )
    with KafkaConn(server.kafka_addr) as conn:
        r: Reader = conn.recv_response(conn.send_request(47, 0, body))
        error = r.i16()
        r.i32()  # throttle
        out = []
        for _ in range(r.i32()):
            r.string()
            for _ in range(r.i32()):
                out.append((r.i32(), r.i16()))
        return error, out
