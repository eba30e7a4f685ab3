"""One ADS or stats stream over TLS (optionally with a client certificate), claiming a
node id; prints how it went.

usage: tls_ads.py HOST:PORT CA CERT|- KEY|- NODE_ID ads|stats|hold
  ads:   sends a DiscoveryRequest for clusters and prints `OK` on the first response
  stats: sends one StreamMetricsMessage and prints the status the server ends with
  hold:  like ads, then keeps the stream open until stdin closes
Prints `OK ...` or `CODE details` (e.g. `PERMISSION_DENIED node id ...`).
"""
import os
import sys

import grpc

ADS = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
STATS = "/envoy.service.metrics.v3.MetricsService/StreamMetrics"
CLUSTERS = "type.googleapis.com/envoy.config.cluster.v3.Cluster"


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(number, payload):
    """A length-delimited protobuf field."""
    if isinstance(payload, str):
        payload = payload.encode()
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def node(node_id):
    return field(1, node_id) + field(2, "coalmine")


def read(path):
    return None if path == "-" else open(path, "rb").read()


def main():
    target, ca, cert, key, node_id, mode = sys.argv[1:7]
    creds = grpc.ssl_channel_credentials(read(ca), read(key), read(cert))
    options = [("grpc.ssl_target_name_override", "localhost")]
    with grpc.secure_channel(target, creds, options=options) as channel:
        try:
            if mode == "stats":
                call = channel.stream_unary(
                    STATS, request_serializer=lambda b: b, response_deserializer=lambda b: b
                )
                # StreamMetricsMessage{identifier{node}} and no metrics.
                call(iter([field(1, field(1, node(node_id)))]), timeout=10)
                print("OK stats accepted", flush=True)
                return
            call = channel.stream_stream(
                ADS, request_serializer=lambda b: b, response_deserializer=lambda b: b
            )
            request = field(2, node(node_id)) + field(4, CLUSTERS)

            def requests():
                yield request
                if mode == "hold":
                    sys.stdin.read()

            for _ in call(requests(), timeout=None if mode == "hold" else 10):
                print("OK response", flush=True)
                if mode != "hold":
                    break
        except grpc.RpcError as e:
            print(e.code().name, e.details(), flush=True)
    # Do not wait for grpcio's own shutdown (it can hang after a refused call).
    os._exit(0)


if __name__ == "__main__":
    main()
