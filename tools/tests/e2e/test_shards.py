"""Tuning shards (issue 16) against a real server: the admin HTTP API and
the `ringlog shard` / `ringlog partition` commands, live moves under load
from an idempotent confluent-kafka producer and a consumer group, kill -9
at every step of a move, bad input, and restarts with 1, 2 and 3 shards."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.error
import urllib.request

import confluent_kafka
import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

from kafka_clients import (
    CLIENT_TIMEOUT_S,
    FILLER,
    admin,
    confluent_consume,
    confluent_produce,
    create_topic,
    make_records,
)
from ringlog_server import RinglogServer, ringlog_bin, wait_until

MOVE_STEPS = ("move-released", "move-recorded", "move-opened")


def http(server: RinglogServer, method: str, path: str, body: dict | None = None):
    """(status, decoded JSON answer) of one admin API call."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"http://{server.http_addr}{path}",
        data=data,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=CLIENT_TIMEOUT_S) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def placement(server: RinglogServer) -> dict[tuple[str, int], int]:
    status, answer = http(server, "GET", "/v1/partitions")
    assert status == 200, answer
    return {(p["topic"], p["partition"]): p["shard"] for p in answer["partitions"]}


def move(server: RinglogServer, topic: str, partition: int, to_shard: int) -> dict:
    body = {"topic": topic, "partition": partition, "to_shard": to_shard}
    status, answer = http(server, "POST", "/v1/partitions/move", body)
    assert status == 200, answer
    return answer


def ringlog(server: RinglogServer, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(ringlog_bin()), *args, "--http", server.http_addr],
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )


class IdempotentProducer:
    """An idempotent acks=all confluent-kafka producer sending numbered
    records round-robin over the partitions from a thread, keeping every
    acknowledged (partition, offset, value) and every delivery error."""

    def __init__(self, bootstrap: str, topic: str, partitions: int):
        self.producer = confluent_kafka.Producer(
            {
                "bootstrap.servers": bootstrap,
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 2,
                "message.timeout.ms": 60000,
            }
        )
        self.topic, self.partitions = topic, partitions
        self.acked: list[tuple[int, int, bytes]] = []
        self.errors: list[str] = []
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _on_delivery(self, err, msg):
        if err is None:
            self.acked.append((msg.partition(), msg.offset(), msg.value()))
        else:
            self.errors.append(str(err))

    def _run(self):
        i = 0
        while not self.stop_event.is_set():
            value = f"moving.{i:08d}.{FILLER}".encode()
            try:
                self.producer.produce(
                    self.topic, value=value, partition=i % self.partitions,
                    on_delivery=self._on_delivery,
                )
            except BufferError:
                self.producer.poll(0.05)
                continue
            i += 1
            self.producer.poll(0)
            if i % 64 == 0:
                time.sleep(0.002)  # a steady load, not a flood of the 2 cores

    def start(self):
        self.thread.start()

    def finish(self):
        self.stop_event.set()
        self.thread.join(CLIENT_TIMEOUT_S)
        assert not self.thread.is_alive()
        left = self.producer.flush(CLIENT_TIMEOUT_S)
        assert left == 0, f"{left} records undelivered"


class GroupConsumer:
    """One consumer-group member reading and committing from a thread."""

    def __init__(self, bootstrap: str, topic: str, group: str):
        self.consumer = confluent_kafka.Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group,
                "auto.offset.reset": "earliest",
                "enable.auto.commit": True,
                "auto.commit.interval.ms": 200,
            }
        )
        self.consumer.subscribe([topic])
        self.seen: list[tuple[int, int, bytes]] = []
        self.errors: list[str] = []
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop_event.is_set():
            msg = self.consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error() is not None:
                if msg.error().fatal():
                    self.errors.append(str(msg.error()))
                continue
            self.seen.append((msg.partition(), msg.offset(), msg.value()))

    def start(self):
        self.thread.start()

    def finish(self):
        self.stop_event.set()
        self.thread.join(CLIENT_TIMEOUT_S)
        self.consumer.commit(asynchronous=False)
        self.consumer.close()


