#!/usr/bin/python3
# Test fixture: a gRPC health server (grpc.health.v1.Health/Check) on grpcio, Debian's
# python3-grpcio, which has no health module (and whose import would load a grpc_health.py of
# this folder as its own: hence the name): the service is declared by hand with a generic
# handler and the two tiny messages are encoded by hand. Usage: grpchealthd.py PORT STATE_FILE;
# the file holds SERVING, NOT_SERVING or anything else (UNKNOWN), read at every call. Services
# known: "" (the server) and "drover.test"; any other is NOT_FOUND, as grpc-go's server says.
import sys
from concurrent import futures

import grpc


def decode(data):
    """HealthCheckRequest: field 1, length-delimited: the service name."""
    if len(data) >= 2 and data[0] == 0x0A and data[1] < 0x80:
        return data[2 : 2 + data[1]].decode()
    return ""


def encode(status):
    """HealthCheckResponse: field 1, varint; 0 (UNKNOWN) is left out, as proto3 does."""
    return bytes([0x08, status]) if status else b""


def check(service, context):
    if service not in ("", "drover.test"):
        context.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
    with open(STATE) as f:
        state = f.read().strip()
    return {"SERVING": 1, "NOT_SERVING": 2}.get(state, 0)


PORT, STATE = sys.argv[1], sys.argv[2]
handler = grpc.method_handlers_generic_handler(
    "grpc.health.v1.Health",
    {"Check": grpc.unary_unary_rpc_method_handler(check, request_deserializer=decode,
                                                   response_serializer=encode)},
)
server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
server.add_generic_rpc_handlers((handler,))
server.add_insecure_port("127.0.0.1:" + PORT)
server.start()
print("grpc health server on 127.0.0.1:" + PORT, flush=True)
server.wait_for_termination()
