"""Unit tests of tlspin_sdk, run by sdk/python's Go test against the installed package."""

import asyncio
import unittest

import grpc

import tlspin_sdk as sdk
from tlspin_sdk import pb, testing


class Echo:
    """A verifier whose verdict is driven by the server name, to reach every path."""

    def describe(self):
        return pb.DescribeResponse(name="echo", version="1", options=[
            pb.Option(name="need", required=True),
            pb.Option(name="many", repeated=True),
            pb.Option(name="count"),
        ])

    def configure(self, options):
        self.need = options.string("need")
        self.many = options.check("many", lambda s: int(s, 16))
        self.count = options.integer("count", 7)
        return pb.ConfigureResponse(needs_chain=self.need == "chain")

    def verify(self, req):
        if req.server_name == "raise":
            raise RuntimeError("boom")
        if req.server_name == "long":
            raise ValueError("no pin for " + "n.example," * (7 << 10))  # quotes a peer's names
        if req.server_name == "exit":
            raise SystemExit(1)  # sys.exit() on input the author did not expect
        if req.server_name == "cancelled":
            raise asyncio.CancelledError()  # a BaseException, from asyncio code in verify
        if req.server_name == "interrupt":
            raise KeyboardInterrupt()
        if req.server_name == "surrogate":
            # A peer's name read with errors="surrogateescape": not UTF-8.
            raise ValueError("no pin for " + b"\xff.example".decode("utf-8", "surrogateescape"))
        if req.server_name == "none":
            return None
        if req.server_name == "nocache":
            return sdk.allow("fine", cache_for_millis=-1)  # meant: do not cache
        if req.server_name == "longreason":
            names = "n.example," * (200 << 10)  # 2 MiB of a peer's names, over the host's message cap
            return sdk.allow("names " + names, matched=names)
        if req.server_name == "allow":
            return sdk.allow("fine", matched=self.need, cache_for_millis=self.count)
        return sdk.reject("%d certificates, many=%s" % (len(req.peer_chain), self.many))


class OptionsTest(unittest.TestCase):
    def test_configure(self):
        cases = [
            ("missing required", {}, 'option "need": echo requires it'),
            ("unknown", {"need": "x", "other": "y"}, 'option "other": echo does not take this option '
                                                     "(it takes: count, many, need)"),
            ("repeated", {"need": ["a", "b"]}, 'option need="a,b": given more than once'),
            ("bad value via check", {"need": "x", "many": ["ff", "zz"]}, 'option many="zz": invalid literal'),
            ("not a number", {"need": "x", "count": "-1"}, 'option count="-1": want a whole number >= 0'),
            ("not ASCII digits", {"need": "x", "count": "\u0661\u0662"}, "want a whole number >= 0"),
            ("a superscript digit", {"need": "x", "count": "\u00b2"}, "want a whole number >= 0"),
        ]
        for name, opts, message in cases:
            with self.subTest(name), testing.Harness(Echo()) as h:
                with self.assertRaises(grpc.RpcError) as e:
                    h.configure(**opts)
                self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
                self.assertIn(message, e.exception.details())

    def test_values(self):
        v = Echo()
        with testing.start(v, need="chain", many=["0a", "ff"], count="3") as h:
            self.assertEqual((v.need, v.many, v.count), ("chain", [10, 255], 3))
            self.assertTrue(h.configure(need="chain").needs_chain)
            self.assertFalse(h.configure(need="leaf").needs_chain)
            self.assertEqual(v.count, 7)


