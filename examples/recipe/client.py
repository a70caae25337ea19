"""The recipe's client (2016, Python 2), ported to Python 3 with as few
changes as possible: connect, and send only if md5(DER of the server's
certificate) equals the pin.

Changes: ssl.wrap_socket (removed in Python 3.12) became an SSLContext that,
like wrap_socket's default, checks nothing but the pin; host, port and pin
are arguments; the 2-second pause before sending is gone.
"""
import hashlib
import socket
import ssl
import sys

CERT = sys.argv[3]
sock = socket.socket()
sock.settimeout(2)
sock.connect((sys.argv[1], int(sys.argv[2])))
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
conn = ctx.wrap_socket(sock)
if hashlib.md5(conn.getpeercert(True)).hexdigest() != CERT:
    conn.close()
    print('CERT diferente do esperado, tentando me hackearrrrrrr')
    sys.exit(1)
else:
    print('200 OK')
    conn.write(b'CHUPA ESSA MANGA, WIRESHARK!1!!')
    print('enviado')
    conn.close()