def test_moves_under_load_lose_nothing_and_repeat_nothing(server_factory):
    server = server_factory()
    topic, partitions, group = "moving", 4, "movers"
    create_topic(server.bootstrap, topic, partitions)
    producer = IdempotentProducer(server.bootstrap, topic, partitions)
    consumer = GroupConsumer(server.bootstrap, topic, group)
    producer.start()
    consumer.start()
    wait_until(lambda: len(producer.acked) >= 2000, 60, "2000 acknowledged records before moving")
    wait_until(lambda: len(consumer.seen) >= 500, 60, "the group consuming before moving")

    unavailable_ms = []
    for round_ in range(6):
        for p in range(partitions):
            at = placement(server)[(topic, p)]
            moved = move(server, topic, p, 1 - at)
            assert (moved["from_shard"], moved["to_shard"]) == (at, 1 - at)
            unavailable_ms.append(moved["unavailable_ms"])
            assert placement(server)[(topic, p)] == 1 - at
        acked_now = len(producer.acked)
        wait_until(
            lambda: len(producer.acked) >= acked_now + 200, 60,
            f"the producer going on after move round {round_}",
        )
    producer.finish()
    assert not producer.errors, f"delivery errors during moves: {producer.errors[:5]}"

    stored = confluent_consume(server.bootstrap, topic, range(partitions))
    for p, records in stored.items():
        assert [r.offset for r in records] == list(range(len(records))), f"partition {p}: holes"
        values = [r.value for r in records]
        assert len(values) == len(set(values)), f"partition {p}: a record stored twice"
    by_position = {(p, r.offset): r.value for p, records in stored.items() for r in records}
    missing = [(p, o) for p, o, v in producer.acked if by_position.get((p, o)) != v]
    assert not missing, f"{len(missing)} acknowledged records missing, e.g. {missing[:5]}"
    assert sum(len(r) for r in stored.values()) == len(producer.acked)

    # The group read everything once the producer stopped, and its commits
    # reach the end of every partition.
    ends = {p: len(stored[p]) for p in range(partitions)}
    wait_until(
        lambda: {(p, o) for p, o, _ in consumer.seen} >= set(by_position),
        60, "the group reading every record",
    )
    consumer.finish()
    assert not consumer.errors, consumer.errors
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in range(partitions)])
    committed = admin(server.bootstrap).list_consumer_group_offsets([request])[group].result(
        CLIENT_TIMEOUT_S
    )
    assert {tp.partition: tp.offset for tp in committed.topic_partitions} == ends
    assert max(unavailable_ms) < 5000, unavailable_ms


@pytest.mark.parametrize("step", MOVE_STEPS)
def test_kill_9_at_each_step_of_a_move_leaves_one_owner_and_every_record(server_factory, step):
    server = server_factory()
    topic = f"crash-{step}"
    create_topic(server.bootstrap, topic, 2)
    acked = confluent_produce(server.bootstrap, topic, make_records(step, range(2), 200))
    source = placement(server)[(topic, 0)]
    target = 1 - source
    server.stop()

    server.extra_env = {"RINGLOG_CRASH_AT": step}
    server.start()
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        http(server, "POST", "/v1/partitions/move",
             {"topic": topic, "partition": 0, "to_shard": target})
    code = server.proc.wait(30)
    assert code != 0, f"the server did not stop at crash point {step}"
    assert f"crash point {step} reached" in server.log_text()

    server.extra_env = {}
    server.start()
    owner = placement(server)[(topic, 0)]
    # Before the placement event is durable the source owns it; after, the target.
    assert owner == (source if step == "move-released" else target)
    stored = confluent_consume(server.bootstrap, topic, range(2))
    for r in acked:
        got = stored[r.partition]
        assert r.offset < len(got) and got[r.offset].value == r.value, (
            f"acknowledged record {r.partition}/{r.offset} lost after a crash at {step}"
        )
    assert [r.offset for r in stored[0]] == list(range(len(stored[0])))
    # The partition keeps appending after its last record, and moves again.
    more = confluent_produce(server.bootstrap, topic, make_records("after", [0], 3))
    assert [r.offset for r in more] == [len(stored[0]) + i for i in range(3)]
    move(server, topic, 0, 1 - owner)
    assert placement(server)[(topic, 0)] == 1 - owner


