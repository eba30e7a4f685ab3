"""A proxyless gRPC client for coalmine's tests: one channel to the target argv[1]
(an xds:/// target, with GRPC_XDS_BOOTSTRAP set), kept for the whole run. Each line
of standard input is a JSON request {"calls": N, "metadata": [[k, v], ...],
"timeout": seconds}; the answer is one JSON line counting the outcomes: the body a
server answered (its version), or "error CODE: details"."""

import json
import sys

import grpc

channel = grpc.insecure_channel(sys.argv[1])
call = channel.unary_unary("/coalmine.test.Echo/Call")
print(json.dumps({"ready": grpc.__version__}), flush=True)
for line in sys.stdin:
    request = json.loads(line)
    metadata = [tuple(m) for m in request.get("metadata", [])]
    counts = {}
    for _ in range(request["calls"]):
        try:
            body = call(b"", metadata=metadata, timeout=request.get("timeout", 5))
            outcome = body.decode()
        except grpc.RpcError as e:
            outcome = "error %s: %s" % (e.code().name, e.details())
        counts[outcome] = counts.get(outcome, 0) + 1
    print(json.dumps(counts), flush=True)
channel.close()
