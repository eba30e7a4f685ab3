"""A gRPC server for coalmine's tests: on 127.0.0.1, port 0, it answers every unary
method of the package coalmine.test (/coalmine.test.Echo/Call and any other) with
its version (argv[1]) as the raw response body and as the trailing metadata
x-version. It prints its port, then serves until its
standard input closes."""

import sys
from concurrent import futures

import grpc

VERSION = sys.argv[1]


def call(request, context):
    context.set_trailing_metadata((("x-version", VERSION),))
    return VERSION.encode()


class Echo(grpc.GenericRpcHandler):
    def service(self, details):
        if details.method.startswith("/coalmine.test."):
            return grpc.unary_unary_rpc_method_handler(call)
        return None


server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
server.add_generic_rpc_handlers((Echo(),))
port = server.add_insecure_port("127.0.0.1:0")
server.start()
print(port, flush=True)
sys.stdin.read()
server.stop(0)
