package rpc

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tlspin/tlspin/core/verify"
	verifierv1 "github.com/tlspin/tlspin/proto/verifier/v1"
)

func descriptionToProto(d *verify.Description) *verifierv1.DescribeResponse {
	r := &verifierv1.DescribeResponse{Name: d.Name, Version: d.Version, Summary: d.Summary}
	for _, o := range d.Options {
		r.Options = append(r.Options, &verifierv1.Option{Name: o.Name, Description: o.Description, Required: o.Required, Repeated: o.Repeated})
	}
	return r
}

// descriptionFromProto keeps at most verify.MaxTextLen of each text a plugin
// describes itself with.
func descriptionFromProto(r *verifierv1.DescribeResponse) *verify.Description {
	d := &verify.Description{Name: verify.Truncate(r.GetName()), Version: verify.Truncate(r.GetVersion()), Summary: verify.Truncate(r.GetSummary())}
	for _, o := range r.GetOptions() {
		d.Options = append(d.Options, verify.Option{Name: verify.Truncate(o.GetName()), Description: verify.Truncate(o.GetDescription()), Required: o.GetRequired(), Repeated: o.GetRepeated()})
	}
	return d
}

// configureRequestToProto refuses an option that is not UTF-8 (a file
// name in Latin-1), which a proto3 string cannot carry: gRPC would fail
// the call as if the plugin could not be reached.
func configureRequestToProto(req *verify.ConfigureRequest) (*verifierv1.ConfigureRequest, error) {
	r := &verifierv1.ConfigureRequest{Options: map[string]*verifierv1.OptionValues{}}
	if req == nil {
		return r, nil
	}
	for _, k := range slices.Sorted(maps.Keys(req.Options)) {
		for _, v := range req.Options[k] {
			if !utf8.ValidString(k) || !utf8.ValidString(v) {
				return nil, fmt.Errorf("rpc: %w", &verify.OptionError{Option: k, Value: v, Err: errors.New("not UTF-8, which a verifier plugin over gRPC cannot take")})
			}
		}
		r.Options[k] = &verifierv1.OptionValues{Values: req.Options[k]}
	}
	return r, nil
}

func configureRequestFromProto(r *verifierv1.ConfigureRequest) *verify.ConfigureRequest {
	opts := verify.Options{}
	for k, v := range r.GetOptions() {
		opts[k] = v.GetValues()
	}
	return &verify.ConfigureRequest{Options: opts}
}

// requestToProto writes bytes of the request's texts that are not UTF-8
// as U+FFFD, which is all a proto3 string may carry: a client's SNI is
// whatever bytes it sent (crypto/tls checks none), a unix socket's path
// any bytes, and a request that cannot be encoded fails as a transport
// fault, for which the host would restart the plugin.
func requestToProto(req *verify.Request) *verifierv1.VerifyRequest {
	return &verifierv1.VerifyRequest{
		PeerChain:   req.PeerChain,
		ServerName:  strings.ToValidUTF8(req.ServerName, "\uFFFD"),
		Side:        verifierv1.Side(req.Side),
		RemoteAddr:  strings.ToValidUTF8(req.RemoteAddr, "\uFFFD"),
		TlsVersion:  uint32(req.TLSVersion),
		CipherSuite: uint32(req.CipherSuite),
		Alpn:        strings.ToValidUTF8(req.ALPN, "\uFFFD"),
		DidResume:   req.DidResume,
		NoCommit:    req.NoCommit,
	}
}

func requestFromProto(r *verifierv1.VerifyRequest) *verify.Request {
	return &verify.Request{
		PeerChain:   r.GetPeerChain(),
		ServerName:  r.GetServerName(),
		Side:        verify.Side(r.GetSide()),
		RemoteAddr:  r.GetRemoteAddr(),
		TLSVersion:  uint16(r.GetTlsVersion()),
		CipherSuite: uint16(r.GetCipherSuite()),
		ALPN:        r.GetAlpn(),
		DidResume:   r.GetDidResume(),
		NoCommit:    r.GetNoCommit(),
	}
}

// verdictToProto cuts the texts as the host would (verify.Truncate): the
// host refuses an answer over its message cap (MaxMessageSize) as garbage
// and restarts the plugin, and a reason that quotes a peer's names can be
// that long. Bytes that are not UTF-8 are written as U+FFFD, or gRPC
// could not encode the verdict, and it would reach the host as an error.
func verdictToProto(v *verify.Verdict) *verifierv1.VerifyResponse {
	return &verifierv1.VerifyResponse{Allow: v.Allow, Reason: verdictText(v.Reason), Matched: verdictText(v.Matched), CacheForMillis: v.CacheFor.Milliseconds(), Commit: v.Commit}
}

func verdictText(s string) string { return verify.Truncate(strings.ToValidUTF8(s, "\uFFFD")) }

// verdictFromProto validates what a plugin sent (verify.CleanVerdict): a
// negative cache time is garbage, an overlong one is capped (before it is
// converted, so that it cannot wrap around), and the texts are truncated.
func verdictFromProto(r *verifierv1.VerifyResponse) (*verify.Verdict, error) {
	ms := r.GetCacheForMillis()
	if ms < 0 {
		return nil, fmt.Errorf("%w: negative cache_for_millis %d", ErrGarbage, ms)
	}
	cf := time.Duration(min(ms, verify.MaxCacheFor.Milliseconds())) * time.Millisecond
	v, err := verify.CleanVerdict(&verify.Verdict{Allow: r.GetAllow(), Reason: r.GetReason(), Matched: r.GetMatched(), CacheFor: cf, Commit: r.GetCommit()})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrGarbage, err)
	}
	return v, nil
}
