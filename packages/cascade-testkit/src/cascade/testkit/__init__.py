"""Cascade's test kit: private brokers and pytest fixtures for this repository's tests.

An unpublished workspace package (``packages/cascade-testkit``): the nox
sessions install it, editable, beside the four published packages; it is
never built or shipped. In a package's ``tests/integration/conftest.py``::

    from cascade.testkit import mqtt_broker  # noqa: F401 - the fixture

then take ``mqtt_broker`` (session-wide: a private mosquitto on a free
loopback port, or the embedded amqtt broker where mosquitto is not
installed; see ``.is_mosquitto`` and ``.supports_mqtt5``),
``mosquitto_broker`` (one per test, can ``stop``/``pause``/``resume``/
``restart``) or ``mqtt_tls_broker`` (TLS and a password file) as arguments.
``family_mqtt_broker`` and friends register the same fixture names on the
broker family ``CASCADE_TEST_BROKER`` picks (``mosquitto``, the default,
``rabbitmq``: a private RabbitMQ node, :class:`RabbitMQBroker`, or ``nats``:
a three-node NATS JetStream cluster speaking MQTT, :class:`NatsCluster`,
and one :class:`NatsNode` per test that stops or hangs its broker), with
``skip_on_family``/``xfail_on_family`` marks for what a family lacks, ``only_on_family`` for a
test one family's session runs alone.
``mosquitto_bridge`` is an edge mosquitto bridged to a centre one;
:class:`RabbitMQCluster` two RabbitMQ nodes clustered on loopback;
:class:`PrivatePostgreSQL` a PostgreSQL cluster of the tests' own;
:class:`PrivatePrometheus` a Prometheus server of the tests' own;
:class:`DaskCluster` a Dask scheduler and workers of the tests' own;
:class:`WebhookReceiver` a webhook receiver of the tests' own (an HTTP server on loopback);
:class:`ForwardProxy` an HTTP proxy of the tests' own (proxy.py, a process on loopback);
:class:`S3Server` (fixture ``s3_server``) an S3 server of the tests' own (moto's, on loopback);
``shared_store`` runs a test with the results store its servers share in a directory, then in
an S3 bucket (:class:`SharedStore`).
:class:`HoldingEngine` stands in for an engine whose run has tasks held for a decision
(:class:`HeldTask`), answering decisions as an engine does, for the faces that send them;
:class:`ServingEngine` for a process serving named workflows (``Engine.serve``): it announces
them and answers start and rerun requests (:class:`KeptRun`: a run it can rerun).
:class:`FleetSimulator` publishes as thousands of engines (:class:`FleetSettings`) from a few
processes, for the benchmarks of readers (``bench_fleet.py``); :func:`final_tallies` is what an
engine's last summary must count, from its events (:attr:`FleetCounts.engines`).

Unit tests of the connector need none of this: ``MqttConnector(link=FakeBroker())``
with ``FakeBroker`` from ``cascade.connectors.mqtt.testing``, which ships
in the connector's wheel.
"""

