package pin

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
)

// Format names a way to print a digest.
type Format string

const (
	// FormatHex is lowercase hex without colons (the recipe's format).
	FormatHex Format = "hex"
	// FormatColon is uppercase hex with colons, as openssl prints it.
	FormatColon Format = "colon"
	// FormatBase64 is standard padded base64.
	FormatBase64 Format = "base64"
	// FormatCurl is curl --pinnedpubkey's sha256//BASE64 (spki only).
	FormatCurl Format = "curl"
	// FormatOkHttp is OkHttp CertificatePinner's sha256/BASE64 (spki only).
	FormatOkHttp Format = "okhttp"
	// FormatHPKP is the Public-Key-Pins header's pin-sha256="BASE64" (spki only).
	FormatHPKP Format = "hpkp"
	// FormatOpenSSL is exactly what `openssl x509 -fingerprint -ALGO` prints
	// (md5, sha1, sha256 only).
	FormatOpenSSL Format = "openssl"
)

// Formats lists every format.
var Formats = []Format{FormatHex, FormatColon, FormatBase64, FormatCurl, FormatOkHttp, FormatHPKP, FormatOpenSSL}

// DefaultFormat is how tlspin prints a pin of algo unless told otherwise:
// base64 for spki (as curl, OkHttp and HPKP write it, without their
// prefixes), lowercase hex for the digests of a certificate (as the recipe
// does).
func DefaultFormat(algo Algo) Format {
	if algo == SPKI {
		return FormatBase64
	}
	return FormatHex
}

// ParseFormat parses a format name.
func ParseFormat(s string) (Format, error) {
	for _, f := range Formats {
		if strings.EqualFold(s, string(f)) {
			return f, nil
		}
	}
	names := make([]string, len(Formats))
	for i, f := range Formats {
		names[i] = string(f)
	}
	return "", fmt.Errorf("pin: unknown format %q (want one of %s)", s, strings.Join(names, ", "))
}

// Print prints digest of algorithm algo in format f.
func Print(algo Algo, digest []byte, f Format) (string, error) {
	b64 := base64.StdEncoding.EncodeToString(digest)
	switch f {
	case FormatHex:
		return hex.EncodeToString(digest), nil
	case FormatColon:
		return colonHex(digest), nil
	case FormatBase64:
		return b64, nil
	case FormatCurl, FormatOkHttp, FormatHPKP:
		if algo != SPKI {
			return "", fmt.Errorf("%w: %s pins are SPKI SHA-256 pins; use --algo spki, not %q", ErrFormat, f, algo)
		}
		switch f {
		case FormatCurl:
			return "sha256//" + b64, nil
		case FormatOkHttp:
			return "sha256/" + b64, nil
		}
		return `pin-sha256="` + b64 + `"`, nil
	case FormatOpenSSL:
		if algo == SPKI {
			return "", fmt.Errorf("%w: openssl x509 -fingerprint has no spki form; use md5, sha1 or sha256", ErrFormat)
		}
		return string(algo) + " Fingerprint=" + colonHex(digest), nil
	}
	return "", fmt.Errorf("pin: unknown format %q", string(f))
}

func colonHex(d []byte) string {
	h := strings.ToUpper(hex.EncodeToString(d))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

// Detect guesses the format a pin was written in. Hex written in lowercase
// without colons is FormatHex; with colons it is FormatColon.
func Detect(s string) Format {
	s = trimHeaderName(strings.TrimSpace(s))
	lower := asciiLower(s)
	switch {
	case strings.Contains(lower, " fingerprint="):
		return FormatOpenSSL
	case strings.HasPrefix(lower, "pin-sha256="):
		return FormatHPKP
	case strings.HasPrefix(lower, "sha256//"):
		if _, err := decodeBase64(SPKI, s[len("sha256//"):]); err != nil {
			if _, err := decodeBase64(SPKI, s[len("sha256/"):]); err == nil {
				return FormatOkHttp // OkHttp base64 that starts with "/"
			}
		}
		return FormatCurl
	case strings.HasPrefix(lower, "sha256/"):
		return FormatOkHttp
	}
	if i := strings.IndexByte(s, ':'); i > 0 {
		if _, err := ParseAlgo(s[:i]); err == nil {
			s = s[i+1:]
		}
	}
	if _, err := hex.DecodeString(stripSeparators(s)); err == nil {
		if strings.Contains(s, ":") {
			return FormatColon
		}
		return FormatHex
	}
	return FormatBase64
}
