"""ACL authorization (`--authorizer on`): a SASL_PLAINTEXT broker whose
users admin (a super user), alice and bob were made with `ringlog user
add` while it was stopped. admin manages ACLs with confluent-kafka's
AdminClient; alice and bob get exactly what the ACLs allow, with Kafka's
error codes, and a refused request writes nothing. The ACLs survive a
restart.

`ringlog acl` runs against a second, PLAINTEXT broker whose anonymous
principal is the super user (ringlog's own clients speak no SASL yet).
A third one shows `--allow-everyone-if-no-acl-found` and that
auto-creation needs CREATE.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import confluent_kafka
import kafka.admin
import kafka.errors
import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

import kafka_wire as wire
from ringlog_server import RinglogServer, ringlog_bin, wait_until
from test_sasl import user_add

CLIENT_TIMEOUT_S = 60.0
MECHANISM = "SCRAM-SHA-256"
PASSWORDS = {"admin": "admin-secret", "alice": "alice-secret", "bob": "bob-secret"}


def acl_server(server_factory) -> RinglogServer:
    server = server_factory(
        "--security-protocol", "SASL_PLAINTEXT", "--authorizer", "on",
        "--super-users", "User:admin", "--group-initial-rebalance-delay-ms", "0",
        start=False,
    )
    server.data_dir.mkdir(parents=True, exist_ok=True)
    for user, password in PASSWORDS.items():
        out = user_add(server.data_dir, user, password, "--mechanism", MECHANISM)
        assert out.returncode == 0, out.stderr
    server.extra_env["RINGLOG_LOG"] = "info,ringlog_shard::handlers::access=debug"
    return server.start()


def config(server: RinglogServer, user: str) -> dict:
    return {
        "bootstrap.servers": server.bootstrap,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": MECHANISM,
        "sasl.username": user,
        "sasl.password": PASSWORDS[user],
    }


def binding(resource: ResourceType, name: str, pattern: ResourcePatternType, principal: str,
            operation: AclOperation, permission: AclPermissionType) -> AclBinding:
    return AclBinding(resource, name, pattern, principal, "*", operation, permission)


EVERY_ACL = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                             AclOperation.ANY, AclPermissionType.ANY)


def describe_acls(admin: AdminClient, acl_filter: AclBindingFilter = EVERY_ACL) -> set:
    found = admin.describe_acls(acl_filter, request_timeout=CLIENT_TIMEOUT_S)
    return {str(b) for b in found.result(CLIENT_TIMEOUT_S)}


def produce_outcomes(conf: dict, topic: str, count: int) -> list:
    """Each record's delivery: None if written, else the error code."""
    producer = confluent_kafka.Producer({**conf, "acks": "all", "message.timeout.ms": 20000})
    outcomes: list = []
    for i in range(count):
        producer.produce(topic, f"{topic}-{i}".encode(),
                         callback=lambda err, _msg: outcomes.append(err.code() if err else None))
    assert producer.flush(CLIENT_TIMEOUT_S) == 0, "deliveries left unreported"
    return outcomes


def end_offset(conf: dict, topic: str) -> int:
    consumer = confluent_kafka.Consumer({**conf, "group.id": "acl-probe"})
    _, high = consumer.get_watermark_offsets(
        confluent_kafka.TopicPartition(topic, 0), timeout=CLIENT_TIMEOUT_S)
    consumer.close()
    return high


def admin_error(future) -> int:
    with pytest.raises(KafkaException) as raised:
        future.result(CLIENT_TIMEOUT_S)
    return raised.value.args[0].code()


