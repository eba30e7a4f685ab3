#!/usr/bin/env python3
"""Writes the binary seed corpora of the xds_request and stats fuzz targets.

Protobuf is encoded by hand (no library needed): the requests are shaped as Envoy
1.40 sends them (node with labels and user agent, wildcard CDS/LDS, named EDS/RDS,
ACKs and NACKs), and the metrics messages as its metrics service sink does. The
framing is the targets' own: see fuzz_targets/xds_request.rs and stats.rs.
Run from fuzz/: python3 seeds.py
"""
import os
import struct


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(num, payload):
    """A length-delimited field (string, bytes, message)."""
    if isinstance(payload, str):
        payload = payload.encode()
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def double(num, value):
    return varint(num << 3 | 1) + struct.pack("<d", value)


def uint(num, value):
    return varint(num << 3) + varint(value)


def string_value(s):
    return field(3, s)  # google.protobuf.Value.string_value


def struct_of(fields):
    """google.protobuf.Struct: map<string, Value> fields = 1."""
    return b"".join(field(1, field(1, k) + field(2, v)) for k, v in fields.items())


def node(node_id, labels=None, agent="envoy", generator=None, features=()):
    meta = {}
    if labels:
        meta["labels"] = field(5, struct_of({k: string_value(v) for k, v in labels.items()}))
    if generator:
        meta["GENERATOR"] = string_value(generator)
    out = field(1, node_id) + field(2, "coalmine-fuzz")
    if meta:
        out += field(3, struct_of(meta))
    out += field(6, agent) + field(7, "1.40.0")
    out += b"".join(field(10, f) for f in features)
    return out


TYPE = "type.googleapis.com/envoy.config."
CDS = TYPE + "cluster.v3.Cluster"
EDS = TYPE + "endpoint.v3.ClusterLoadAssignment"
LDS = TYPE + "listener.v3.Listener"
RDS = TYPE + "route.v3.RouteConfiguration"
CLUSTERS = ["outbound|80|v1|petstore", "outbound|80|v2|petstore"]


def sotw(type_url, names=(), version="", nonce="", node_msg=None, error=None):
    """envoy.service.discovery.v3.DiscoveryRequest."""
    out = field(1, version) if version else b""
    if node_msg is not None:
        out += field(2, node_msg)
    out += b"".join(field(3, n) for n in names)
    out += field(4, type_url)
    if nonce:
        out += field(5, nonce)
    if error:
        out += field(6, uint(1, 3) + field(2, error))
    return out


def delta(type_url, subscribe=(), unsubscribe=(), nonce="", node_msg=None, initial=None):
    """envoy.service.discovery.v3.DeltaDiscoveryRequest."""
    out = field(1, node_msg) if node_msg is not None else b""
    out += field(2, type_url)
    out += b"".join(field(3, n) for n in subscribe)
    out += b"".join(field(4, n) for n in unsubscribe)
    for k, v in (initial or {}).items():
        out += field(5, field(1, k) + field(2, v))
    if nonce:
        out += field(6, nonce)
    return out


def req(msg):
    """Op 0: a request frame."""
    return b"\x00" + struct.pack("<H", len(msg)) + msg


ACK, NACK, VIEW, GRACE = b"\x01", b"\x81", b"\x02", b"\x03"


