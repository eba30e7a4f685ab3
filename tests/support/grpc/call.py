"""A plain gRPC client for coalmine's tests: one channel to argv[1] (host:port, an
Envoy listener) with the authority argv[2], kept for the whole run. Each line of
standard input is a JSON request {"calls": N, "method": "/pkg.Service/Method",
"metadata": [[k, v], ...]}; the answer is one JSON line counting the outcomes: the
body a server answered (its version), or "error CODE"."""

import json
import sys

import grpc

channel = grpc.insecure_channel(sys.argv[1], options=[("grpc.default_authority", sys.argv[2])])
print(json.dumps({"ready": grpc.__version__}), flush=True)
for line in sys.stdin:
    request = json.loads(line)
    call = channel.unary_unary(request["method"])
    metadata = [tuple(m) for m in request.get("metadata", [])]
    counts = {}
    for _ in range(request["calls"]):
        try:
            outcome = call(b"", metadata=metadata, timeout=5).decode()
        except grpc.RpcError as e:
            outcome = "error %s" % e.code().name
        counts[outcome] = counts.get(outcome, 0) + 1
    print(json.dumps(counts), flush=True)
channel.close()
