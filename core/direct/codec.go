package direct

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tlspin/tlspin/core/verify"
)

// A frame's body is a compact binary encoding of a request or an answer,
// not JSON: encoding/json cost a plugin about 20 µs of each uncached
// Verify's 83 (the leaf went as base64 text), and building its codecs by
// reflection about 0.5 ms of a launch's first call.
//
// Layout: the fields in a fixed order; integers as varints
// (encoding/binary); strings and byte strings as a uvarint length, then
// the bytes; booleans as one byte, 0 or 1; a uvarint count before
// repeated fields. A request starts with its method's code, an answer
// with its kind. A decoder refuses a length or count beyond what is left
// (so nothing is allocated for a lie), any other boolean byte, an unknown
// method or kind, a uint16 out of range and trailing bytes.

// methods are the methods by their code, a request's first byte.
var methods = [...]string{1: methodDescribe, 2: methodConfigure, 3: methodVerify, 4: methodCommit, 5: methodWatch, 6: methodShutdown}

// Answer kinds, in an answer's first byte.
const (
	kindNone byte = iota // the answer to commit, watch and shutdown
	kindError
	kindDescription
	kindConfigured
	kindVerdict
	kindPolicyChange
)

// errMalformed says why a body could not be decoded.
var errMalformed = errors.New("malformed frame")

// encoder appends fields to b.
type encoder struct{ b []byte }

func (e *encoder) byte(v byte)              { e.b = append(e.b, v) }
func (e *encoder) uvarint(v uint64)         { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) varint(v int64)           { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) bytes(v []byte)           { e.uvarint(uint64(len(v))); e.b = append(e.b, v...) }
func (e *encoder) string(v string)          { e.uvarint(uint64(len(v))); e.b = append(e.b, v...) }
func (e *encoder) duration(v time.Duration) { e.varint(int64(v)) }

func (e *encoder) bool(v bool) {
	if v {
		e.byte(1)
	} else {
		e.byte(0)
	}
}

// decoder reads fields from b; the first error sticks and later reads
// return zero values.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, a ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{errMalformed}, a...)...)
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.fail("truncated")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	return varintLen(d, v, n)
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	return varintLen(d, v, n)
}

