"""Unit-test a verifier: run it in-process behind real gRPC, feed it certificates.

    from tlspin_sdk import testing

    class CNPinTest(unittest.TestCase):
        def test_pinned_cn(self):
            with testing.start(CNPin(), cn="api.example.com") as h:
                good = testing.certificate("api.example.com", ["api.example.com"])
                self.assertTrue(h.verify(good).allow)

A Harness serves the verifier through the same adapter serve() uses, so
options are checked against describe() first and a bad option comes back
as the grpc.RpcError the host sees (code INVALID_ARGUMENT). What it does not
cover is the process (handshake, AutoMTLS, stdout): run the plugin through
tlspin for that (tlspin verifiers check NAME).
"""

from concurrent import futures

import grpc

from . import verifier_pb2 as pb
from .plugin import SERVICE, Adapter, Logger
from .x509 import Certificate, Key, certificate

__all__ = ["Harness", "start", "request", "certificate", "Certificate", "Key"]


class _Discard:
    def write(self, s):
        pass

    def flush(self):
        pass


class Harness:
    """A verifier served on 127.0.0.1 (an ephemeral port, no TLS) and a
    client for it. Use it as a context manager, or call close()."""

    def __init__(self, verifier, log=None):
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self.server.add_generic_rpc_handlers((Adapter(verifier, log or Logger("test", _Discard())).handler(),))
        port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()
        self.channel = grpc.insecure_channel("127.0.0.1:%d" % port)

        def call(method, req, resp):
            return self.channel.unary_unary("/%s/%s" % (SERVICE, method), request_serializer=req.SerializeToString,
                                            response_deserializer=resp.FromString)
        self._describe = call("Describe", pb.DescribeRequest, pb.DescribeResponse)
        self._configure = call("Configure", pb.ConfigureRequest, pb.ConfigureResponse)
        self._verify = call("Verify", pb.VerifyRequest, pb.VerifyResponse)
        self._commit = call("Commit", pb.CommitRequest, pb.CommitResponse)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.channel.close()
        self.server.stop(None)

    def describe(self):
        return self._describe(pb.DescribeRequest(), timeout=10)

    def configure(self, **options):
        """Configures the verifier. A value may be a string or a list of
        strings; write option names with dashes as keyword arguments through
        a dict: configure(**{"server-name": "x"})."""
        req = pb.ConfigureRequest()
        for name, value in options.items():
            req.options[name].values.extend([value] if isinstance(value, str) else list(value))
        return self._configure(req, timeout=10)

    def verify(self, *chain, server_name="", side=pb.SIDE_CLIENT_VERIFIES_SERVER, **fields):
        """Asks for a verdict on chain (Certificate objects or DER bytes,
        leaf first). Other VerifyRequest fields go in as keywords."""
        return self._verify(request(*chain, server_name=server_name, side=side, **fields), timeout=10)

    def commit(self, *chain, server_name="", side=pb.SIDE_CLIENT_VERIFIES_SERVER, **fields):
        """Calls Commit as the host does after a successful handshake, with
        the request verify() would get. A verifier without commit() raises
        grpc.RpcError UNIMPLEMENTED, which the host takes as nothing to
        commit, unless verify() answered allow(..., commit=True): the host
        then rejects the connection."""
        req = request(*chain, server_name=server_name, side=side, **fields)
        return self._commit(pb.CommitRequest(request=req), timeout=10)


def request(*chain, server_name="", side=pb.SIDE_CLIENT_VERIFIES_SERVER, **fields):
    """A pb.VerifyRequest for chain (Certificate objects or DER bytes, leaf
    first); other VerifyRequest fields go in as keywords."""
    der = [c.der if isinstance(c, Certificate) else bytes(c) for c in chain]
    return pb.VerifyRequest(peer_chain=der, server_name=server_name, side=side, **fields)


def start(verifier, **options):
    """A Harness whose verifier is already configured with options."""
    h = Harness(verifier)
    try:
        h.configure(**options)
    except BaseException:
        h.close()
        raise
    return h