def kafka_python_describe_acls_error(server: RinglogServer, user: str) -> int:
    client = kafka.admin.KafkaAdminClient(
        bootstrap_servers=server.bootstrap, security_protocol="SASL_PLAINTEXT",
        sasl_mechanism=MECHANISM, sasl_plain_username=user,
        sasl_plain_password=PASSWORDS[user], request_timeout_ms=int(CLIENT_TIMEOUT_S * 1000))
    acl_filter = kafka.admin.ACLFilter(
        principal=None, host="*", operation=kafka.admin.ACLOperation.ANY,
        permission_type=kafka.admin.ACLPermissionType.ANY,
        resource_pattern=kafka.admin.ResourcePatternFilter(
            kafka.admin.ResourceType.ANY, None, kafka.admin.ACLResourcePatternType.ANY))
    try:
        _, error = client.describe_acls(acl_filter)
        return error.errno
    except kafka.errors.BrokerResponseError as e:
        return e.errno
    finally:
        client.close()


def test_acls_decide_who_may_do_what_and_survive_a_restart(server_factory):
    server = acl_server(server_factory)
    admin = AdminClient(config(server, "admin"))
    # The super user may do everything, ACLs or not.
    created = admin.create_topics([NewTopic(t, 1, 1)
                                   for t in ["orders-eu", "orders-secret", "payments"]])
    for future in created.values():
        future.result(CLIENT_TIMEOUT_S)
    allow, deny = AclPermissionType.ALLOW, AclPermissionType.DENY
    bindings = [
        binding(ResourceType.TOPIC, "orders-", ResourcePatternType.PREFIXED, "User:alice",
                AclOperation.WRITE, allow),
        binding(ResourceType.TOPIC, "orders-secret", ResourcePatternType.LITERAL, "User:alice",
                AclOperation.WRITE, deny),
        binding(ResourceType.TOPIC, "orders-eu", ResourcePatternType.LITERAL, "User:alice",
                AclOperation.READ, allow),
    ]
    for future in admin.create_acls(bindings, request_timeout=CLIENT_TIMEOUT_S).values():
        assert future.result(CLIENT_TIMEOUT_S) is None
    assert describe_acls(admin) == {str(b) for b in bindings}
    # MATCH: the bindings that apply to one topic.
    applying = AclBindingFilter(ResourceType.TOPIC, "orders-secret", ResourcePatternType.MATCH,
                                None, None, AclOperation.ANY, AclPermissionType.ANY)
    assert describe_acls(admin, applying) == {str(bindings[0]), str(bindings[1])}

    alice = config(server, "alice")
    # Prefixed WRITE on orders-: alice writes orders-eu.
    assert produce_outcomes(alice, "orders-eu", 5) == [None] * 5
    # No ACL on payments: refused, nothing written.
    assert produce_outcomes(alice, "payments", 3) == [KafkaError.TOPIC_AUTHORIZATION_FAILED] * 3
    # The DENY on orders-secret overrides the prefixed ALLOW.
    assert produce_outcomes(alice, "orders-secret", 3) == \
        [KafkaError.TOPIC_AUTHORIZATION_FAILED] * 3
    admin_conf = config(server, "admin")
    assert end_offset(admin_conf, "payments") == 0
    assert end_offset(admin_conf, "orders-secret") == 0
    assert end_offset(admin_conf, "orders-eu") == 5
    denials = server.log_lines("authorization denied", "User:alice")
    assert denials and all("DEBUG" in line for line in denials), server.log_tail()

    # Metadata hides what alice may not describe (WRITE implies DESCRIBE);
    # bob, with no ACLs, sees no topic at all.
    listed = AdminClient(alice).list_topics(timeout=CLIENT_TIMEOUT_S).topics
    assert set(listed) == {"orders-eu", "orders-secret"}
    assert set(AdminClient(config(server, "bob")).list_topics(timeout=CLIENT_TIMEOUT_S).topics) \
        == set()

    # A group alice has no READ on: GROUP_AUTHORIZATION_FAILED.
    consumer = confluent_kafka.Consumer({**alice, "group.id": "alice-group",
                                         "auto.offset.reset": "earliest"})
    consumer.subscribe(["orders-eu"])

    def group_refused() -> bool:
        msg = consumer.poll(0.5)
        return msg is not None and msg.error() is not None and \
            msg.error().code() == KafkaError.GROUP_AUTHORIZATION_FAILED

    wait_until(group_refused, CLIENT_TIMEOUT_S, "the group was refused", interval=0)
    consumer.close()
    # With READ on the group, the same consumer reads what alice wrote.
    group_read = binding(ResourceType.GROUP, "alice-group", ResourcePatternType.LITERAL,
                         "User:alice", AclOperation.READ, allow)
    for future in admin.create_acls([group_read]).values():
        future.result(CLIENT_TIMEOUT_S)
    consumer = confluent_kafka.Consumer({**alice, "group.id": "alice-group",
                                         "auto.offset.reset": "earliest"})
    consumer.subscribe(["orders-eu"])
    seen: list[bytes] = []

    def consumed_all() -> bool:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            seen.append(msg.value())
        return len(seen) >= 5

    wait_until(consumed_all, CLIENT_TIMEOUT_S, "alice's group consumed orders-eu", interval=0)
    consumer.close()

    # bob may not create topics, nor manage ACLs.
    bob_admin = AdminClient(config(server, "bob"))
    refused = bob_admin.create_topics([NewTopic("bobs-topic", 1, 1)])["bobs-topic"]
    assert admin_error(refused) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert "bobs-topic" not in admin.list_topics(timeout=CLIENT_TIMEOUT_S).topics
    # (confluent-kafka does not report DescribeAcls' top-level error;
    # kafka-python does.)
    assert kafka_python_describe_acls_error(server, "bob") == KafkaError.CLUSTER_AUTHORIZATION_FAILED
    sneaky = binding(ResourceType.TOPIC, "*", ResourcePatternType.LITERAL, "User:bob",
                     AclOperation.ALL, allow)
    for future in bob_admin.create_acls([sneaky]).values():
        assert admin_error(future) == KafkaError.CLUSTER_AUTHORIZATION_FAILED

    # The ACLs survive a restart, and so do their decisions.
    server.restart()
    admin, alice = AdminClient(config(server, "admin")), config(server, "alice")
    assert describe_acls(admin) == {str(b) for b in bindings + [group_read]}
    assert produce_outcomes(alice, "orders-eu", 2) == [None] * 2
    assert produce_outcomes(alice, "payments", 1) == [KafkaError.TOPIC_AUTHORIZATION_FAILED]

    # Deleting the DENY answers it, and alice may then write orders-secret.
    deny_filter = AclBindingFilter(ResourceType.TOPIC, "orders-secret",
                                   ResourcePatternType.LITERAL, None, None, AclOperation.ANY,
                                   AclPermissionType.DENY)
    deleted = admin.delete_acls([deny_filter])[deny_filter].result(CLIENT_TIMEOUT_S)
    assert [str(b) for b in deleted] == [str(bindings[1])]
    assert produce_outcomes(alice, "orders-secret", 2) == [None] * 2