from ._bridge import MosquittoBridge, mosquitto_bridge
from ._certs import TestCertificates, make_test_certificates
from ._dask import DaskCluster
from ._families import (
    BROKER_FAMILIES,
    BROKER_FAMILY_VARIABLE,
    MOSQUITTO_ONLY,
    NO_MQTT5,
    NO_QOS2_PUBLISH,
    NO_SHARED_SUBSCRIPTIONS,
    NOT_THE_SHARED_BROKER,
    QOS_ORDER_NOT_KEPT,
    RETAINED_EXACT_ONLY,
    RETAINED_EXACT_ONLY_HANGS,
    STAR_TOPIC_REWRITTEN,
    OwnBroker,
    broker_family,
    family_mosquitto_broker,
    family_mqtt_broker,
    family_mqtt_tls_broker,
    family_own_broker,
    only_on_family,
    skip_on_family,
    xfail_on_family,
)
from ._fixtures import (
    NO_MOSQUITTO,
    BrokerEndpoint,
    mosquitto_broker,
    mqtt_broker,
    mqtt_tls_broker,
    new_database,
    own_postgresql,
)
from ._fleet import FleetCounts, FleetSimulator
from ._fleet_engines import FleetSettings, Outgoing, SimulatedEngine
from ._fleet_share import EngineShare
from ._fleet_summaries import SUMMARY_GAP, final_tallies
from ._holding import HeldTask, HoldingEngine
from ._inbox import Inbox
from ._memory_fixtures import (
    Invoke,
    PublishRetained,
    broker,
    hub,
    invoke,
    own_default_history,
    publish_retained,
)
from ._mosquitto import MosquittoBroker, mosquitto_path
from ._mqtt_probe import mqtt_accepts
from ._nats import NO_NATS, NatsCluster, NatsNode, nats_server_path
from ._ports import free_port
from ._postgres import NO_POSTGRESQL, PrivatePostgreSQL, postgresql_bin
from ._prometheus import NO_PROMETHEUS, PrivatePrometheus, prometheus_path
from ._rabbitmq import NO_RABBITMQ, RabbitMQBroker, rabbitmq_server_path, rabbitmq_user
from ._rabbitmq_cluster import RabbitMQCluster
from ._s3 import S3_STORE_FAMILIES, S3Server, SharedStore, s3_server, shared_store
from ._serving import KeptRun, ServingEngine
from ._signals import sigint_default
from ._threaded import ThreadedEmbeddedBroker
from ._webhooks import ForwardProxy, WebhookReceiver

__all__ = [
    "S3_STORE_FAMILIES",
    "S3Server",
    "SharedStore",
    "s3_server",
    "shared_store",
    "ForwardProxy",
    "WebhookReceiver",
    "HeldTask",
    "HoldingEngine",
    "Invoke",
    "KeptRun",
    "ServingEngine",
    "PublishRetained",
    "broker",
    "hub",
    "invoke",
    "own_default_history",
    "publish_retained",
    "BROKER_FAMILIES",
    "BROKER_FAMILY_VARIABLE",
    "MOSQUITTO_ONLY",
    "NOT_THE_SHARED_BROKER",
    "NO_MOSQUITTO",
    "NO_MQTT5",
    "NO_NATS",
    "NO_POSTGRESQL",
    "NO_PROMETHEUS",
    "NO_QOS2_PUBLISH",
    "NO_RABBITMQ",
    "NO_SHARED_SUBSCRIPTIONS",
    "QOS_ORDER_NOT_KEPT",
    "RETAINED_EXACT_ONLY",
    "RETAINED_EXACT_ONLY_HANGS",
    "STAR_TOPIC_REWRITTEN",
    "SUMMARY_GAP",
    "BrokerEndpoint",
    "DaskCluster",
    "EngineShare",
    "FleetCounts",
    "FleetSettings",
    "FleetSimulator",
    "Inbox",
    "Outgoing",
    "MosquittoBridge",
    "MosquittoBroker",
    "NatsCluster",
    "NatsNode",
    "OwnBroker",
    "PrivatePostgreSQL",
    "PrivatePrometheus",
    "RabbitMQBroker",
    "RabbitMQCluster",
    "SimulatedEngine",
    "TestCertificates",
    "ThreadedEmbeddedBroker",
    "broker_family",
    "family_mosquitto_broker",
    "family_mqtt_broker",
    "family_mqtt_tls_broker",
    "family_own_broker",
    "final_tallies",
    "free_port",
    "make_test_certificates",
    "mosquitto_bridge",
    "mosquitto_broker",
    "mosquitto_path",
    "nats_server_path",
    "mqtt_accepts",
    "mqtt_broker",
    "mqtt_tls_broker",
    "postgresql_bin",
    "new_database",
    "own_postgresql",
    "prometheus_path",
    "rabbitmq_server_path",
    "rabbitmq_user",
    "sigint_default",
    "only_on_family",
    "skip_on_family",
    "xfail_on_family",
]
