"""A TLS server of the kind send meets, with Python's ssl (OpenSSL): it
serves connections one at a time until killed, reporting its port on
stderr and, for each connection, a line on stdout.

  reply   recv once, sendall an answer, close: a request/response server
          that never reads again (with our close_notify unread, its
          kernel resets the connection instead of closing it)
  toeof   read until EOF (close_notify or FIN), printing what it read, and
          close: the recipe's server, which answers nothing
"""
import socket
import ssl
import sys

mode, certfile = sys.argv[1], sys.argv[2]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(certfile)
sock = socket.socket()
sock.bind(('127.0.0.1', 0))
sock.listen(16)
print('listening on %d' % sock.getsockname()[1], file=sys.stderr, flush=True)
while True:
    raw, _ = sock.accept()
    raw.settimeout(10)
    try:
        conn = ctx.wrap_socket(raw, server_side=True)
        if mode == 'reply':
            data = conn.recv(4096)
            conn.sendall(b'ack:' + data)
            print('got %r' % data, flush=True)
        else:
            got = b''
            while True:
                buf = conn.read(512)
                if buf == b'':
                    break
                got += buf
            print('got %r, then EOF' % got, flush=True)
        conn.close()
    except Exception as e:
        print('error: %s' % e, flush=True)
        raw.close()
