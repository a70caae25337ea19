"""The recipe's server (2016, Python 2), ported to Python 3 with as few
changes as possible: accept one TLS connection, print what it receives.

Changes: ssl.wrap_socket (removed in Python 3.12) became an SSLContext with
the same settings; the busy non-blocking read loop became a blocking one;
the port and certificate file are arguments (default 8081 and cert.pem), and
the bound port is reported on stderr so that tests can use port 0.
"""
import socket
import ssl
import sys

port = int(sys.argv[1]) if len(sys.argv) > 1 else 8081
certfile = sys.argv[2] if len(sys.argv) > 2 else 'cert.pem'

sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
sock.bind(('127.0.0.1', port))
sock.listen(1)
print('listening on %d' % sock.getsockname()[1], file=sys.stderr, flush=True)
newsock, fromaddr = sock.accept()
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(certfile=certfile, keyfile=certfile)
conn = ctx.wrap_socket(newsock, server_side=True)
while True:
    buf = conn.read(512)
    if buf == b'':
        break
    print(buf.decode('utf-8', 'replace'), flush=True)
