package compare_test

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tlspin/tlspin/core/certs"
	"github.com/tlspin/tlspin/internal/compare"
)

func scenarios(t *testing.T, r *compare.Reference) map[string]compare.Scenario {
	t.Helper()
	ss, _, err := compare.Scenarios(r)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]compare.Scenario{}
	for _, s := range ss {
		m[s.Name] = s
	}
	return m
}

func verifies(ca *x509.Certificate, chain [][]byte, name string) bool {
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	inter := x509.NewCertPool()
	for _, d := range chain[1:] {
		c, _ := x509.ParseCertificate(d)
		inter.AddCert(c)
	}
	leaf, _ := x509.ParseCertificate(chain[0])
	_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: name})
	return err == nil
}

func TestScenarios(t *testing.T) {
	ref, err := compare.NewReference(certs.ECDSA)
	if err != nil {
		t.Fatal(err)
	}
	rl := ref.Certificate()
	ss := scenarios(t, ref)
	tests := []struct {
		name                     string
		sameKey, selfSigned, exp bool
		chainVerifies            bool
	}{
		{compare.Same, true, false, false, true},
		{compare.Renewed, true, false, false, true},
		{compare.Rekeyed, false, false, false, true},
		{compare.OtherCA, true, false, false, false},
		{compare.Lookalike, false, true, false, false},
		{compare.ForgedChain, false, false, false, false},
		// The genuine public chain, byte for byte: only the key the
		// server signs the handshake with is not the certificate's.
		{compare.StolenCertNoKey, true, false, false, true},
		{compare.Expired, true, false, true, false},
		{compare.IntermediateRotated, true, false, false, true},
	}
	if len(ss) != len(tests) {
		t.Fatalf("got %d scenarios, want %d", len(ss), len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ok := ss[tt.name]
			if !ok {
				t.Fatalf("no scenario %q", tt.name)
			}
			c := s.Cert.Leaf
			if c.Subject.String() != rl.Subject.String() || strings.Join(c.DNSNames, ",") != strings.Join(rl.DNSNames, ",") || len(c.IPAddresses) != len(rl.IPAddresses) {
				t.Errorf("names changed: %q %v", c.Subject, c.DNSNames)
			}
			if got := bytes.Equal(c.RawSubjectPublicKeyInfo, rl.RawSubjectPublicKeyInfo); got != tt.sameKey {
				t.Errorf("same key = %v, want %v", got, tt.sameKey)
			}
			if tt.name != compare.Same && tt.name != compare.StolenCertNoKey && bytes.Equal(c.Raw, rl.Raw) {
				t.Error("certificate is the reference itself")
			}
			if got := bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil; got != tt.selfSigned {
				t.Errorf("self-signed = %v, want %v", got, tt.selfSigned)
			}
			if got := time.Now().After(c.NotAfter); got != tt.exp {
				t.Errorf("expired = %v, want %v", got, tt.exp)
			}
			if got := verifies(ref.CA, s.Cert.Certificate, ref.ServerName); got != tt.chainVerifies {
				t.Errorf("chains to the reference CA = %v, want %v", got, tt.chainVerifies)
			}
		})
	}
	forged := ss[compare.ForgedChain].Cert.Certificate
	if len(forged) < 2 || !slices.ContainsFunc(forged[1:], func(der []byte) bool { return bytes.Equal(der, ref.CA.Raw) }) {
		t.Error("forged-chain does not carry the reference CA after its leaf")
	}
	// A forged chain claims the real issuer (its name and key id), which
	// the attacker cannot sign for: only the issuer's signature, not a
	// name, can tell it from the reference's chain.
	inter, err := x509.ParseCertificate(ref.Leaf.Certificate[1])
	if err != nil {
		t.Fatal(err)
	}
	fl := ss[compare.ForgedChain].Cert.Leaf
	if !bytes.Equal(fl.RawIssuer, inter.RawSubject) || !bytes.Equal(fl.AuthorityKeyId, inter.SubjectKeyId) {
		t.Errorf("forged-chain leaf claims issuer %q (key id %x), want the real intermediate %q (%x)", fl.Issuer, fl.AuthorityKeyId, inter.Subject, inter.SubjectKeyId)
	}
	if fl.CheckSignatureFrom(inter) == nil {
		t.Error("forged-chain leaf is really signed by the intermediate: not a forgery")
	}
	if !bytes.Equal(forged[0], fl.Raw) || fl.CheckSignature(fl.SignatureAlgorithm, fl.RawTBSCertificate, fl.Signature) != nil {
		t.Error("forged-chain leaf is not signed by the attacker's own key")
	}
	// The stolen certificate is the reference's chain as sent, with a key
	// that is not the certificate's: the server cannot prove it holds
	// the pinned key.
	stolen := ss[compare.StolenCertNoKey].Cert
	if !slices.EqualFunc(stolen.Certificate, ref.Leaf.Certificate, bytes.Equal) {
		t.Error("stolen-cert-no-key does not send the reference's chain as it is")
	}
	if sk, ok := stolen.PrivateKey.(interface{ Public() crypto.PublicKey }); !ok {
		t.Errorf("stolen-cert-no-key key %T has no public key", stolen.PrivateKey)
	} else if pub, ok := sk.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || pub.Equal(rl.PublicKey) {
		t.Error("stolen-cert-no-key signs with the certificate's own key")
	}
	rot := ss[compare.IntermediateRotated].Cert.Certificate
	if len(rot) != 2 || bytes.Equal(rot[1], ref.Leaf.Certificate[1]) {
		t.Error("intermediate-rotated does not carry a new intermediate")
	}
}

