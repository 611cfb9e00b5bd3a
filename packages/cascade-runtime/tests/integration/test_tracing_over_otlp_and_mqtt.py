"""A run's spans exported over OTLP/HTTP to a receiver on loopback; its trace id over a broker."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import aiomqtt
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from cascade.connectors.mqtt import MqttConnector
from cascade.runtime import Engine, TaskFailedError, task
from cascade.testkit import BrokerEndpoint


class Receiver:
    """An OTLP/HTTP trace receiver on loopback: decodes each ExportTraceServiceRequest."""

    def __init__(self) -> None:
        self.spans: list[ProtoSpan] = []
        self.paths: list[str] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = ExportTraceServiceRequest.FromString(body)
                with receiver.lock:
                    receiver.paths.append(self.path)
                    for resource in request.resource_spans:
                        for scope in resource.scope_spans:
                            receiver.spans.extend(scope.spans)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A receiver serving on a free loopback port for the test."""
    receiver = Receiver()
    receiver.thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()
    receiver.thread.join()


@task
async def fetch(i: int) -> int:
    return i


@task
def total(values: list[int]) -> int:
    return sum(values)


@task
async def broken() -> int:
    raise ValueError("bad row")


def _attributes(span: ProtoSpan) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for kv in span.attributes:
        kind = kv.value.WhichOneof("value")
        values[kv.key] = getattr(kv.value, kind) if kind else None
    return values


async def test_a_runs_spans_arrive_over_otlp_http(receiver: Receiver) -> None:
    """With the SDK's batch processor and the OTLP/HTTP exporter, the receiver gets the run's
    span and one child per task attempt, the failed one with status ERROR."""
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=receiver.endpoint)))
    engine = Engine(tracer_provider=provider)
    with pytest.raises(TaskFailedError, match="bad row"):
        await engine.run([total([fetch(1), fetch(2)]), broken.with_retry(2)()])
    assert await asyncio.to_thread(provider.force_flush, 10_000)
    await asyncio.to_thread(provider.shutdown)
    assert set(receiver.paths) == {"/v1/traces"}
    spans = list(receiver.spans)
    names = sorted(s.name for s in spans)
    assert names == ["broken", "broken", "cascade.run", "fetch", "fetch", "total"]
    (run,) = [s for s in spans if s.name == "cascade.run"]
    assert {s.trace_id for s in spans} == {run.trace_id}
    assert all(s.parent_span_id == run.span_id for s in spans if s is not run)
    assert _attributes(run)["cascade.run.status"] == "Failed"
    attempts = sorted(
        (
            _attributes(s)["cascade.task.attempt"],
            _attributes(s)["cascade.task.state"],
            s.status.code,
        )
        for s in spans
        if s.name == "broken"
    )
    error = Status.STATUS_CODE_ERROR
    assert attempts == [(1, "RETRYING", error), (2, "FAILED", error)]


async def test_the_trace_id_arrives_in_the_telemetry_over_a_broker(
    mqtt_broker: BrokerEndpoint, prefix: str, plain_client: aiomqtt.Client
) -> None:
    """A plain MQTT subscriber reads the run's trace id in every envelope of its events."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    await plain_client.subscribe(f"{prefix}/telemetry/+/+/+/events", qos=1)
    connector = MqttConnector(mqtt_broker.host, mqtt_broker.port, topic_prefix=prefix)
    engine = Engine(connector, tracer_provider=provider, heartbeat_interval=None)
    assert await engine.run(total([fetch(1), fetch(2)])) == 3
    received: list[dict[str, Any]] = []

    async def read() -> None:
        async for message in plain_client.messages:
            assert isinstance(message.payload, bytes)
            received.append(json.loads(message.payload))
            if len(received) == 2 + 3 * 2:  # lifecycle + RUNNING/COMPLETED per task
                return

    await asyncio.wait_for(read(), 15)
    (run,) = [s for s in exporter.get_finished_spans() if s.name == "cascade.run"]
    assert run.context is not None
    assert {m.get("trace_id") for m in received} == {format(run.context.trace_id, "032x")}
    events = {m["body"].get("event") for m in received if m["body"]["type"] == "LifecycleEvent"}
    assert events == {"ENGINE_STARTED", "ENGINE_STOPPED"}