class VerifyTest(unittest.TestCase):
    def test_verdicts(self):
        cert = testing.certificate("a")
        with testing.start(Echo(), need="n", many="1") as h:
            v = h.verify(cert, cert.der, server_name="x")
            self.assertEqual((v.allow, v.reason), (False, "2 certificates, many=[1]"))
            v = h.verify(server_name="allow")
            self.assertEqual((v.allow, v.reason, v.matched, v.cache_for_millis), (True, "fine", "n", 7))

    def test_long_texts_are_cut(self):
        # A verdict went out whole: over the host's 1 MiB message cap, it was
        # garbage to the host, which restarted the plugin.
        with testing.start(Echo(), need="n") as h:
            v = h.verify(server_name="longreason")
            self.assertTrue(v.allow)
            for text in (v.reason, v.matched):
                self.assertLessEqual(len(text.encode()), 4096)
                self.assertIn("[truncated: ", text)

    def test_errors_are_statuses(self):
        with testing.start(Echo(), need="n") as h:
            # A negative cache time went out as it was: the host took it for
            # a malformed answer and restarted the plugin, on every call.
            for name, message in [("raise", "verify: RuntimeError: boom"), ("none", "not a VerifyResponse"),
                                  ("nocache", "verify: ValueError: cache_for_millis -1 is negative")]:
                with self.subTest(name):
                    with self.assertRaises(grpc.RpcError) as e:
                        h.verify(server_name=name)
                    self.assertEqual(e.exception.code(), grpc.StatusCode.UNKNOWN)
                    self.assertIn(message, e.exception.details())
            self.assertTrue(h.verify(server_name="allow").allow, "the verifier stopped answering after an error")

    def test_every_failure_is_a_prompt_bounded_rejection(self):
        # An error quoting 70 KB of a peer's names went out whole, over
        # the host's header limit: the host saw a reset stream and
        # restarted the plugin. SystemExit escaped the handler: no answer
        # at all until the host's timeout, then a restart.
        # A BaseException (asyncio's CancelledError, KeyboardInterrupt)
        # escaped too, and an error whose text was not UTF-8 lost it.
        cases = [("long", "[truncated: "), ("exit", "verify: SystemExit: 1"), ("cancelled", "verify: CancelledError"),
                 ("interrupt", "verify: KeyboardInterrupt"), ("surrogate", "verify: ValueError: no pin for ?.example")]
        with testing.start(Echo(), need="n") as h:
            for name, message in cases:
                with self.subTest(name):
                    with self.assertRaises(grpc.RpcError) as e:
                        h._verify(testing.request(server_name=name), timeout=2)
                    self.assertEqual(e.exception.code(), grpc.StatusCode.UNKNOWN, e.exception.details()[:200])
                    self.assertIn(message, e.exception.details())
                    self.assertLessEqual(len(e.exception.details().encode()), 4096)
            self.assertTrue(h.verify(server_name="allow").allow, "the verifier stopped answering after an error")

    def test_describe(self):
        with testing.Harness(Echo()) as h:
            d = h.describe()
            self.assertEqual([o.name for o in d.options], ["need", "many", "count"])


class FirstUse:
    """A TOFU-like verifier: allows a new peer with commit=True and records
    it only in commit(), deciding again there."""

    def __init__(self):
        self.recorded = []

    def describe(self):
        return pb.DescribeResponse(name="firstuse", version="1")

    def configure(self, options):
        pass

    def decide(self, req):
        if not req.peer_chain:
            return sdk.reject("peer sent no certificate")
        return sdk.allow("first use of %s" % req.server_name, commit=True)

    def verify(self, req):
        return self.decide(req)

    def commit(self, req):
        if not self.decide(req).allow:
            raise ValueError("would not allow this peer now")
        if req.server_name == "wrong type":
            return "recorded"
        self.recorded.append((req.server_name, bytes(req.peer_chain[0])))


class CommitTest(unittest.TestCase):
    def test_commit_after_verify(self):
        cert = testing.certificate("a")
        v = FirstUse()
        with testing.start(v) as h:
            verdict = h.verify(cert, server_name="a.example")
            self.assertEqual((verdict.allow, verdict.commit), (True, True))
            self.assertEqual(v.recorded, [], "verify recorded the peer")
            h.commit(cert, server_name="a.example")
            self.assertEqual(v.recorded, [("a.example", cert.der)])

    def test_commit_decides_again(self):
        cert = testing.certificate("a")
        v = FirstUse()
        with testing.start(v) as h:
            for name, chain, message in [("rejected now", [], "commit: ValueError: would not allow"),
                                         ("wrong type", [cert], "not None or a CommitResponse")]:
                with self.subTest(name):
                    with self.assertRaises(grpc.RpcError) as e:
                        h.commit(*chain, server_name=name)
                    self.assertEqual(e.exception.code(), grpc.StatusCode.UNKNOWN)
                    self.assertIn(message, e.exception.details())
        self.assertEqual(v.recorded, [], "a failed commit recorded the peer")

    def test_without_commit_unimplemented(self):
        with testing.start(Echo(), need="n") as h:
            self.assertFalse(h.verify(server_name="allow").commit)
            with self.assertRaises(grpc.RpcError) as e:
                h.commit(testing.certificate("a"), server_name="allow")
            self.assertEqual(e.exception.code(), grpc.StatusCode.UNIMPLEMENTED)
            self.assertTrue(h.verify(server_name="allow").allow)


class OptionErrorTest(unittest.TestCase):
    def test_message(self):
        self.assertEqual(str(sdk.OptionError("pin", "abc", "too short")), 'option pin="abc": too short')
        self.assertEqual(str(sdk.OptionError("pin", "", "required")), 'option "pin": required')


if __name__ == "__main__":
    unittest.main()


class LoggerTest(unittest.TestCase):
    def test_lost_stderr_is_not_an_error(self):
        # A host that died took the read end of the plugin's stderr with
        # it: a log line then meets a broken pipe. Raised, it would end
        # serve() before it kills the plugin's children and exits, and the
        # interpreter would wait for gRPC's threads for ever.
        class Broken:
            def write(self, _):
                raise BrokenPipeError(32, "Broken pipe")

            def flush(self):
                raise BrokenPipeError(32, "Broken pipe")

        sdk.Logger("test", stream=Broken()).warn("host went away; exiting")
