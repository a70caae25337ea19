"""Serve a verifier over HashiCorp go-plugin's protocol, as tlspin's host expects.

What the host (go-plugin's Go client, AutoMTLS, gRPC) needs, and what
serve() does about it, in order:

  * The magic cookie TLSPIN_VERIFIER_PLUGIN=8f1c2e0b6d7a4f3e9b5c1a2d3e4f5a6b
    in the environment: without it the program was run by hand; say so on
    stderr and exit 1.
  * A unix socket in a directory only our user can enter (inside
    PLUGIN_UNIX_SOCKET_DIR). A Linux host sends no certificate: serve
    plain gRPC; the host asks the kernel (SO_PEERCRED) that the socket is
    ours, and other users cannot reach it.
  * AutoMTLS, only where the host sends its certificate as PEM in
    PLUGIN_CLIENT_CERT (not on Linux): serve TLS with a fresh
    self-signed certificate whose DNS SAN is "localhost" (the host checks
    that name; a certificate with the name only in its CN is refused),
    and require the host's certificate from every client.
  * Exactly one line on stdout, the handshake:
        1|1|unix|SOCKET|grpc|SERVER_CERT
    go-plugin's core protocol 1, the verifier protocol 1, the socket, gRPC,
    and the server certificate as unpadded base64 of its DER (empty
    without AutoMTLS). After it,
    stdout is pointed at stderr, so that a stray print() shows in the
    host's debug log instead of vanishing.
  * Services: tlspin.verifier.v1.Verifier; plugin.GRPCController/Shutdown
    (the host asks the plugin to exit, and kills it 0.5 s later);
    plugin.GRPCStdio/StreamStdio (kept open and silent, or the host logs a
    warning); grpc.health.v1.Health (go-plugin's Ping; tlspin's host never
    calls it, but other go-plugin tools do).
  * Logs: hclog JSON lines on stderr, which the host re-emits under the
    verifier's name at their level; TLSPIN_LOG_LEVEL sets the level.
  * Dying with the host: a Linux host sets the parent-death signal
    SIGKILL, which would leave the plugin's own children running; serve()
    swaps it for SIGTERM and, on SIGTERM or when its parent changes, kills
    its process group (children included) once the socket is removed.
"""

import atexit
import base64
import ctypes
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

from . import verifier_pb2 as pb
from . import x509
from .options import OptionError, Options, check_options

CORE_PROTOCOL_VERSION = 1
VERIFIER_PROTOCOL_VERSION = 1
MAGIC_COOKIE_KEY = "TLSPIN_VERIFIER_PLUGIN"
MAGIC_COOKIE_VALUE = "8f1c2e0b6d7a4f3e9b5c1a2d3e4f5a6b"
SERVICE = "tlspin.verifier.v1.Verifier"

# How long the host waits after Shutdown before it kills the plugin.
HOST_GRACE_SECONDS = 0.5


class Logger:
    """Writes hclog JSON lines to stderr at TLSPIN_LOG_LEVEL and above."""

    LEVELS = ["trace", "debug", "info", "warn", "error"]

    def __init__(self, name, stream=None):
        self.name = name
        self.stream = stream or sys.stderr
        level = os.environ.get("TLSPIN_LOG_LEVEL", "info").lower()
        self.min = self.LEVELS.index(level) if level in self.LEVELS else 2
        self.lock = threading.Lock()

    def log(self, level, message, **fields):
        if self.LEVELS.index(level) < self.min:
            return
        entry = {
            "@level": level,
            "@message": message,
            "@module": self.name,
            "@timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="microseconds"),
        }
        entry.update({k: str(v) for k, v in fields.items()})
        with self.lock:
            try:
                self.stream.write(json.dumps(entry) + "\n")
                self.stream.flush()
            except (OSError, ValueError):
                # The host is gone and its end of stderr with it: the line
                # is lost, but a log must never stop what follows it (the
                # exit of an orphaned plugin, above all).
                pass

    def trace(self, message, **fields):
        self.log("trace", message, **fields)

    def debug(self, message, **fields):
        self.log("debug", message, **fields)

    def info(self, message, **fields):
        self.log("info", message, **fields)

    def warn(self, message, **fields):
        self.log("warn", message, **fields)

    def error(self, message, **fields):
        self.log("error", message, **fields)


# MAX_TEXT_LEN is the most of a text the host keeps (verify.MaxTextLen).
MAX_TEXT_LEN = 4096


def truncate(s):
    """s cut so that, with a note of its length, it fits MAX_TEXT_LEN bytes
    of UTF-8, as the host would cut it. An error's text travels in a gRPC
    header, and one over the host's header limit (an error quoting a
    peer's names, say) resets the call, which the host takes for a broken
    plugin."""
    b = s.encode("utf-8", "replace")
    if len(b) <= MAX_TEXT_LEN:
        # Decoded again: a lone surrogate (a peer's bytes read with
        # surrogateescape) is now "?", which grpc can send.
        return b.decode("utf-8")
    note = "\u2026 [truncated: %d bytes in all]" % len(b)
    keep = MAX_TEXT_LEN - len(note.encode())
    return b[:keep].decode("utf-8", "ignore") + note


