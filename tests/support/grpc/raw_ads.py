"""Sends raw bytes as one ADS request and prints the status the server ends with.

usage: raw_ads.py HOST:PORT sotw|delta HEX|big
  HEX: the request message's bytes, hex-encoded; big: 17 MiB of zeros.
Prints `CODE MESSAGE` (e.g. `INVALID_ARGUMENT cannot decode a request: ...`).
"""
import os
import sys

import grpc

METHODS = {
    "sotw": "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources",
    "delta": "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources",
}


def main():
    target, protocol, payload = sys.argv[1:4]
    body = b"\0" * (17 * 1024 * 1024) if payload == "big" else bytes.fromhex(payload)
    options = [("grpc.max_send_message_length", 64 * 1024 * 1024)]
    with grpc.insecure_channel(target, options=options) as channel:
        call = channel.stream_stream(
            METHODS[protocol],
            request_serializer=lambda b: b,
            response_deserializer=lambda b: b,
        )
        try:
            for _ in call(iter([body]), timeout=10):
                pass
            print("OK stream ended", flush=True)
        except grpc.RpcError as e:
            print(e.code().name, e.details(), flush=True)
    # grpcio can hang in its own shutdown after the server ends a call mid-upload; the
    # answer is printed, so leave without waiting for it.
    os._exit(0)


if __name__ == "__main__":
    main()