def xds_seeds():
    gw = node("gw-1", {"app": "gw"})
    mesh = node("sidecar-1")
    grpc = node("grpc-1", agent="gRPC Go", generator="grpc",
                features=["envoy.lb.does_not_support_overprovisioning"])
    # SotW, as an Envoy starts: CDS, EDS, LDS, RDS, each ACKed; then new revisions.
    yield "sotw-envoy-startup", stream(0, sotw(CDS, node_msg=gw), [
        ACK, req(sotw(EDS, CLUSTERS)), ACK, req(sotw(LDS)), ACK,
        req(sotw(RDS, ["http.8080"])), ACK,
        VIEW, ACK, ACK, ACK, VIEW, NACK, GRACE, ACK,
    ])
    # A sidecar that reconnects holding a version, with a nonce of its old stream.
    yield "sotw-reconnect", stream(0, sotw(CDS, version="0123456789abcdef", nonce="7",
                                           node_msg=mesh), [
        req(sotw(LDS, version="0123456789abcdef", nonce="8")), ACK, ACK,
        req(sotw(EDS, CLUSTERS[:1], version="x", nonce="9")), ACK, VIEW, ACK,
    ])
    # A proxyless gRPC client: named LDS, NACKed once.
    yield "sotw-grpc", stream(0, sotw(LDS, ["petstore:80"], node_msg=grpc), [
        NACK, req(sotw(LDS, ["petstore:80"], nonce="1", error="bad listener")), ACK,
        req(sotw(RDS, ["petstore:80"])), ACK, VIEW, ACK,
    ])
    yield "delta-envoy-startup", stream(1, delta(CDS, node_msg=gw), [
        ACK, req(delta(EDS, CLUSTERS)), ACK, req(delta(LDS)), ACK,
        req(delta(RDS, ["http.8080"])), ACK,
        VIEW, ACK, ACK, req(delta(EDS, unsubscribe=CLUSTERS[1:])), VIEW, NACK, GRACE,
    ])
    yield "delta-reconnect", stream(1, delta(CDS, node_msg=mesh,
                                             initial={CLUSTERS[0]: "abc", "gone": "1"}), [
        ACK, req(delta(EDS, ["*"], initial={CLUSTERS[0]: "abc"})), ACK, VIEW, ACK,
    ])


def stream(mode, first, steps):
    """The mode byte, the first request's frame (no op byte), then the steps."""
    return bytes([mode]) + frame(first) + b"".join(steps)


def counter(name, value):
    """io.prometheus.client.MetricFamily with one counter metric."""
    return field(1, name) + uint(3, 0) + field(4, field(3, double(1, value)))


def histogram(name, count, buckets):
    hist = uint(1, count) + double(2, 12.5 * count)
    hist += b"".join(field(3, uint(1, c) + double(2, b)) for b, c in buckets)
    return field(1, name) + uint(3, 4) + field(4, field(7, hist))


def metrics(node_id, requests, errors, fast):
    """envoy.service.metrics.v3.StreamMetricsMessage for one petstore cluster."""
    ident = field(1, node(node_id, {"app": "gw"})) if node_id else b""
    out = field(1, ident) if node_id else b""
    for c in CLUSTERS:
        out += field(2, counter(f"cluster.{c}.upstream_rq_completed", requests))
        out += field(2, counter(f"cluster.{c}.upstream_rq_5xx", errors))
        out += field(2, histogram(f"cluster.{c}.upstream_rq_time", requests,
                                  [(0.5, 0), (5.0, fast), (50.0, requests), (500.0, requests)]))
    out += field(2, counter("cluster.coalmine_xds.upstream_cx_total", 1))
    out += field(2, counter("http.ingress.downstream_rq_total", requests))
    return out


def frame(msg):
    return struct.pack("<H", len(msg)) + msg


def stats_seeds():
    yield "one-report", frame(metrics("gw-1", 100, 1, 90))
    yield "a-stream", frame(metrics("gw-1", 100, 1, 90)) + frame(metrics(None, 250, 3, 200)) \
        + frame(metrics(None, 400, 30, 250))
    yield "two-proxies-and-a-restart", frame(metrics("gw-1", 1000, 0, 900)) \
        + frame(metrics("gw-2", 50, 5, 10)) + frame(metrics("gw-1", 20, 0, 20))


def write(target, seeds):
    os.makedirs(f"corpus/{target}", exist_ok=True)
    for name, data in seeds:
        with open(f"corpus/{target}/{name}.bin", "wb") as f:
            f.write(data)


if __name__ == "__main__":
    write("xds_request", xds_seeds())
    write("stats", stats_seeds())