class Adapter:
    """Turns a verifier object into the gRPC service, with the SDK's rules:
    options are checked against describe() before configure(), an
    OptionError is INVALID_ARGUMENT, and any other exception is an error
    status (a rejection for verify), never a crash of the plugin."""

    def __init__(self, verifier, log):
        self.verifier = verifier
        self.log = log

    def _call(self, what, context, fn, *args):
        try:
            return fn(*args)
        except OptionError as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, truncate(str(e)))
        # A verifier's bug is a rejection, sys.exit() in it included, and
        # any BaseException (asyncio's CancelledError, KeyboardInterrupt):
        # grpc lets one escape its handler unanswered, and the host would
        # wait for its timeout, then restart the plugin. The plugin
        # answers at once and keeps serving.
        except BaseException as e:  # noqa: BLE001
            self.log.error("%s failed" % what, error=truncate(repr(e)), traceback=traceback.format_exc())
            context.abort(grpc.StatusCode.UNKNOWN, truncate("%s: %s: %s" % (what, type(e).__name__, e)))

    def describe(self, request, context):
        return self._call("describe", context, self.verifier.describe)

    def configure(self, request, context):
        options = {k: list(v.values) for k, v in request.options.items()}

        def run():
            check_options(self.verifier.describe(), options)
            return self.verifier.configure(Options(options)) or pb.ConfigureResponse()
        return self._call("configure", context, run)

    def verify(self, request, context):
        def run():
            verdict = self.verifier.verify(request)
            if not isinstance(verdict, pb.VerifyResponse):
                raise TypeError("verify returned %r, not a VerifyResponse" % (verdict,))
            if verdict.cache_for_millis < 0:
                # The host takes it for a malformed answer and restarts the
                # plugin; as the verifier's error it is only a rejection.
                raise ValueError("cache_for_millis %d is negative (0: do not cache)" % verdict.cache_for_millis)
            # Cut as the host would: over its 1 MiB message cap (a reason
            # quoting a peer's names), the answer is garbage to the host,
            # which restarts the plugin.
            verdict.reason, verdict.matched = truncate(verdict.reason), truncate(verdict.matched)
            return verdict
        return self._call("verify", context, run)

    def commit(self, request, context):
        def run():
            done = self.verifier.commit(request.request)
            if done is not None and not isinstance(done, pb.CommitResponse):
                raise TypeError("commit returned %r, not None or a CommitResponse" % (done,))
            return done or pb.CommitResponse()
        return self._call("commit", context, run)

    def handler(self):
        def unary(fn, req, resp):
            return grpc.unary_unary_rpc_method_handler(fn, request_deserializer=req.FromString,
                                                       response_serializer=resp.SerializeToString)
        methods = {
            "Describe": unary(self.describe, pb.DescribeRequest, pb.DescribeResponse),
            "Configure": unary(self.configure, pb.ConfigureRequest, pb.ConfigureResponse),
            "Verify": unary(self.verify, pb.VerifyRequest, pb.VerifyResponse),
        }
        # Commit only for a verifier that defines commit(); otherwise the
        # host gets UNIMPLEMENTED, which it reads as "nothing to commit".
        # WatchPolicy is left out: UNIMPLEMENTED, which the contract allows
        # for a verifier whose policy never changes.
        if callable(getattr(self.verifier, "commit", None)):
            methods["Commit"] = unary(self.commit, pb.CommitRequest, pb.CommitResponse)
        return grpc.method_handlers_generic_handler(SERVICE, methods)


def _raw(handler, streaming=False):
    """A method handler whose messages are raw bytes: go-plugin's own
    messages are too small to need generated code."""
    def ident(b):
        return b
    if streaming:
        return grpc.unary_stream_rpc_method_handler(handler, request_deserializer=ident, response_serializer=ident)
    return grpc.unary_unary_rpc_method_handler(handler, request_deserializer=ident, response_serializer=ident)


def _health_check(request, context):
    """grpc.health.v1.Health/Check: field 1 of the request is the service
    name; the answer is status (field 1) SERVING (1)."""
    service = ""
    if len(request) >= 2 and request[0] == 0x0A and request[1] < 0x80:
        service = request[2:2 + request[1]].decode("utf-8", "replace")
    if service not in ("", "plugin"):
        context.abort(grpc.StatusCode.NOT_FOUND, "unknown service %r" % service)
    return b"\x08\x01"