def test_invalid_acls_are_refused(server_factory):
    server = acl_server(server_factory)
    admin = AdminClient(config(server, "admin"))
    bad = [
        # Not a User: principal.
        AclBinding(ResourceType.TOPIC, "t", ResourcePatternType.LITERAL, "Group:x", "*",
                   AclOperation.READ, AclPermissionType.ALLOW),
        # The cluster resource is named kafka-cluster.
        AclBinding(ResourceType.BROKER, "my-cluster", ResourcePatternType.LITERAL,
                   "User:alice", "*", AclOperation.ALTER, AclPermissionType.ALLOW),
        # A host that is no IP address.
        AclBinding(ResourceType.TOPIC, "t", ResourcePatternType.LITERAL, "User:alice",
                   "host.example", AclOperation.READ, AclPermissionType.ALLOW),
    ]
    good = AclBinding(ResourceType.BROKER, "kafka-cluster", ResourcePatternType.LITERAL,
                      "User:alice", "*", AclOperation.DESCRIBE, AclPermissionType.ALLOW)
    futures = admin.create_acls(bad + [good])
    for b in bad:
        assert admin_error(futures[b]) == KafkaError.INVALID_REQUEST, str(b)
    assert futures[good].result(CLIENT_TIMEOUT_S) is None
    assert describe_acls(admin) == {str(good)}


