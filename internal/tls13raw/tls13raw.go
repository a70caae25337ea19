// Package tls13raw, for tests, writes the client's side of a TLS 1.3
// connection (TLS_AES_128_GCM_SHA256) whose handshake crypto/tls did, from
// the traffic secret in its key log: crypto/tls sends no key update of its
// own, and a test playing a hostile client needs to.
package tls13raw

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"
)

// Content types of the records Writer seals.
const (
	Handshake       = 22
	ApplicationData = 23
)

// Writer seals records under the client's application traffic keys.
type Writer struct {
	secret []byte
	aead   cipher.AEAD
	iv     []byte
	seq    uint64
}

// FromKeyLog returns a Writer from a crypto/tls KeyLogWriter's output,
// taken once the handshake is done (the first application record is the
// Writer's).
func FromKeyLog(log string) (*Writer, error) {
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[0] == "CLIENT_TRAFFIC_SECRET_0" {
			s, err := hex.DecodeString(f[2])
			if err != nil {
				return nil, fmt.Errorf("tls13raw: %w", err)
			}
			w := &Writer{}
			if err := w.setSecret(s); err != nil {
				return nil, err
			}
			return w, nil
		}
	}
	return nil, errors.New("tls13raw: no CLIENT_TRAFFIC_SECRET_0 in the key log")
}

func expandLabel(secret []byte, label string, n int) ([]byte, error) {
	full := "tls13 " + label
	info := []byte{byte(n >> 8), byte(n), byte(len(full))}
	info = append(append(info, full...), 0)
	return hkdf.Expand(sha256.New, secret, string(info), n)
}

func (w *Writer) setSecret(secret []byte) error {
	key, err := expandLabel(secret, "key", 16)
	if err != nil {
		return fmt.Errorf("tls13raw: %w", err)
	}
	iv, err := expandLabel(secret, "iv", 12)
	if err != nil {
		return fmt.Errorf("tls13raw: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return fmt.Errorf("tls13raw: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return fmt.Errorf("tls13raw: %w", err)
	}
	w.secret, w.aead, w.iv, w.seq = secret, aead, iv, 0
	return nil
}

// Record seals content, of content type typ, as one record.
func (w *Writer) Record(content []byte, typ byte) []byte {
	inner := append(bytes.Clone(content), typ)
	hdr := []byte{ApplicationData, 3, 3, 0, 0}
	binary.BigEndian.PutUint16(hdr[3:], uint16(len(inner)+w.aead.Overhead()))
	nonce := bytes.Clone(w.iv)
	for i := range 8 {
		nonce[4+i] ^= byte(w.seq >> (56 - 8*i))
	}
	w.seq++
	return w.aead.Seal(hdr, nonce, inner, hdr)
}

// KeyUpdate seals a KeyUpdate asking the peer to update its keys too,
// then moves the Writer to its next keys.
func (w *Writer) KeyUpdate() ([]byte, error) {
	rec := w.Record([]byte{24, 0, 0, 1, 1}, Handshake)
	next, err := expandLabel(w.secret, "traffic upd", sha256.Size)
	if err != nil {
		return nil, fmt.Errorf("tls13raw: %w", err)
	}
	return rec, w.setSecret(next)
}

// Flood returns n key updates then a record of data: crypto/tls allows
// 16 records in a row that carry no data.
func (w *Writer) Flood(n int, data []byte) ([]byte, error) {
	var buf []byte
	for range n {
		ku, err := w.KeyUpdate()
		if err != nil {
			return nil, err
		}
		buf = append(buf, ku...)
	}
	return append(buf, w.Record(data, ApplicationData)...), nil
}

// FloodLines writes to c, up to n times, fifteen key updates that ask for
// an answer and then the line "x\n", until a write fails (a server that
// stopped reading, a closed connection). It returns how many it wrote,
// and an error only when a record could not be sealed.
func (w *Writer) FloodLines(c io.Writer, n int) (int, error) {
	for i := range n {
		buf, err := w.Flood(15, []byte("x\n"))
		if err != nil {
			return i, err
		}
		if _, err := c.Write(buf); err != nil {
			return i, nil
		}
	}
	return n, nil
}

// ErrCipherSuite is Dial's error when the server chose another cipher
// suite than the one Writer seals with: a test skips.
var ErrCipherSuite = errors.New("tls13raw: the server chose another cipher suite than TLS_AES_128_GCM_SHA256")

// Dial connects to addr over TCP with a receive buffer of a few kilobytes
// (so that a server's records to a client that does not read fill it
// soon), does a TLS 1.3 handshake with crypto/tls, and returns the socket
// and a Writer of the client's records on it.
func Dial(addr string) (net.Conn, *Writer, error) {
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4<<10) })
	}}
	raw, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("tls13raw: %w", err)
	}
	var keylog bytes.Buffer
	tc := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13, KeyLogWriter: &keylog})
	raw.SetDeadline(time.Now().Add(5 * time.Second))
	if err := tc.Handshake(); err != nil {
		raw.Close()
		return nil, nil, fmt.Errorf("tls13raw: handshake: %w", err)
	}
	raw.SetDeadline(time.Time{})
	if cs := tc.ConnectionState().CipherSuite; cs != tls.TLS_AES_128_GCM_SHA256 {
		raw.Close()
		return nil, nil, fmt.Errorf("%w (%s)", ErrCipherSuite, tls.CipherSuiteName(cs))
	}
	w, err := FromKeyLog(keylog.String())
	if err != nil {
		raw.Close()
		return nil, nil, err
	}
	return raw, w, nil
}

// SmallSendBuffers returns ln, giving each connection it accepts a send
// buffer of a few kilobytes: a server's writes to a client that does not
// read (and whose receive buffer is small too) then block within a few
// hundred records, where the kernel, not told a size, grows the buffer to
// megabytes, which under -race on a busy machine take longer to fill than
// a test waits.
func SmallSendBuffers(ln net.Listener) net.Listener { return smallSend{ln} }

type smallSend struct{ net.Listener }

func (l smallSend) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(4 << 10)
	}
	return c, err
}
