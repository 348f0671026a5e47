"""A proxyless gRPC client (Python grpcio, gRPC C-core's xDS client) for Aviary's tests.

Reads its xDS bootstrap from GRPC_XDS_BOOTSTRAP (pilot's address, `channel_creds` and node), asks
the control plane for `xds:///<target>`, makes `calls` Echo calls (aviary.test.echo.v1, encoded by
hand so no generated code is needed) and prints one JSON line: {"servers": {name: count}} or
{"error": "..."}. Exit 0 only when every call succeeded.
"""
import json
import sys

import grpc


def encode_request(message: str) -> bytes:
    data = message.encode()
    return b"\x0a" + bytes([len(data)]) + data  # field 1 (string), short messages only


def decode_server(reply: bytes) -> str:
    # EchoReply.server is field 1 (length-delimited), written first
    if len(reply) < 2 or reply[0] != 0x0A:
        return ""
    return reply[2 : 2 + reply[1]].decode()


def main() -> int:
    target, calls, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    counts: dict[str, int] = {}
    with grpc.insecure_channel(f"xds:///{target}") as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            print(json.dumps({"error": f"xds:///{target} not ready within {timeout}s"}))
            return 1
        echo = channel.unary_unary("/aviary.test.echo.v1.Echo/Echo", request_serializer=None, response_deserializer=None)
        for _ in range(calls):
            try:
                server = decode_server(echo(encode_request("hi"), timeout=timeout))
            except grpc.RpcError as err:
                print(json.dumps({"error": f"{err.code()}: {err.details()}", "servers": counts}))
                return 1
            counts[server] = counts.get(server, 0) + 1
    print(json.dumps({"servers": counts}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
