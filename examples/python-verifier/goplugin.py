"""Serve a tlspin verifier from Python over HashiCorp go-plugin's protocol.

This module is the glue a Python verifier needs and nothing else; the
policy lives in the executable (tlspin-verifier-pyspki). What go-plugin's
Go side expects, and what this module does about it:

  * The magic cookie TLSPIN_VERIFIER_PLUGIN in the environment: without it
    the program was run by hand; say so on stderr and exit 1.
  * Exactly one line on stdout, the handshake:
        CORE|APP|unix|SOCKET|grpc|SERVER_CERT
    CORE is go-plugin's core protocol (1), APP the verifier protocol (1),
    SOCKET a unix socket this process listens on, and SERVER_CERT, with
    AutoMTLS, this process's certificate as unpadded base64 of its DER.
    After it, stdout is pointed at stderr: a stray print cannot corrupt it.
  * AutoMTLS: the host puts its PEM certificate in PLUGIN_CLIENT_CERT. The
    server requires that certificate from the client and presents its own
    fresh self-signed certificate for "localhost".
  * The services go-plugin calls besides the verifier: grpc.health.v1.Health
    (service "plugin" is SERVING), plugin.GRPCController/Shutdown (the host
    asks the plugin to exit) and plugin.GRPCStdio/StreamStdio (kept open,
    silent: this plugin writes nothing to stdout).
  * Logs go to stderr as hclog JSON lines, which the host re-emits under
    the verifier's name at the right level. TLSPIN_LOG_LEVEL sets the level.

The host's own go-plugin and grpc messages are decoded here with the
generated verifier_pb2 (tlspin's contract) and by hand for the two tiny
go-plugin messages (Empty, HealthCheck), so that nothing beyond Debian's
python3-grpcio, python3-protobuf and python3-cryptography is needed.
"""

import base64
import datetime
import json
import os
import signal
import sys
import tempfile
import threading
import traceback
from concurrent import futures

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import verifier_pb2 as pb

CORE_PROTOCOL_VERSION = 1
VERIFIER_PROTOCOL_VERSION = 1
MAGIC_COOKIE_KEY = "TLSPIN_VERIFIER_PLUGIN"
MAGIC_COOKIE_VALUE = "8f1c2e0b6d7a4f3e9b5c1a2d3e4f5a6b"
SERVICE = "tlspin.verifier.v1.Verifier"


class OptionError(Exception):
    """A bad option: the host shows it to the user as a usage error."""

    def __init__(self, option, value, problem):
        super().__init__(f'option {option}="{value}": {problem}' if value else f'option "{option}": {problem}')


class Logger:
    """Writes hclog-style JSON lines to stderr."""

    LEVELS = ["trace", "debug", "info", "warn", "error"]

    def __init__(self, name):
        self.name = name
        level = os.environ.get("TLSPIN_LOG_LEVEL", "info").lower()
        self.min = self.LEVELS.index(level) if level in self.LEVELS else 2
        self.lock = threading.Lock()

    def log(self, level, message, **kv):
        if self.LEVELS.index(level) < self.min:
            return
        entry = {
            "@level": level,
            "@message": message,
            "@module": self.name,
            "@timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="microseconds"),
        }
        entry.update({k: str(v) for k, v in kv.items()})
        with self.lock:
            sys.stderr.write(json.dumps(entry) + "\n")
            sys.stderr.flush()

    def debug(self, message, **kv):
        self.log("debug", message, **kv)

    def info(self, message, **kv):
        self.log("info", message, **kv)

    def warn(self, message, **kv):
        self.log("warn", message, **kv)

    def error(self, message, **kv):
        self.log("error", message, **kv)