def ringlog_acl(server: RinglogServer, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(ringlog_bin()), "acl", *args, "--bootstrap", server.bootstrap],
                          capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S)


def test_ringlog_acl_adds_lists_and_deletes(server_factory):
    server = server_factory("--authorizer", "on", "--super-users", "User:ANONYMOUS")
    added = ringlog_acl(server, "add", "--allow-principal", "User:alice", "--operation", "write",
                        "--operation", "describe", "--topic", "orders-",
                        "--resource-pattern-type", "prefixed")
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == "added 2 ACL bindings"
    denied = ringlog_acl(server, "add", "--deny-principal", "User:*", "--operation", "alter",
                         "--cluster", "--host", "10.0.0.1")
    assert denied.returncode == 0, denied.stderr

    listed = ringlog_acl(server, "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["RESOURCE", "NAME", "PATTERN", "PRINCIPAL", "HOST", "OPERATION",
                                "PERMISSION"]
    assert sorted(line.split() for line in lines[1:]) == sorted([
        ["TOPIC", "orders-", "PREFIXED", "User:alice", "*", "WRITE", "ALLOW"],
        ["TOPIC", "orders-", "PREFIXED", "User:alice", "*", "DESCRIBE", "ALLOW"],
        ["CLUSTER", "kafka-cluster", "LITERAL", "User:*", "10.0.0.1", "ALTER", "DENY"],
    ])
    # MATCH on a topic: the prefixed bindings apply to orders-eu.
    matched = ringlog_acl(server, "list", "--topic", "orders-eu", "--resource-pattern-type",
                          "match", "--json")
    assert matched.returncode == 0, matched.stderr
    assert {(b["name"], b["operation"]) for b in json.loads(matched.stdout)} == \
        {("orders-", "WRITE"), ("orders-", "DESCRIBE")}

    deleted = ringlog_acl(server, "delete", "--allow-principal", "User:alice", "--operation",
                          "write", "--topic", "orders-")
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stdout.splitlines()[0] == "deleted 1 ACL bindings"
    remaining = json.loads(ringlog_acl(server, "list", "--principal", "User:alice",
                                       "--json").stdout)
    assert [(b["operation"], b["permission"]) for b in remaining] == [("DESCRIBE", "ALLOW")]

    refused = ringlog_acl(server, "add", "--operation", "read", "--topic", "t")
    assert refused.returncode == 1
    assert "--allow-principal or --deny-principal" in refused.stderr, refused.stderr
    invalid = ringlog_acl(server, "add", "--allow-principal", "alice", "--operation", "read",
                          "--topic", "t")
    assert invalid.returncode == 1
    assert "INVALID_REQUEST" in invalid.stderr and "User:<name>" in invalid.stderr, \
        invalid.stderr


def test_ringlog_acl_needs_alter_on_the_cluster(server_factory):
    # ANONYMOUS is no super user here, and no ACL allows it anything.
    server = server_factory("--authorizer", "on", "--super-users", "User:admin")
    out = ringlog_acl(server, "add", "--allow-principal", "User:ANONYMOUS", "--operation", "all",
                      "--topic", "*")
    assert out.returncode == 1
    assert "CLUSTER_AUTHORIZATION_FAILED" in out.stderr, out.stderr
    out = ringlog_acl(server, "list")
    assert out.returncode == 1
    assert "CLUSTER_AUTHORIZATION_FAILED" in out.stderr, out.stderr