func writePEM(t *testing.T, path string, parts ...[]byte) {
	t.Helper()
	if err := os.WriteFile(path, bytes.Join(parts, nil), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestLoadReference(t *testing.T) {
	dir := t.TempDir()
	// A self-signed reference, the recipe's way: key and certificate in one file.
	key, crt, err := certs.SelfSigned(certs.Template{Type: certs.ECDSA, CommonName: "example.test", SANs: []string{"example.test"}})
	if err != nil {
		t.Fatal(err)
	}
	kp, _ := certs.EncodeKey(key)
	self := filepath.Join(dir, "self.pem")
	writePEM(t, self, kp, certs.EncodeCert(crt))
	certOnly := filepath.Join(dir, "certonly.pem")
	writePEM(t, certOnly, certs.EncodeCert(crt))

	// A CA-issued reference and its CA.
	_, caFile, lk, leaf := issuedByTestCA(t, dir)
	issued := filepath.Join(dir, "issued.pem")
	writePEM(t, issued, lk, certs.EncodeCert(leaf))

	// What else a user may pass as --ref-ca: a CA that did not issue
	// the reference (another name; the same name, another key), a chain,
	// a key or a certificate alone, an empty file.
	caFileOf := func(name string) (*x509.Certificate, string) {
		k, c, err := certs.SelfSigned(certs.Template{Type: certs.ECDSA, CommonName: name, IsCA: true})
		if err != nil {
			t.Fatal(err)
		}
		kp, _ := certs.EncodeKey(k)
		f := filepath.Join(dir, strings.ReplaceAll(name, " ", "")+".pem")
		writePEM(t, f, kp, certs.EncodeCert(c))
		return c, f
	}
	otherCA, otherFile := caFileOf("Other CA")
	_, sameNameFile := caFileOf("Test CA")
	ca, _ := certs.LoadKeyPair(caFile, "")
	caKeyPEM, _ := certs.EncodeKey(ca.PrivateKey.(crypto.Signer))
	chainFile := filepath.Join(dir, "chain.pem")
	writePEM(t, chainFile, caKeyPEM, certs.EncodeCert(ca.Leaf), certs.EncodeCert(otherCA))
	keyOnly := filepath.Join(dir, "keyonly.pem")
	writePEM(t, keyOnly, caKeyPEM)
	caCertOnly := filepath.Join(dir, "cacertonly.pem")
	writePEM(t, caCertOnly, certs.EncodeCert(ca.Leaf))
	empty := filepath.Join(dir, "empty.pem")
	writePEM(t, empty)

	tests := []struct {
		name        string
		cert, ca    string
		wantErr     error
		errContains string
		wantSkipped bool
		wantCA      string
	}{
		{name: "self-signed", cert: self, wantSkipped: true, wantCA: "example.test"},
		{name: "no key", cert: certOnly, errContains: "private key"},
		{name: "issued without its CA", cert: issued, wantErr: compare.ErrNoIssuerKey},
		{name: "issued with its CA", cert: issued, ca: caFile, wantCA: "Test CA"},
		{name: "CA that is not a CA", cert: issued, ca: self, wantErr: compare.ErrBadRefCA, errContains: "not a CA"},
		{name: "another CA", cert: issued, ca: otherFile, wantErr: compare.ErrBadRefCA, errContains: `did not issue --ref`},
		// The name alone would pass: only the signature tells them apart.
		{name: "same name, another key", cert: issued, ca: sameNameFile, wantErr: compare.ErrBadRefCA, errContains: "signature"},
		{name: "self-signed reference with a CA", cert: self, ca: caFile, wantErr: compare.ErrBadRefCA, errContains: "self-signed"},
		{name: "chain", cert: issued, ca: chainFile, wantErr: compare.ErrBadRefCA, errContains: "2 certificates"},
		{name: "key alone", cert: issued, ca: keyOnly, wantErr: compare.ErrBadRefCA, errContains: "no certificate"},
		{name: "certificate alone", cert: issued, ca: caCertOnly, wantErr: compare.ErrBadRefCA, errContains: "no private key"},
		{name: "empty", cert: issued, ca: empty, wantErr: compare.ErrBadRefCA, errContains: "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := compare.LoadReference(tt.cert, "", tt.ca)
			if tt.wantErr != nil || tt.errContains != "" {
				if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) || !strings.Contains(err.Error(), tt.errContains) {
					t.Fatalf("err = %v, want %v / %q", err, tt.wantErr, tt.errContains)
				}
				// The message names both files: which CA, for which reference.
				if errors.Is(tt.wantErr, compare.ErrBadRefCA) && (!strings.Contains(err.Error(), strconv.Quote(tt.ca)) || !strings.Contains(err.Error(), strconv.Quote(tt.cert))) {
					t.Errorf("err = %v; want it to quote %q and %q", err, tt.ca, tt.cert)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.CA.Subject.CommonName != tt.wantCA {
				t.Errorf("CA = %q, want %q", r.CA.Subject.CommonName, tt.wantCA)
			}
			ss, skipped, err := compare.Scenarios(r)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(skipped) > 0; got != tt.wantSkipped {
				t.Errorf("skipped = %v, want skipped %v", skipped, tt.wantSkipped)
			}
			// A --ref-ca cannot help a self-signed reference (none issued
			// it): the reason says what can.
			if tt.wantSkipped && !strings.Contains(strings.Join(skipped, " "), "self-signed") {
				t.Errorf("skipped = %q; want it to say the reference is self-signed", skipped)
			}
			if ss[0].Name != compare.Same || !bytes.Equal(ss[0].Cert.Certificate[0], r.Certificate().Raw) {
				t.Error("first scenario is not the reference")
			}
		})
	}
}

func TestTrustReference(t *testing.T) {
	ref, err := compare.NewReference(certs.ECDSA)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"md5pin", "sha256pin", "spkipin", "allowlist", "tofu"} {
		tr, err := compare.TrustReference(name, ref, t.TempDir(), nil)
		if err != nil || len(tr.Options) == 0 || tr.PinBytes == 0 || tr.Note == "" {
			t.Errorf("%s: %+v, %v", name, tr, err)
		}
	}
	md5, _ := compare.TrustReference("md5pin", ref, t.TempDir(), nil)
	if !strings.Contains(md5.Note, "collision-broken") {
		t.Errorf("md5pin note %q does not say MD5 is collision-broken", md5.Note)
	}
	if _, err := compare.TrustReference("nosuch", ref, t.TempDir(), nil); !errors.Is(err, compare.ErrUnknownStrategy) || !strings.Contains(err.Error(), `"nosuch"`) {
		t.Errorf("unknown verifier: err = %v", err)
	}
	if _, err := compare.TrustReference("ca", ref, t.TempDir(), nil); err == nil {
		t.Error("ca without a description of its options: no error")
	}
}

// report is a fixed report for the renderers.
func report() *compare.Report {
	return &compare.Report{
		Results: []compare.Result{
			{Verifier: "spkipin", Scenario: "same", Accepted: true, Reason: "matched spki:X"},
			{Verifier: "spkipin", Scenario: "lookalike", Accepted: false, Reason: `mismatch <script>"x"</script> & more`},
			{Verifier: "sha256pin", Scenario: "same", Accepted: true, Reason: "matched"},
			{Verifier: "sha256pin", Scenario: "lookalike", Accepted: false, Reason: "mismatch"},
		},
		Verifiers: []compare.VerifierInfo{
			{Name: "spkipin", InProcessUs: 5.5, PluginUs: 150, PinBytes: 32, Note: "the key | pipes"},
			{Name: "sha256pin", InProcessUs: 1, PluginUs: 140, PinBytes: 32, Note: "the certificate"},
			{Name: "later", Skipped: true, Note: "skipped: not built in"},
		},
		Scenarios: []compare.Scenario{{Name: "same", What: "itself"}, {Name: "lookalike", What: "attacker"}},
		Skipped:   []string{"intermediate-rotated: needs the CA key"},
	}
}

// TestWriteHTML parses the page as XML (it is well-formed on purpose) and
// checks every matrix cell: its verifier, scenario, word and colour.
func TestWriteHTML(t *testing.T) {
	var b bytes.Buffer
	if err := report().WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	cells := parseCells(t, b.Bytes())
	want := map[[2]string]string{
		{"spkipin", "same"}: "accept", {"spkipin", "lookalike"}: "reject",
		{"sha256pin", "same"}: "accept", {"sha256pin", "lookalike"}: "reject",
	}
	if len(cells) != len(want) {
		t.Fatalf("got %d cells, want %d: %+v", len(cells), len(want), cells)
	}
	for k, w := range want {
		c, ok := cells[k]
		if !ok {
			t.Errorf("no cell for %v", k)
			continue
		}
		colour := compare.RejectColour
		if w == "accept" {
			colour = compare.AcceptColour
		}
		if c.text != w || c.class != w || !strings.Contains(c.style, colour) {
			t.Errorf("cell %v = %+v, want %s in %s", k, c, w, colour)
		}
	}
	if c := cells[[2]string{"spkipin", "lookalike"}]; c.title != `mismatch <script>"x"</script> & more` {
		t.Errorf("reason not carried intact: %q", c.title)
	}
	if strings.Contains(b.String(), "<script>") {
		t.Error("reason not escaped")
	}
	for _, s := range []string{"later", "skipped: not built in", "needs the CA key", "<style>"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("page lacks %q", s)
		}
	}
	if strings.Contains(b.String(), "<link") || strings.Contains(b.String(), "src=") {
		t.Error("page is not self-contained")
	}
}

