"""tlspin_sdk: write a tlspin verifier plugin in Python.

    import tlspin_sdk as sdk
    from tlspin_sdk import pb

    class CNPin:
        def describe(self):
            return pb.DescribeResponse(name="cnpin", version="1", summary="...",
                                       options=[pb.Option(name="cn", required=True)])

        def configure(self, options):        # already checked against describe()
            self.cn = options.string("cn")

        def verify(self, request):           # pb.VerifyRequest: peer_chain, server_name, ...
            cn = ...                         # parse request.peer_chain[0], e.g. with cryptography
            if cn != self.cn:
                return sdk.reject("leaf CN %r; want %r" % (cn, self.cn))
            return sdk.allow("leaf CN is %r" % cn, matched=self.cn)

    if __name__ == "__main__":
        sdk.serve(CNPin())

serve() speaks go-plugin's handshake and AutoMTLS and serves the gRPC
service; tlspin_sdk.testing runs a verifier in-process over gRPC for unit
tests and makes certificates. Runtime dependencies: grpcio and protobuf
(Debian: python3-grpcio, python3-protobuf).
"""

from . import verifier_pb2 as pb
from .options import OptionError, Options, check_options
from .plugin import MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE, Logger, serve

__all__ = ["pb", "OptionError", "Options", "check_options", "Logger", "serve", "allow", "reject",
           "MAGIC_COOKIE_KEY", "MAGIC_COOKIE_VALUE", "CLIENT_VERIFIES_SERVER", "SERVER_VERIFIES_CLIENT"]

CLIENT_VERIFIES_SERVER = pb.SIDE_CLIENT_VERIFIES_SERVER
SERVER_VERIFIES_CLIENT = pb.SIDE_SERVER_VERIFIES_CLIENT


def allow(reason, matched="", cache_for_millis=0, commit=False):
    """An acceptance: reason is logged, matched names the pin or rule, and
    cache_for_millis lets the host reuse the verdict for the same chain.
    commit=True asks the host to call the verifier's commit() with the same
    request once the handshake succeeded (the host then never caches it)."""
    return pb.VerifyResponse(allow=True, reason=reason, matched=matched, cache_for_millis=cache_for_millis,
                             commit=commit)


def reject(reason):
    """A rejection: reason is shown to the user. Say what was received and
    how it could be trusted."""
    return pb.VerifyResponse(allow=False, reason=reason)
