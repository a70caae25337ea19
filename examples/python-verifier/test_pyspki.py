"""Unit tests of tlspin-verifier-pyspki with the SDK's harness (tlspin_sdk.testing).

Run: python3 -m unittest test_pyspki (with the SDK installed). The Go tests
next to it run this file, then the plugin through tlspin's host.
"""

import base64
import hashlib
import importlib.machinery
import importlib.util
import os
import unittest

import grpc

from tlspin_sdk import testing

_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tlspin-verifier-pyspki")
_loader = importlib.machinery.SourceFileLoader("pyspki", _path)
pyspki = importlib.util.module_from_spec(importlib.util.spec_from_loader("pyspki", _loader))
_loader.exec_module(pyspki)


def spki_pin(cert):
    """The curl form of cert's public key pin, computed independently of
    the plugin: the SPKI of an Ed25519 key is a fixed 12-byte header and
    the 32-byte key."""
    spki = bytes.fromhex("302a300506032b6570032100") + cert.key.public
    return "sha256//" + base64.b64encode(hashlib.sha256(spki).digest()).decode()


class PySPKITest(unittest.TestCase):
    def setUp(self):
        self.good = testing.certificate("api.example.com", ["api.example.com"])

    def test_verdicts(self):
        pin = spki_pin(self.good)
        renewed = testing.certificate("api.example.com", ["api.example.com"], key=self.good.key)
        other = testing.certificate("api.example.com", ["api.example.com"])
        cases = [
            ("pinned key", [self.good], "api.example.com", True, "is pinned"),
            ("renewed, same key", [renewed], "api.example.com", True, "is pinned"),
            ("other key", [other], "api.example.com", False, "to trust it: --verifier pyspki:pin=" + spki_pin(other)),
            ("wrong server name", [self.good], "api.example.org", False, "does not match '*.example.com'"),
            ("no certificate", [], "api.example.com", False, "no certificate"),
            ("garbage", [b"not DER"], "api.example.com", False, "does not parse"),
        ]
        with testing.start(pyspki.SPKIPin(), pin=pin, **{"server-name": "*.example.com"}) as h:
            for name, chain, server_name, allow, reason in cases:
                with self.subTest(name):
                    v = h.verify(*chain, server_name=server_name)
                    self.assertEqual(v.allow, allow, v.reason)
                    self.assertIn(reason, v.reason)
                    if allow:
                        self.assertEqual(v.matched, pin)

    def test_pin_forms(self):
        digest = hashlib.sha256(bytes.fromhex("302a300506032b6570032100") + self.good.key.public).digest()
        b64 = base64.b64encode(digest).decode()
        for form in ["sha256//" + b64, "sha256/" + b64, 'pin-sha256="%s"' % b64, b64, digest.hex(),
                     ":".join("%02X" % b for b in digest)]:
            with self.subTest(form), testing.start(pyspki.SPKIPin(), pin=form) as h:
                self.assertTrue(h.verify(self.good).allow)

    def test_okhttp_pin_whose_base64_starts_with_a_slash(self):
        # "sha256/" + "/..." reads as curl's "sha256//" + "...": one digest
        # in 64 (random keys made this test's pin forms fail now and then).
        digest = b"\xfc" + bytes(range(31))
        b64 = base64.b64encode(digest).decode()
        self.assertTrue(b64.startswith("/"))
        for form in ["sha256/" + b64, "sha256//" + b64]:
            with self.subTest(form):
                self.assertEqual(pyspki.parse_pin(form), digest)
        with self.assertRaises(ValueError):
            pyspki.parse_pin("sha256//" + b64[1:-2])

    def test_server_name_globs(self):
        for glob, name, allow in [("*.example.com", "api.example.com", True), ("api[0-9].example.com", "api7.example.com", True),
                                  ("api[!0-9].example.com", "api7.example.com", False), ("[]a]pi.example.com", "]pi.example.com", True)]:
            with self.subTest(glob), testing.start(pyspki.SPKIPin(), pin=spki_pin(self.good), **{"server-name": glob}) as h:
                self.assertEqual(h.verify(self.good, server_name=name).allow, allow)

    def test_bad_options(self):
        cases = [
            ("no pin", {}, 'option "pin": pyspki requires it'),
            ("bad pin", {"pin": "sha256//tooshort"}, 'option pin="sha256//tooshort": want the SHA-256'),
            ("unknown", {"pin": "ab" * 32, "colour": "red"}, 'option "colour": pyspki does not take this option'),
            ("unclosed [ in server-name", {"pin": "ab" * 32, "server-name": "[oops"},
             'option server-name="[oops": want a glob of server names'),
            ("empty server-name", {"pin": "ab" * 32, "server-name": ""}, 'option "server-name": want a glob'),
            ("space in server-name", {"pin": "ab" * 32, "server-name": "a .example.com"}, "without spaces"),
            ("repeated server-name", {"pin": "ab" * 32, "server-name": ["a", "b"]}, "given more than once"),
        ]
        for name, opts, message in cases:
            with self.subTest(name), testing.Harness(pyspki.SPKIPin()) as h:
                with self.assertRaises(grpc.RpcError) as e:
                    h.configure(**opts)
                self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
                self.assertIn(message, e.exception.details())


if __name__ == "__main__":
    unittest.main()