type cell struct{ text, class, style, title string }

// parseCells returns the matrix cells of an HTML report by (verifier, scenario).
func parseCells(t *testing.T, page []byte) map[[2]string]cell {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(page))
	d.Strict = true
	out := map[[2]string]cell{}
	var cur *cell
	var key [2]string
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("page is not well-formed: %v", err)
		}
		switch tk := tok.(type) {
		case xml.StartElement:
			if tk.Name.Local != "td" {
				continue
			}
			c := cell{}
			var v, s string
			for _, a := range tk.Attr {
				switch a.Name.Local {
				case "class":
					c.class = a.Value
				case "style":
					c.style = a.Value
				case "title":
					c.title = a.Value
				case "data-verifier":
					v = a.Value
				case "data-scenario":
					s = a.Value
				}
			}
			if v != "" {
				cur, key = &c, [2]string{v, s}
			}
		case xml.CharData:
			if cur != nil {
				cur.text += strings.TrimSpace(string(tk))
			}
		case xml.EndElement:
			if tk.Name.Local == "td" && cur != nil {
				out[key] = *cur
				cur = nil
			}
		}
	}
	return out
}

func TestWriteTextFormats(t *testing.T) {
	var table, md, js bytes.Buffer
	r := report()
	r.Verifiers = append(r.Verifiers, compare.VerifierInfo{Name: "external", PluginUs: 160, PinBytes: 32, NoInProcess: true, Note: "a plugin of its own"},
		compare.VerifierInfo{Name: "crashy", PluginUs: 999, InProcessUs: 999, PinBytes: 32, Failed: true, Note: "failed"})
	r.Results = append(r.Results,
		compare.Result{Verifier: "crashy", Scenario: "same", Failed: true, Reason: "verifier failed (fail closed)"},
		compare.Result{Verifier: "crashy", Scenario: "lookalike", Failed: true, Reason: "verifier failed (fail closed)"})
	if err := r.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"spkipin", "lookalike", "accept", "reject", "150.00", "skipped: not built in", "needs the CA key"} {
		if !strings.Contains(table.String(), s) {
			t.Errorf("table lacks %q:\n%s", s, table.String())
		}
	}
	for _, s := range []string{"| scenario | spkipin | sha256pin |", "| `lookalike` | ❌ reject | ❌ reject | ❌ reject | ⚠️ failed |", `the key \| pipes`, "| crashy | - | - | 32 |"} {
		if !strings.Contains(md.String(), s) {
			t.Errorf("markdown lacks %q:\n%s", s, md.String())
		}
	}
	// What was not measured is null in JSON, not a 0 that reads as free;
	// what was skipped says so in a field, not only in a note's words.
	var doc struct {
		Verifiers        []map[string]any `json:"verifiers"`
		SkippedScenarios []string         `json:"skipped_scenarios"`
	}
	if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(doc.SkippedScenarios, r.Skipped) || len(r.Skipped) == 0 {
		t.Errorf("JSON skipped_scenarios = %q; want %q", doc.SkippedScenarios, r.Skipped)
	}
	want := map[string]map[string]any{
		"spkipin":  {"name": "spkipin", "inprocess_us": 5.5, "plugin_us": 150.0, "pin_bytes": 32.0, "note": "the key | pipes", "failed": false, "skipped": false},
		"later":    {"name": "later", "inprocess_us": nil, "plugin_us": nil, "pin_bytes": nil, "note": "skipped: not built in", "failed": false, "skipped": true},
		"external": {"name": "external", "inprocess_us": nil, "plugin_us": 160.0, "pin_bytes": 32.0, "note": "a plugin of its own", "failed": false, "skipped": false},
		// A verifier that failed was not timed: its figures are null.
		"crashy": {"name": "crashy", "inprocess_us": nil, "plugin_us": nil, "pin_bytes": 32.0, "note": "failed", "failed": true, "skipped": false},
	}
	for _, v := range doc.Verifiers {
		if w, ok := want[v["name"].(string)]; ok && !reflect.DeepEqual(v, w) {
			t.Errorf("JSON verifier = %v; want %v", v, w)
		}
	}
	if strings.Contains(table.String(), "external  0.00") {
		t.Errorf("table gives an in-process cost for a verifier that is not built in:\n%s", table.String())
	}
}

