"""Calls coalmine's CSDS (envoy.service.status.v3.ClientStatusDiscoveryService) with
raw message bytes, so no generated protobuf code is needed: the test encodes the
requests and decodes the responses.

usage: csds.py HOST:PORT fetch|stream TOKEN|- HEX[,HEX...]
  fetch: FetchClientStatus with the first request; stream: StreamClientStatus with
  every request, one response each. TOKEN goes as `authorization: Bearer TOKEN`.
Prints `OK HEX` per response, or `CODE details` when the call fails.
"""
import sys

import grpc

SERVICE = "/envoy.service.status.v3.ClientStatusDiscoveryService/"


def main():
    target, mode, token, payloads = sys.argv[1:5]
    requests = [bytes.fromhex(p) for p in payloads.split(",")]
    metadata = [] if token == "-" else [("authorization", "Bearer " + token)]
    raw = dict(request_serializer=lambda b: b, response_deserializer=lambda b: b)
    with grpc.insecure_channel(target) as channel:
        try:
            if mode == "fetch":
                call = channel.unary_unary(SERVICE + "FetchClientStatus", **raw)
                answers = [call(requests[0], metadata=metadata, timeout=10)]
            else:
                call = channel.stream_stream(SERVICE + "StreamClientStatus", **raw)
                answers = call(iter(requests), metadata=metadata, timeout=10)
            for answer in answers:
                print("OK", answer.hex(), flush=True)
        except grpc.RpcError as e:
            print(e.code().name, e.details(), flush=True)


if __name__ == "__main__":
    main()