def _term_on_host_death():
    """A Linux host starts its plugin in a process group of its own, with
    the parent-death signal SIGKILL: the kernel kills the plugin when the
    host dies, but not the processes the plugin started. As tlspin's Go
    plugins do (core/plugproc), swap the signal for SIGTERM, which serve()
    catches to kill its whole group before it exits. Only in a plugin that
    leads its own group, and from the main thread, which the host forked."""
    if not sys.platform.startswith("linux") or os.getpgrp() != os.getpid():
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def serve(verifier):
    """Serves verifier as a tlspin verifier plugin until the host stops it.

    verifier has three methods:
      describe() -> pb.DescribeResponse (name, version, summary, options)
      configure(options: Options) -> pb.ConfigureResponse or None; called
        after the options were checked against describe(): raise
        OptionError (or let Options.check turn a ValueError into one) for
        a bad value
      verify(pb.VerifyRequest) -> pb.VerifyResponse; an exception is a
        rejection whose reason is the exception, and the plugin keeps
        running
    and, optionally, a fourth:
      commit(pb.VerifyRequest) -> None or pb.CommitResponse; called once
        the handshake succeeded, for a verify() that answered
        allow(..., commit=True), with the same request. Record the peer
        here, never in verify() (the host asks before the peer has proved
        it holds its key). Decide again: the request is all you get. An
        exception records nothing and is reported to the host as an error.
      Without commit() the host gets UNIMPLEMENTED: nothing to commit
      (an allow(..., commit=True) then fails: the host rejects the peer).
    It does not return when the host started it; started by hand it says so
    on stderr and exits 1.
    """
    name = verifier.describe().name
    if os.environ.get(MAGIC_COOKIE_KEY) != MAGIC_COOKIE_VALUE:
        sys.stderr.write("This is a tlspin verifier plugin; tlspin runs it: tlspin send --verifier %s ...\n" % name)
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
        Adapter(verifier, log).handler(),
        grpc.method_handlers_generic_handler("grpc.health.v1.Health", {"Check": _raw(_health_check)}),
        grpc.method_handlers_generic_handler("plugin.GRPCController", {"Shutdown": _raw(shutdown)}),
        grpc.method_handlers_generic_handler("plugin.GRPCStdio", {"StreamStdio": _raw(stdio, streaming=True)}),
    ))

    client_pem = os.environ.get("PLUGIN_CLIENT_CERT", "")
    # The socket goes in a directory only our user can enter: the host's
    # (PLUGIN_UNIX_SOCKET_DIR, 0700), or one of our own.
    sockdir = tempfile.mkdtemp(prefix="tlspin-plugin-", dir=os.environ.get("PLUGIN_UNIX_SOCKET_DIR") or None)
    sock = os.path.join(sockdir, "plugin.sock")
    announced = ""
    if client_pem:
        # AutoMTLS: the host (not on Linux) sent its certificate; only it
        # may connect, and it trusts the certificate we announce.
        cert = x509.certificate("localhost", ["localhost"], ca=True)
        creds = grpc.ssl_server_credentials([(cert.key.private_pem(), cert.pem)],
                                            root_certificates=client_pem.encode(), require_client_auth=True)
        server.add_secure_port("unix:" + sock, creds)
        announced = base64.b64encode(cert.der).decode().rstrip("=")
    else:
        # A Linux host checks with the kernel (SO_PEERCRED) that this
        # process serves the socket; other users cannot reach it
        # (docs/threat-model.md).
        server.add_insecure_port("unix:" + sock)
    server.start()

    # The signals received, appended to by on_signal. A handler runs in the
    # main thread between two bytecodes, possibly while that thread holds
    # stop's lock inside stop.wait() below: setting an Event there would
    # wait for that lock for ever (a host SIGKILLed under load left its
    # plugin so, with its children). So it takes no lock; the loop below
    # sees the signal within 0.25 s.
    signalled = []

    def on_signal(signum, _frame):
        signalled.append(signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    _term_on_host_death()
    parent = os.getppid()

    sys.stdout.write("%d|%d|unix|%s|grpc|%s\n" % (CORE_PROTOCOL_VERSION, VERIFIER_PROTOCOL_VERSION, sock, announced))
    sys.stdout.flush()
    os.dup2(2, 1)  # from now on stdout is stderr
    log.debug("plugin serving", socket=sock)

    # Exit when asked to, or when the host is gone (on Linux the host also
    # has the kernel kill us: parent-death signal).
    orphaned = False
    while not stop.wait(0.25):
        if signalled:
            break
        if os.getppid() != parent:
            orphaned = True
            log.warn("host went away; exiting")
            break
    server.stop(grace=HOST_GRACE_SECONDS / 5).wait()
    try:
        os.unlink(sock)
        os.rmdir(sockdir)
    except OSError:
        pass
    if (orphaned or signal.SIGTERM in signalled) and os.getpgrp() == os.getpid():
        # The host is gone, or someone asked us to go: the processes this
        # plugin started go too (the host, when it stops a plugin, kills
        # its group itself; a host that died cannot).
        os.killpg(os.getpgrp(), signal.SIGKILL)
    # Exit now, as the host asked. Returning would leave the interpreter
    # to join the server's worker threads, and one still in a verify()
    # that hangs (the host gave up on it) would keep the process alive
    # until the host kills it, 0.5 s later, warning that the plugin does
    # not serve plugin.GRPCController.
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(0)