def _server_certificate():
    """A fresh key and self-signed certificate for "localhost", as go-plugin makes."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tlspin python verifier")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(seconds=30))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True, key_agreement=True,
                                     key_cert_sign=True, content_commitment=False, data_encipherment=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem, cert


def _health_check(request, context):
    """grpc.health.v1.Health/Check: field 1 of the request is the service
    name; the answer is status (field 1) SERVING (1)."""
    service = ""
    if len(request) >= 2 and request[0] == 0x0A and request[1] < 0x80:
        service = request[2:2 + request[1]].decode("utf-8", "replace")
    if service not in ("", "plugin"):
        context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {service!r}")
    return b"\x08\x01"


def _raw(handler, streaming=False):
    """A method handler whose messages are raw bytes."""
    ident = lambda b: b  # noqa: E731
    if streaming:
        return grpc.unary_stream_rpc_method_handler(handler, request_deserializer=ident, response_serializer=ident)
    return grpc.unary_unary_rpc_method_handler(handler, request_deserializer=ident, response_serializer=ident)


class _Verifier:
    """Adapts a verifier object to the generated messages and gRPC errors."""

    def __init__(self, impl, log):
        self.impl = impl
        self.log = log

    def _call(self, what, context, fn, *args):
        try:
            return fn(*args)
        except OptionError as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        except Exception as e:  # a verifier's bug is a rejection, never a crash
            self.log.error(f"{what} failed", error=repr(e), traceback=traceback.format_exc())
            context.abort(grpc.StatusCode.UNKNOWN, f"{what}: {e}")

    def describe(self, request, context):
        return self._call("describe", context, self.impl.describe)

    def configure(self, request, context):
        options = {k: list(v.values) for k, v in request.options.items()}
        return self._call("configure", context, self.impl.configure, options) or pb.ConfigureResponse()

    def verify(self, request, context):
        return self._call("verify", context, self.impl.verify, request)

    def handler(self):
        def h(fn, req, resp):
            return grpc.unary_unary_rpc_method_handler(fn, request_deserializer=req.FromString,
                                                       response_serializer=resp.SerializeToString)
        # WatchPolicy is left out: the host gets UNIMPLEMENTED, which the
        # contract allows for a verifier whose policy never changes.
        return grpc.method_handlers_generic_handler(SERVICE, {
            "Describe": h(self.describe, pb.DescribeRequest, pb.DescribeResponse),
            "Configure": h(self.configure, pb.ConfigureRequest, pb.ConfigureResponse),
            "Verify": h(self.verify, pb.VerifyRequest, pb.VerifyResponse),
        })


def serve(impl, name):
    """Serve impl as a tlspin verifier plugin until the host stops it.

    impl has three methods: describe() -> pb.DescribeResponse;
    configure(options: dict[str, list[str]]) -> pb.ConfigureResponse or
    None, raising OptionError for a bad option; verify(pb.VerifyRequest)
    -> pb.VerifyResponse. An exception in verify is a rejection.
    """
    if os.environ.get(MAGIC_COOKIE_KEY) != MAGIC_COOKIE_VALUE:
        sys.stderr.write(f"This is a tlspin verifier plugin; tlspin runs it: tlspin send --verifier {name} ...\n")
        sys.exit(1)
    log = Logger(name)
    sys.excepthook = lambda t, v, tb: log.error("uncaught exception", error=repr(v),
                                               traceback="".join(traceback.format_exception(t, v, tb)))
    versions = os.environ.get("PLUGIN_PROTOCOL_VERSIONS", "")
    if str(VERIFIER_PROTOCOL_VERSION) not in versions.split(","):
        # Answer anyway: the host then names both versions in its error.
        log.warn("host does not speak this plugin's protocol version", host=versions, plugin=VERIFIER_PROTOCOL_VERSION)

    stop = threading.Event()

    def shutdown(request, context):
        log.debug("host asked the plugin to shut down")
        stop.set()
        return b""

    def stdio(request, context):
        while context.is_active() and not stop.wait(0.5):
            pass
        return
        yield  # a generator that sends nothing

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="verifier"))
    server.add_generic_rpc_handlers((
        _Verifier(impl, log).handler(),
        grpc.method_handlers_generic_handler("grpc.health.v1.Health", {"Check": _raw(_health_check)}),
        grpc.method_handlers_generic_handler("plugin.GRPCController", {"Shutdown": _raw(shutdown)}),
        grpc.method_handlers_generic_handler("plugin.GRPCStdio", {"StreamStdio": _raw(stdio, streaming=True)}),
    ))

    sockdir = tempfile.mkdtemp(prefix="tlspin-plugin-")
    sock = os.path.join(sockdir, "plugin.sock")
    client_pem = os.environ.get("PLUGIN_CLIENT_CERT", "")
    server_cert = ""
    if client_pem:
        key_pem, cert = _server_certificate()
        creds = grpc.ssl_server_credentials(
            [(key_pem, cert.public_bytes(serialization.Encoding.PEM))],
            root_certificates=client_pem.encode(),
            require_client_auth=True,
        )
        server.add_secure_port("unix:" + sock, creds)
        server_cert = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode().rstrip("=")
    else:
        log.warn("no PLUGIN_CLIENT_CERT: serving without TLS (the tlspin host always asks for AutoMTLS)")
        server.add_insecure_port("unix:" + sock)
    server.start()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    parent = os.getppid()

    sys.stdout.write(f"{CORE_PROTOCOL_VERSION}|{VERIFIER_PROTOCOL_VERSION}|unix|{sock}|grpc|{server_cert}\n")
    sys.stdout.flush()
    os.dup2(2, 1)  # from now on stdout is stderr
    log.debug("plugin serving", socket=sock, mtls=bool(client_pem))

    # Exit when asked to, or when the host is gone (on Linux the host also
    # has the kernel kill us: parent-death signal).
    while not stop.wait(0.25):
        if os.getppid() != parent:
            log.warn("host went away; exiting")
            break
    # Be quick: the host kills a plugin that has not exited half a second
    # after asking it to.
    server.stop(grace=0.1).wait()
    for remove in (os.unlink, os.rmdir):
        try:
            remove(sock if remove is os.unlink else sockdir)
        except OSError:
            pass