// TestRotatedChainKeepsWhatTheServerSends: a reference whose server sends
// its CA after the leaf (as tlspin cert --ca-cert writes it) still sends
// it after an intermediate rotation; only the issuer changes. Dropping it
// made a pin of that CA (chain=ca) reject the rotation for a reason a real
// rotation does not have: the pinned certificate gone from the chain.
func TestRotatedChainKeepsWhatTheServerSends(t *testing.T) {
	dir := t.TempDir()
	ca, caFile, lk, leaf := issuedByTestCA(t, dir)
	issued := filepath.Join(dir, "issued.pem")
	writePEM(t, issued, lk, certs.EncodeCert(leaf), certs.EncodeCert(ca))

	gen, err := compare.NewReference(certs.ECDSA)
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := compare.LoadReference(issued, "", caFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		ref  *compare.Reference
		// the chain after the new intermediate
		rest [][]byte
	}{
		{"generated, root not sent", gen, nil},
		{"loaded, CA sent", loaded, [][]byte{ca.Raw}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rot := scenarios(t, tt.ref)[compare.IntermediateRotated].Cert
			if len(rot.Certificate) != 2+len(tt.rest) {
				t.Fatalf("intermediate-rotated sends %d certificates, want %d", len(rot.Certificate), 2+len(tt.rest))
			}
			inter, err := x509.ParseCertificate(rot.Certificate[1])
			if err != nil {
				t.Fatal(err)
			}
			if rot.Leaf.CheckSignatureFrom(inter) != nil || slices.ContainsFunc(tt.ref.Leaf.Certificate, func(d []byte) bool { return bytes.Equal(d, inter.Raw) }) {
				t.Error("the certificate after the leaf is not a new intermediate that issued it")
			}
			for i, d := range tt.rest {
				if !bytes.Equal(rot.Certificate[2+i], d) {
					t.Errorf("certificate #%d after the new intermediate is not the one the reference sends", i+1)
				}
			}
			if !verifies(tt.ref.CA, rot.Certificate, tt.ref.ServerName) {
				t.Error("the rotated chain does not verify to the reference's CA")
			}
		})
	}
}

