package launch

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/tlspin/tlspin/core/verify"
)

// TestParseSpec: every form accepted before escapes still parses the same,
// a value can hold a comma (\,) and a backslash (\\), and a backslash
// before anything else is refused, quoting what was written and saying how
// to escape, rather than kept or dropped silently.
func TestParseSpec(t *testing.T) {
	tests := []struct {
		spec string
		want Spec
		err  string // in the error; "" when it parses
	}{
		// Forms accepted before.
		{spec: "md5pin", want: Spec{Name: "md5pin", Options: verify.Options{}}},
		{spec: "md5pin:", want: Spec{Name: "md5pin", Options: verify.Options{}}},
		{spec: "md5pin:pin=ab", want: Spec{Name: "md5pin", Options: verify.Options{"pin": {"ab"}}}},
		{spec: "spkipin:pin=sha256//YhKJ=,pin=sha256//Zz==", want: Spec{Name: "spkipin", Options: verify.Options{"pin": {"sha256//YhKJ=", "sha256//Zz=="}}}},
		{spec: "allowlist:file=pins.txt,,chain=any,", want: Spec{Name: "allowlist", Options: verify.Options{"file": {"pins.txt"}, "chain": {"any"}}}},
		{spec: "tofu:file=", want: Spec{Name: "tofu", Options: verify.Options{"file": {""}}}},
		{spec: "./bin/tlspin-verifier-x:san=*.example.com", want: Spec{Name: "./bin/tlspin-verifier-x", Options: verify.Options{"san": {"*.example.com"}}}},
		{spec: "x:url=http://h:1/p?a=b", want: Spec{Name: "x", Options: verify.Options{"url": {"http://h:1/p?a=b"}}}},
		{spec: `cnecdsa:cn="Acme`, want: Spec{Name: "cnecdsa", Options: verify.Options{"cn": {`"Acme`}}}},
		// Escapes.
		{spec: `cnecdsa:cn=Acme\, Inc`, want: Spec{Name: "cnecdsa", Options: verify.Options{"cn": {"Acme, Inc"}}}},
		{spec: `cnecdsa:cn=Acme\, Inc,cn=Beta`, want: Spec{Name: "cnecdsa", Options: verify.Options{"cn": {"Acme, Inc", "Beta"}}}},
		{spec: `x:dir=C:\\certs\\,n=1`, want: Spec{Name: "x", Options: verify.Options{"dir": {`C:\certs\`}, "n": {"1"}}}},
		{spec: `x:v=\\\,`, want: Spec{Name: "x", Options: verify.Options{"v": {`\,`}}}},
		{spec: `x:v=\,\,`, want: Spec{Name: "x", Options: verify.Options{"v": {",,"}}}},
		// Refused.
		{spec: ":pin=x", err: "missing name"},
		{spec: "md5pin:pin", err: `option "pin" is not key=value`},
		{spec: "md5pin:=ab", err: `option "=ab" is not key=value`},
		{spec: `cnecdsa:cn="Acme, Inc"`, err: `option " Inc\"" is not key=value (a comma inside a value is written \,`},
		{spec: `cnecdsa:cn=Acme, Inc`, err: `option " Inc" is not key=value (a comma inside a value is written \,; in a shell, inside single quotes: 'NAME:key=a\, b')`},
		{spec: `cnecdsa:cn=Acme\ Inc`, err: "option `cn=Acme\\ Inc`: a backslash before \" \""},
		{spec: `x:re=a\d`, err: "option `re=a\\d`: a backslash before \"d\""},
		{spec: `x:v=a\`, err: "option `v=a\\`: a backslash at the end"},
		{spec: `x:v=a\`, err: `write \, for a comma and \\ for a backslash`},
		{spec: `x:k\,=v`, want: Spec{Name: "x", Options: verify.Options{"k,": {"v"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			got, err := ParseSpec(tt.spec)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, ErrConfig) {
					t.Fatalf("ParseSpec(%q) = %+v, %v; want ErrConfig saying %q", tt.spec, got, err, tt.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseSpec(%q) = %+v, %v; want %+v", tt.spec, got, err, tt.want)
			}
		})
	}
}
