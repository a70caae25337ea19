package pin_test

import (
	"bytes"
	"testing"

	"github.com/tlspin/tlspin/core/pin"
)

// FuzzParseList checks that the pin parser never panics, that what it
// accepts has the algorithm's size, and that every accepted pin prints and
// parses back to itself in every format that applies.
func FuzzParseList(f *testing.F) {
	seeds := []struct {
		algo string
		in   string
	}{
		{"md5", "b8e20f56ccbb6aceb0f19860e112407a"},
		{"md5", "md5 Fingerprint=B8:E2:0F:56:CC:BB:6A:CE:B0:F1:98:60:E1:12:40:7A"},
		{"sha1", "sha1 Fingerprint=45:0C:92:E3:77:70:DE:1C:D1:51:EB:61:4A:1E:6A:60:14:E6:99:2B"},
		{"sha256", "SHA256 Fingerprint=55:22:0F:53:DC:65:92:73:4E:C3:F9:12:33:BE:95:0E:D0:BE:7A:6A:3B:32:C3:AE:03:30:02:2D:30:8A:8E:D3"},
		{"sha256", "sha256:55220f53dc6592734ec3f91233be950ed0be7a6a3b32c3ae0330022d308a8ed3"},
		{"spki", "sha256//YhKJKSzoTt2b5FP18fvpHo7fJYqQCjAa3HWY3tvRMwE=;sha256//sRHdihwgkaib1P1gxX8HFszlD+7/gTfNvuAybgLPNis="},
		{"spki", `pin-sha256="YhKJKSzoTt2b5FP18fvpHo7fJYqQCjAa3HWY3tvRMwE="; max-age=5184000; includeSubDomains`},
		{"spki", "Public-Key-Pins: pin-sha256=\"YhKJKSzoTt2b5FP18fvpHo7fJYqQCjAa3HWY3tvRMwE=\""},
		{"spki", "sha256/YhKJKSzoTt2b5FP18fvpHo7fJYqQCjAa3HWY3tvRMwE="},
		{"spki", "sha256:YhKJKSzoTt2b5FP18fvpHo7fJYqQCjAa3HWY3tvRMwE"},
		{"spki", "YhKJKSzoTt2b5FP18fvpHo7fJYqQCjAa3HWY3tvRMwE"},
		{"md5", "ȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺ Fingerprint="},
		{"spki", "sha1/AAAAAAAAAAAAAAAAAAAAAAAAAAA="},
		{"sha256", ";;"},
	}
	for _, s := range seeds {
		f.Add(s.algo, s.in)
	}
	f.Fuzz(func(t *testing.T, algoName, in string) {
		algo, err := pin.ParseAlgo(algoName)
		if err != nil {
			return
		}
		ps, err := pin.ParseList(algo, in)
		if err != nil {
			return
		}
		if len(ps) == 0 {
			t.Fatalf("ParseList(%s, %q): no pins and no error", algo, in)
		}
		_ = pin.Detect(in)
		for _, p := range ps {
			if p.Algo != algo || len(p.Digest) != algo.Size() {
				t.Fatalf("ParseList(%s, %q) = %s pin of %d bytes", algo, in, p.Algo, len(p.Digest))
			}
			for _, fm := range pin.Formats {
				s, err := pin.Print(algo, p.Digest, fm)
				if err != nil {
					continue
				}
				q, err := pin.Parse(algo, s)
				if err != nil || !bytes.Equal(q.Digest, p.Digest) {
					t.Fatalf("round trip of %x through %s (%q): %x, %v", p.Digest, fm, s, q.Digest, err)
				}
			}
		}
	})
}