// issuedByTestCA makes a CA, "Test CA", written with its key to
// dir/ca.pem, and a leaf for issued.test that it issued. It returns the
// CA, ca.pem's path, and the leaf's key (PEM) and certificate.
func issuedByTestCA(t *testing.T, dir string) (ca *x509.Certificate, caFile string, leafKeyPEM []byte, leaf *x509.Certificate) {
	t.Helper()
	caKey, ca, err := certs.SelfSigned(certs.Template{Type: certs.ECDSA, CommonName: "Test CA", IsCA: true})
	if err != nil {
		t.Fatal(err)
	}
	leafKey, _ := certs.GenerateKey(certs.ECDSA, 0)
	leaf, err = certs.Issue(certs.Template{CommonName: "issued.test", SANs: []string{"issued.test"}}, leafKey.Public(), ca, caKey)
	if err != nil {
		t.Fatal(err)
	}
	leafKeyPEM, _ = certs.EncodeKey(leafKey)
	ck, _ := certs.EncodeKey(caKey)
	caFile = filepath.Join(dir, "ca.pem")
	writePEM(t, caFile, ck, certs.EncodeCert(ca))
	return ca, caFile, leafKeyPEM, leaf
}

// TestMarkdownKeepsItsColumns: a verifier's label holds the options the
// user gave (allowlist:file=a|b.txt), and a note may quote an error over
// several lines; neither may add a column or end a row early.
func TestMarkdownKeepsItsColumns(t *testing.T) {
	r := report()
	for i := range r.Verifiers {
		if r.Verifiers[i].Name == "sha256pin" {
			r.Verifiers[i].Name = "allowlist:file=a|b.txt"
			r.Verifiers[i].Note = "failed: line one\nline | two\r\nthree"
		}
	}
	for i := range r.Results {
		if r.Results[i].Verifier == "sha256pin" {
			r.Results[i].Verifier = "allowlist:file=a|b.txt"
		}
	}
	var md bytes.Buffer
	if err := r.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	cells := func(row string) int { return len(regexp.MustCompile(`(^|[^\\])\|`).FindAllString(row, -1)) }
	var want int
	for _, row := range strings.Split(md.String(), "\n") {
		switch {
		case strings.HasPrefix(row, "| scenario |"), strings.HasPrefix(row, "| verifier |"):
			want = cells(row)
		case strings.HasPrefix(row, "|"):
			if got := cells(row); got != want {
				t.Errorf("row %q has %d cell borders, its header %d", row, got, want)
			}
		case row != "" && !strings.HasPrefix(row, "- ") && row != "Scenarios:":
			t.Errorf("a line outside the tables and lists: %q", row)
		}
	}
	if !strings.Contains(md.String(), `allowlist:file=a\|b.txt`) {
		t.Errorf("the label is not written escaped:\n%s", md.String())
	}
}