def test_auto_creation_needs_create_and_no_acl_found_allows(server_factory):
    # ANONYMOUS is nobody special; resources no binding matches are open.
    server = server_factory("--authorizer", "on", "--allow-everyone-if-no-acl-found",
                            "--auto-create-topics", start=False)
    server.extra_env["RINGLOG_LOG"] = "info,ringlog_shard::handlers::access=debug"
    server.start()
    anonymous = {"bootstrap.servers": server.bootstrap}
    allow, deny = AclPermissionType.ALLOW, AclPermissionType.DENY
    anyone = "User:ANONYMOUS"
    admin = AdminClient(anonymous)
    bindings = [
        # Keep managing ACLs once the cluster has bindings...
        binding(ResourceType.BROKER, "kafka-cluster", ResourcePatternType.LITERAL, anyone,
                AclOperation.ALTER, allow),
        binding(ResourceType.BROKER, "kafka-cluster", ResourcePatternType.LITERAL, anyone,
                AclOperation.DESCRIBE, allow),
        # ...but create no topic through the cluster,
        binding(ResourceType.BROKER, "kafka-cluster", ResourcePatternType.LITERAL, anyone,
                AclOperation.CREATE, deny),
        # and none named secret-*, which may be written and described.
        binding(ResourceType.TOPIC, "secret-", ResourcePatternType.PREFIXED, anyone,
                AclOperation.CREATE, deny),
        binding(ResourceType.TOPIC, "secret-", ResourcePatternType.PREFIXED, anyone,
                AclOperation.WRITE, allow),
    ]
    for future in admin.create_acls(bindings).values():
        future.result(CLIENT_TIMEOUT_S)
    # No binding matches open-topic: allowed to create (auto) and write.
    assert produce_outcomes(anonymous, "open-topic", 2) == [None] * 2
    # secret-x: WRITE and DESCRIBE allowed, CREATE denied: never created.
    producer = confluent_kafka.Producer({**anonymous, "message.timeout.ms": 3000})
    outcomes: list = []
    producer.produce("secret-x", b"v",
                     callback=lambda err, _msg: outcomes.append(err.code() if err else None))
    assert producer.flush(CLIENT_TIMEOUT_S) == 0
    assert outcomes and outcomes[0] is not None, outcomes
    topics = set(admin.list_topics(timeout=CLIENT_TIMEOUT_S).topics)
    assert "open-topic" in topics and "secret-x" not in topics, topics
    denied = server.log_lines("authorization denied", 'operation="CREATE"', "secret-x")
    assert denied, server.log_tail()


def test_quota_and_credential_apis_need_cluster_permissions(server_factory):
    """Client quotas are cluster configuration (DESCRIBE_CONFIGS,
    ALTER_CONFIGS) and SCRAM credentials cluster resources (DESCRIBE,
    ALTER), as in Kafka: refused to ANONYMOUS here, and nothing changes.
    The super user, authenticated by ringlog's own SASL client, may."""
    server = acl_server(server_factory)
    anonymous = server_factory("--authorizer", "on", "--super-users", "User:admin",
                               name="plaintext")
    entity = [("client-id", "reporting")]
    [(code, _, _)] = wire.alter_client_quotas_v0(
        anonymous.kafka_addr, [(entity, [("producer_byte_rate", 1e6, False)])])
    assert code == KafkaError.CLUSTER_AUTHORIZATION_FAILED
    code, _, entries = wire.describe_client_quotas_v0(anonymous.kafka_addr, [])
    assert code == KafkaError.CLUSTER_AUTHORIZATION_FAILED and entries == []
    out = subprocess.run([str(ringlog_bin()), "user", "list", "--bootstrap", anonymous.bootstrap],
                         capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S)
    assert out.returncode == 1 and "CLUSTER_AUTHORIZATION_FAILED" in out.stderr, out.stderr

    # On the SASL broker, the super user lists users and ACLs with
    # ringlog's own clients; alice may not.
    def as_user(user: str, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(ringlog_bin()), *args, "--bootstrap", server.bootstrap,
             "--security-protocol", "SASL_PLAINTEXT", "--sasl-mechanism", MECHANISM,
             "--sasl-username", user],
            capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S,
            env={**os.environ, "RINGLOG_SASL_PASSWORD": PASSWORDS[user]})
    users = as_user("admin", "user", "list", "--json")
    assert users.returncode == 0, users.stderr
    assert {u["user"] for u in json.loads(users.stdout)} == set(PASSWORDS)
    assert as_user("admin", "acl", "list").returncode == 0
    refused = as_user("alice", "user", "list")
    assert refused.returncode == 1 and "CLUSTER_AUTHORIZATION_FAILED" in refused.stderr, \
        refused.stderr