def test_bad_moves_answer_clear_errors_on_the_api_and_the_cli(server_factory):
    server = server_factory()
    create_topic(server.bootstrap, "bad", 1)
    at = placement(server)[("bad", 0)]
    cases = [
        ({"topic": "bad", "partition": 0, "to_shard": 9}, 400, "shard 9 does not exist"),
        ({"topic": "nope", "partition": 0, "to_shard": 1}, 404, '"nope" does not exist'),
        ({"topic": "bad", "partition": 5, "to_shard": 1}, 404, "partition 5 does not exist"),
        ({"topic": "bad", "partition": 0, "to_shard": at}, 400, "already on shard"),
    ]
    for body, status, message in cases:
        got, answer = http(server, "POST", "/v1/partitions/move", body)
        assert (got, message in answer.get("error", "")) == (status, True), (body, got, answer)
        result = ringlog(server, "partition", "move", body["topic"], str(body["partition"]),
                         "--to-shard", str(body["to_shard"]))
        assert result.returncode == 1, result
        assert message in result.stderr, result.stderr
    got, answer = http(server, "POST", "/v1/partitions/move", {"topic": "bad"})
    assert got == 400, answer
    assert placement(server) == {("bad", 0): at}


def test_shard_list_shows_each_shards_partitions_and_load(server_factory):
    server = server_factory()
    create_topic(server.bootstrap, "busy", 2)
    producer = IdempotentProducer(server.bootstrap, "busy", 1)
    producer.start()
    try:
        def producing_shard():
            result = ringlog(server, "shard", "list", "--json")
            assert result.returncode == 0, result.stderr
            shards = json.loads(result.stdout)["shards"]
            for shard in shards:
                for p in shard["partitions"]:
                    if (p["topic"], p["partition"]) == ("busy", 0) and p["produce_mb_s"] > 0:
                        return shard
            return None

        shard = wait_until(producing_shard, 30, "shard list showing produce MB/s on busy-0")
        assert shard["shard"] == placement(server)[("busy", 0)]
        assert shard["bytes"] > 0
        table = ringlog(server, "shard", "list")
        assert table.returncode == 0, table.stderr
        assert len([line for line in table.stdout.splitlines() if line.strip()]) >= 3
    finally:
        producer.finish()


def test_rebalance_by_count_evens_out_a_skewed_placement(server_factory):
    server = server_factory()
    create_topic(server.bootstrap, "skew", 6)
    for p in range(6):
        if placement(server)[("skew", p)] != 0:
            move(server, "skew", p, 0)
    dry = ringlog(server, "shard", "rebalance", "--by", "count", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    assert (plan["before"], plan["after"], plan["moved"]) == ([6, 0], [3, 3], [])
    assert len(plan["plan"]) == 3
    assert set(placement(server).values()) == {0}, "a dry run moves nothing"
    done = ringlog(server, "shard", "rebalance", "--by", "count", "--json")
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["moved"]) == 3
    owners = list(placement(server).values())
    assert sorted(owners.count(s) for s in (0, 1)) == [3, 3]
    records = confluent_produce(server.bootstrap, "skew", make_records("after", range(6), 5))
    assert all(r.offset < 5 for r in records)


def test_restarts_with_one_two_and_three_shards_keep_everything_even(server_factory):
    server = server_factory()
    topics = {"count-a": 4, "count-b": 2}
    produced = {}
    for topic, partitions in topics.items():
        create_topic(server.bootstrap, topic, partitions)
        produced[topic] = confluent_produce(
            server.bootstrap, topic, make_records(topic, range(partitions), 20)
        )
    group = "count-group"
    consumer = confluent_kafka.Consumer(
        {"bootstrap.servers": server.bootstrap, "group.id": group, "enable.auto.commit": False}
    )
    commits = [TopicPartition(t, p, 7) for t, n in topics.items() for p in range(n)]
    consumer.commit(offsets=commits, asynchronous=False)
    consumer.close()

    for shards in (1, 2, 3):
        server.stop()
        server.shards = shards
        server.start()
        owners = placement(server)
        assert len(owners) == 6
        counts = [list(owners.values()).count(s) for s in range(shards)]
        assert max(counts) - min(counts) <= 1, f"uneven with {shards} shards: {counts}"
        for topic, partitions in topics.items():
            stored = confluent_consume(server.bootstrap, topic, range(partitions))
            for r in produced[topic]:
                assert stored[r.partition][r.offset].value == r.value
        request = ConsumerGroupTopicPartitions(group, [TopicPartition(t, p) for t, n in topics.items() for p in range(n)])
        committed = admin(server.bootstrap).list_consumer_group_offsets([request])[group].result(
            CLIENT_TIMEOUT_S
        )
        assert {tp.offset for tp in committed.topic_partitions} == {7}
