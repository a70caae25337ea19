package direct

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/verify"
)

func TestCodecRoundTrip(t *testing.T) {
	requests := []*request{
		{Method: methodDescribe},
		{Method: methodConfigure, Timeout: 5 * time.Second, Options: map[string][]string{"pin": {"a", "b"}, "file": {"/x"}, "empty": {}}},
		{Method: methodVerify, Timeout: time.Millisecond, Peer: &verify.Request{PeerChain: [][]byte{[]byte("leaf"), {}, []byte("ca")}, ServerName: "example.com",
			Side: 1, RemoteAddr: "[::1]:443", TLSVersion: 0x0304, CipherSuite: 0xffff, ALPN: "h2", DidResume: true, NoCommit: true}},
		{Method: methodVerify, Peer: &verify.Request{PeerChain: [][]byte{[]byte("leaf alone")}, ServerName: "a.example"}},
		{Method: methodCommit, Peer: &verify.Request{}},
		{Method: methodWatch},
		{Method: methodShutdown, Timeout: -1},
	}
	for _, want := range requests {
		var got request
		if err := got.unmarshal(want.marshal()); err != nil || !reflect.DeepEqual(&got, want) {
			t.Errorf("%s: decoded %+v, %v; want %+v", want.Method, got, err, want)
		}
	}
	responses := []*response{
		{},
		{Error: &remoteError{Message: "bad pin", BadOption: true}},
		{Description: &description{Name: "x", Version: "1", Summary: "s", Options: []option{{Name: "pin", Description: "d", Required: true, Repeated: true}, {Name: "o"}}, Notifies: true}},
		{Description: &description{Name: "bare"}},
		{Configured: &configured{NeedsChain: true}},
		{Verdict: &verdict{Allow: true, Reason: "r", Matched: "m", CacheFor: time.Hour, Commit: true}},
		{Verdict: &verdict{CacheFor: -time.Second}}, // for CleanVerdict to refuse, not the codec
		{PolicyChange: &policyChange{Epoch: 1 << 60, Reason: "reloaded"}},
	}
	for i, want := range responses {
		var got response
		if err := got.unmarshal(want.marshal()); err != nil || !reflect.DeepEqual(&got, want) {
			t.Errorf("answer %d: decoded %+v, %v; want %+v", i, got, err, want)
		}
	}
}

func TestCodecRefuses(t *testing.T) {
	verdict := (&response{Verdict: &verdict{Allow: true, Reason: "pinned"}}).marshal()
	req := (&request{Method: methodVerify, Peer: &verify.Request{PeerChain: [][]byte{[]byte("leaf")}, TLSVersion: 0x0304}}).marshal()
	tests := []struct {
		name    string
		request bool
		body    []byte
		says    string
	}{
		{"empty answer", false, nil, "truncated"},
		{"unknown kind", false, []byte{kindPolicyChange + 1}, "unknown answer kind 6"},
		{"truncated answer", false, verdict[:len(verdict)-1], "truncated"},
		{"trailing bytes", false, append(verdict[:len(verdict):len(verdict)], 0, 0), "2 trailing bytes"},
		{"boolean 2", false, []byte{kindConfigured, 2}, "boolean byte 2"},
		{"length past the end", false, []byte{kindError, 100, 'x'}, "length 100 exceeds the 1 bytes left"},
		{"count past the end", false, []byte{kindDescription, 0, 0, 0, 50}, "count 50 of items of 4 bytes or more exceeds the 0 bytes left"},
		// Four options take 16 bytes at least: refused before a slice of
		// four is made for them.
		{"count of options past the end", false, append([]byte{kindDescription, 0, 0, 0, 4}, make([]byte, 12)...), "count 4 of items of 4 bytes or more exceeds the 12 bytes left"},
		{"count of options that fit", false, append([]byte{kindDescription, 0, 0, 0, 4}, make([]byte, 16)...), "truncated"}, // no Notifies byte
		{"overlong varint", false, append([]byte{kindPolicyChange}, []byte(strings.Repeat("\xff", 11))...), "overlong varint"},
		{"method 0", true, []byte{0, 0, 0, 0}, "unknown method 0"},
		{"method 7", true, []byte{7, 0, 0, 0}, "unknown method 7"},
		{"empty request", true, nil, "truncated"},
		{"truncated request", true, req[:len(req)-2], "truncated"},
		{"TLS version over 16 bits", true, []byte{3, 0, 0, 1, 0, 0, 0, 0, 0x80, 0x80, 0x04, 0, 0, 0}, "65536 exceeds 16 bits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.request {
				err = new(request).unmarshal(tt.body)
			} else {
				err = new(response).unmarshal(tt.body)
			}
			if err == nil || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("decode %x = %v; want an error saying %q", tt.body, err, tt.says)
			}
		})
	}
}

// FuzzDecode: no input makes a decoder panic or allocate beyond the
// input's size, and whatever decodes encodes back to the same message.
func FuzzDecode(f *testing.F) {
	f.Add((&request{Method: methodConfigure, Options: map[string][]string{"pin": {"x"}}}).marshal())
	f.Add((&request{Method: methodVerify, Peer: &verify.Request{PeerChain: [][]byte{[]byte("leaf")}, ServerName: "s"}}).marshal())
	f.Add((&response{Description: &description{Name: "n", Options: []option{{Name: "o"}}}}).marshal())
	f.Add((&response{Verdict: &verdict{Allow: true, Reason: "r"}}).marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		var req request
		if req.unmarshal(b) == nil {
			var again request
			if err := again.unmarshal(req.marshal()); err != nil || !reflect.DeepEqual(again, req) {
				t.Fatalf("request %+v re-decoded as %+v, %v", req, again, err)
			}
		}
		var resp response
		if resp.unmarshal(b) == nil {
			var again response
			if err := again.unmarshal(resp.marshal()); err != nil || !reflect.DeepEqual(again, resp) {
				t.Fatalf("answer %+v re-decoded as %+v, %v", resp, again, err)
			}
		}
	})
}