// varintLen consumes a varint of n bytes, as encoding/binary reports it
// (0 or less: truncated or overlong), and returns v, or zero for a bad one.
func varintLen[T int64 | uint64](d *decoder, v T, n int) T {
	if n <= 0 {
		d.fail("truncated or overlong varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a count of items that take at least size bytes each (1 or
// more), so that what is allocated for them is bounded by what is left of
// the frame: a lie of a million four-byte options in a 1 MiB frame would
// otherwise cost 40 MB before the first was found missing.
func (d *decoder) count(size int) int {
	n := d.uvarint()
	if n > uint64(len(d.b)/size) {
		d.fail("count %d of items of %d bytes or more exceeds the %d bytes left", n, size, len(d.b))
		return 0
	}
	return int(n)
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail("length %d exceeds the %d bytes left", n, len(d.b))
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string { return string(d.bytes()) }

func (d *decoder) bool() bool {
	switch b := d.byte(); b {
	case 0, 1:
		return b == 1
	default:
		d.fail("boolean byte %d", b)
		return false
	}
}

func (d *decoder) uint16() uint16 {
	v := d.uvarint()
	if v > 0xffff {
		d.fail("%d exceeds 16 bits", v)
	}
	return uint16(v)
}

func (d *decoder) duration() time.Duration { return time.Duration(d.varint()) }

// end is the decoder's error, or one for trailing bytes.
func (d *decoder) end() error {
	if d.err == nil && len(d.b) > 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	return d.err
}

// marshal encodes r.
func (r *request) marshal() []byte { return r.frame(nil)[frameHeader:] }

// frame appends r to b as one frame, its header first, and returns the
// extended buffer: the host encodes each request into its connection's
// buffer, in place, which cost two allocations and a copy of the leaf per
// call before (half of the bytes a Verify allocated). An unknown method
// is a bug of this package.
func (r *request) frame(b []byte) []byte {
	code := slices.Index(methods[:], r.Method)
	if code < 1 {
		panic("direct: unknown method " + r.Method)
	}
	e, start := startFrame(b, r.size())
	e.byte(byte(code))
	e.duration(r.Timeout)
	keys := make([]string, 0, len(r.Options))
	for k := range r.Options {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	e.uvarint(uint64(len(keys)))
	for _, k := range keys {
		e.string(k)
		e.uvarint(uint64(len(r.Options[k])))
		for _, v := range r.Options[k] {
			e.string(v)
		}
	}
	e.bool(r.Peer != nil)
	if p := r.Peer; p != nil {
		e.uvarint(uint64(len(p.PeerChain)))
		for _, c := range p.PeerChain {
			e.bytes(c)
		}
		e.string(p.ServerName)
		e.varint(int64(p.Side))
		e.string(p.RemoteAddr)
		e.uvarint(uint64(p.TLSVersion))
		e.uvarint(uint64(p.CipherSuite))
		e.string(p.ALPN)
		e.bool(p.DidResume)
		e.bool(p.NoCommit)
	}
	return e.endFrame(start, r.ID)
}

// size is about the length of r's body, so that frame allocates once:
// what its byte strings and texts hold, and room for the rest.
func (r *request) size() int {
	n := 32
	for k, vs := range r.Options {
		n += len(k) + 4
		for _, v := range vs {
			n += len(v) + 4
		}
	}
	if p := r.Peer; p != nil {
		for _, c := range p.PeerChain {
			n += len(c) + 4
		}
		n += len(p.ServerName) + len(p.RemoteAddr) + len(p.ALPN) + 16
	}
	return n
}

// frameHeader is what comes before a frame's body: its length, then the
// id of the request (request.ID), each four bytes, big-endian.
const frameHeader = 8

// startFrame returns an encoder that appends to b, with room for a
// frame's length and about size bytes more, and where the frame starts.
func startFrame(b []byte, size int) (*encoder, int) {
	b = slices.Grow(b, frameHeader+size)
	start := len(b)
	return &encoder{b: append(b, make([]byte, frameHeader)...)}, start
}

// endFrame writes the header of the frame that starts at start, with
// id, and returns the buffer.
func (e *encoder) endFrame(start int, id uint32) []byte {
	binary.BigEndian.PutUint32(e.b[start:], uint32(len(e.b)-start-frameHeader))
	binary.BigEndian.PutUint32(e.b[start+4:], id)
	return e.b
}

// unmarshal decodes b, a frame's body, into r, but for its ID.
func (r *request) unmarshal(b []byte) error {
	d := &decoder{b: b}
	*r = request{}
	if code := d.byte(); int(code) < len(methods) && methods[code] != "" {
		r.Method = methods[code]
	} else if d.err == nil {
		d.fail("unknown method %d", code)
	}
	r.Timeout = d.duration()
	if n := d.count(2); n > 0 { // a key's length, its values' count
		r.Options = make(map[string][]string, n)
		for range n {
			k := d.string()
			vs := make([]string, d.count(1))
			for i := range vs {
				vs[i] = d.string()
			}
			r.Options[k] = vs
		}
	}
	if d.bool() {
		// A peer and a chain of one certificate, the leaf the host sends
		// unless the verifier asked for the chain, in one allocation.
		p := &struct {
			verify.Request
			leaf [1][]byte
		}{}
		switch n := d.count(1); n {
		case 0:
		case 1:
			p.PeerChain = p.leaf[:]
		default:
			p.PeerChain = make([][]byte, n)
		}
		for i := range p.PeerChain {
			p.PeerChain[i] = d.bytes()
		}
		p.ServerName = d.string()
		p.Side = verify.Side(d.varint())
		p.RemoteAddr = d.string()
		p.TLSVersion = d.uint16()
		p.CipherSuite = d.uint16()
		p.ALPN = d.string()
		p.DidResume = d.bool()
		p.NoCommit = d.bool()
		r.Peer = &p.Request
	}
	return d.end()
}

// marshal encodes r.
func (r *response) marshal() []byte { return r.frame(nil)[frameHeader:] }

// frame appends r to b as one frame, its header first: the first of its
// results that is set.
func (r *response) frame(b []byte) []byte {
	e, start := startFrame(b, 64)
	switch {
	case r.Error != nil:
		e.byte(kindError)
		e.string(r.Error.Message)
		e.bool(r.Error.BadOption)
	case r.Description != nil:
		w := r.Description
		e.byte(kindDescription)
		e.string(w.Name)
		e.string(w.Version)
		e.string(w.Summary)
		e.uvarint(uint64(len(w.Options)))
		for _, o := range w.Options {
			e.string(o.Name)
			e.string(o.Description)
			e.bool(o.Required)
			e.bool(o.Repeated)
		}
		e.bool(w.Notifies)
	case r.Configured != nil:
		e.byte(kindConfigured)
		e.bool(r.Configured.NeedsChain)
	case r.Verdict != nil:
		v := r.Verdict
		e.byte(kindVerdict)
		e.bool(v.Allow)
		e.string(v.Reason)
		e.string(v.Matched)
		e.duration(v.CacheFor)
		e.bool(v.Commit)
	case r.PolicyChange != nil:
		e.byte(kindPolicyChange)
		e.uvarint(r.PolicyChange.Epoch)
		e.string(r.PolicyChange.Reason)
	default:
		e.byte(kindNone)
	}
	return e.endFrame(start, r.ID)
}

// unmarshal decodes b, a frame's body, into r, but for its ID.
func (r *response) unmarshal(b []byte) error {
	d := &decoder{b: b}
	*r = response{}
	switch kind := d.byte(); kind {
	case kindNone:
	case kindError:
		r.Error = &remoteError{Message: d.string(), BadOption: d.bool()}
	case kindDescription:
		w := &description{Name: d.string(), Version: d.string(), Summary: d.string()}
		if n := d.count(4); n > 0 { // two lengths, two booleans
			w.Options = make([]option, n)
			for i := range w.Options {
				w.Options[i] = option{Name: d.string(), Description: d.string(), Required: d.bool(), Repeated: d.bool()}
			}
		}
		w.Notifies = d.bool()
		r.Description = w
	case kindConfigured:
		r.Configured = &configured{NeedsChain: d.bool()}
	case kindVerdict:
		r.Verdict = &verdict{Allow: d.bool(), Reason: d.string(), Matched: d.string(), CacheFor: d.duration(), Commit: d.bool()}
	case kindPolicyChange:
		r.PolicyChange = &policyChange{Epoch: d.uvarint(), Reason: d.string()}
	default:
		if d.err == nil {
			d.fail("unknown answer kind %d", kind)
		}
	}
	return d.end()
}
