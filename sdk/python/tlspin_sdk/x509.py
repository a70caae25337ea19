"""Self-signed and issued X.509 certificates with Ed25519 keys, in pure Python.

The plugin needs one certificate per start (AutoMTLS: go-plugin's host
checks it against the DNS name "localhost"), and tests need certificates
with chosen names. Both are made here with the standard library alone, so
that the SDK depends on nothing but grpcio and protobuf.

The Ed25519 arithmetic follows RFC 8032. It is not constant-time: it signs
one certificate per plugin start with a fresh key, and the TLS handshakes
that use the key run inside grpcio's TLS library, not here.
"""

import base64
import datetime
import hashlib
import secrets

# Ed25519 over GF(p), RFC 8032 section 5.1.
_P = 2**255 - 19
_Q = 2**252 + 27742317777372353535851937790883648493  # order of the base point
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)


def _x_from_y(y, sign):
    xx = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P) % _P
    x = pow(xx, (_P + 3) // 8, _P)
    if (x * x - xx) % _P:
        x = x * _SQRT_M1 % _P
    if x & 1 != sign:
        x = _P - x
    return x


_BY = 4 * pow(5, _P - 2, _P) % _P
_BX = _x_from_y(_BY, 0)
_BASE = (_BX, _BY, 1, _BX * _BY % _P)  # extended coordinates X, Y, Z, T


def _add(p1, p2):
    a = (p1[1] - p1[0]) * (p2[1] - p2[0]) % _P
    b = (p1[1] + p1[0]) * (p2[1] + p2[0]) % _P
    c = 2 * p1[3] * p2[3] * _D % _P
    d = 2 * p1[2] * p2[2] % _P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _mul(k, point):
    acc = (0, 1, 1, 0)
    while k:
        if k & 1:
            acc = _add(acc, point)
        point = _add(point, point)
        k >>= 1
    return acc


def _encode_point(point):
    zi = pow(point[2], _P - 2, _P)
    x, y = point[0] * zi % _P, point[1] * zi % _P
    return (y | (x & 1) << 255).to_bytes(32, "little")


class Key:
    """An Ed25519 key: a 32-byte seed and its public key."""

    def __init__(self, seed=None):
        self.seed = seed if seed is not None else secrets.token_bytes(32)
        h = hashlib.sha512(self.seed).digest()
        a = int.from_bytes(h[:32], "little")
        a &= (1 << 254) - 8
        a |= 1 << 254
        self._scalar, self._prefix = a, h[32:]
        self.public = _encode_point(_mul(a, _BASE))

    def sign(self, message):
        r = int.from_bytes(hashlib.sha512(self._prefix + message).digest(), "little") % _Q
        big_r = _encode_point(_mul(r, _BASE))
        k = int.from_bytes(hashlib.sha512(big_r + self.public + message).digest(), "little") % _Q
        return big_r + ((r + k * self._scalar) % _Q).to_bytes(32, "little")

    def private_pem(self):
        """The key as PKCS#8 PEM (RFC 8410), as grpcio reads it."""
        der = _seq(_int(0), _seq(_ED25519), _tlv(0x04, _tlv(0x04, self.seed)))
        return _pem("PRIVATE KEY", der)


# DER, just what a certificate needs.

def _tlv(tag, body):
    n = len(body)
    if n < 0x80:
        size = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        size = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + size + body


def _seq(*parts):
    return _tlv(0x30, b"".join(parts))


def _int(n):
    return _tlv(0x02, n.to_bytes(n.bit_length() // 8 + 1, "big"))


def _oid(dotted):
    nums = [int(x) for x in dotted.split(".")]
    body = bytearray([40 * nums[0] + nums[1]])
    for n in nums[2:]:
        chunk = [n & 0x7F]
        n >>= 7
        while n:
            chunk.append(0x80 | (n & 0x7F))
            n >>= 7
        body += bytes(reversed(chunk))
    return _tlv(0x06, bytes(body))


def _time(t):
    if t.year < 2050:
        return _tlv(0x17, t.strftime("%y%m%d%H%M%SZ").encode())
    return _tlv(0x18, t.strftime("%Y%m%d%H%M%SZ").encode())


def _name(common_name):
    if not common_name:
        return _seq()
    return _seq(_tlv(0x31, _seq(_oid("2.5.4.3"), _tlv(0x0C, common_name.encode()))))


def _ext(oid, value, critical=False):
    return _seq(_oid(oid), _tlv(0x01, b"\xff") if critical else b"", _tlv(0x04, value))


def _pem(label, der):
    b = base64.b64encode(der).decode()
    lines = [b[i:i + 64] for i in range(0, len(b), 64)]
    return ("-----BEGIN %s-----\n%s\n-----END %s-----\n" % (label, "\n".join(lines), label)).encode()


_ED25519 = _oid("1.3.101.112")


class Certificate:
    """A certificate and its key. der and pem are the certificate."""

    def __init__(self, der, key, common_name):
        self.der, self.key, self.common_name = der, key, common_name
        self.pem = _pem("CERTIFICATE", der)


def certificate(common_name="", dns_names=(), issuer=None, ca=False, days=365, key=None, not_before=None):
    """Makes a certificate for key (a fresh Ed25519 key by default).

    common_name is the subject CN (none when empty) and dns_names its DNS
    subject alternative names (no extension when empty). issuer, a
    Certificate, signs it; without one it is self-signed. ca marks it as a
    CA (basic constraints, key usage certSign).
    """
    key = key or Key()
    start = not_before or datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=1)
    end = start + datetime.timedelta(days=days)
    signer = issuer.key if issuer else key
    issuer_name = issuer.common_name if issuer else common_name
    usage = 0x84 if ca else 0x80  # digitalSignature, and keyCertSign for a CA
    exts = [
        _ext("2.5.29.15", _tlv(0x03, bytes([2 if ca else 7, usage])), critical=True),
        _ext("2.5.29.37", _seq(_oid("1.3.6.1.5.5.7.3.1"), _oid("1.3.6.1.5.5.7.3.2"))),
    ]
    if ca:
        exts.append(_ext("2.5.29.19", _seq(_tlv(0x01, b"\xff")), critical=True))
    if dns_names:
        exts.append(_ext("2.5.29.17", _seq(*(_tlv(0x82, n.encode()) for n in dns_names))))
    tbs = _seq(
        _tlv(0xA0, _int(2)),
        _int(secrets.randbits(127) | 1 << 126),
        _seq(_ED25519),
        _name(issuer_name),
        _seq(_time(start), _time(end)),
        _name(common_name),
        _seq(_seq(_ED25519), _tlv(0x03, b"\x00" + key.public)),
        _tlv(0xA3, _seq(*exts)),
    )
    der = _seq(tbs, _seq(_ED25519), _tlv(0x03, b"\x00" + signer.sign(tbs)))
    return Certificate(der, key, common_name)
