package rpc_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/tlspin/tlspin/core/rpc"
	"github.com/tlspin/tlspin/core/verify"
	verifierv1 "github.com/tlspin/tlspin/proto/verifier/v1"
)

// fake is a verifier whose Verify is given by the test.
type fake struct {
	verify func(ctx context.Context) (*verify.Verdict, error)
}

func (f *fake) Describe(context.Context) (*verify.Description, error) {
	return &verify.Description{Name: "fake"}, nil
}

func (f *fake) Configure(context.Context, *verify.ConfigureRequest) (*verify.ConfigureResponse, error) {
	return &verify.ConfigureResponse{}, nil
}

func (f *fake) Verify(ctx context.Context, _ *verify.Request) (*verify.Verdict, error) {
	return f.verify(ctx)
}

// serve serves v over in-memory gRPC and returns a client dialled with
// opts, and the server.
func serve(t *testing.T, v verify.Verifier, opts ...grpc.DialOption) (*rpc.Client, *grpc.Server) {
	t.Helper()
	return serveWith(t, func(srv *grpc.Server) error { return (&rpc.GRPCPlugin{Impl: v}).GRPCServer(nil, srv) }, opts...)
}

// serveWith serves what register registers, as serve does.
func serveWith(t *testing.T, register func(*grpc.Server) error, opts ...grpc.DialOption) (*rpc.Client, *grpc.Server) {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	if err := register(srv); err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	opts = append(opts,
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	conn, err := grpc.NewClient("passthrough:///test", opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); srv.Stop() })
	return rpc.NewClient(conn), srv
}

func call(c *rpc.Client, timeout time.Duration) (*verify.Verdict, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return c.Verify(ctx, &verify.Request{PeerChain: [][]byte{[]byte("x")}})
}

// TestVerifierErrorsAreRemote: whatever status code a verifier's error
// carries, including those gRPC itself uses for transport faults, and an
// error wrapping context.DeadlineExceeded, it reaches the host as the
// verifier's own error (a rejection), never as a fault of the plugin.
func TestVerifierErrorsAreRemote(t *testing.T) {
	tests := []struct {
		name string
		err  error
		code codes.Code
	}{
		{"plain error", errors.New("no way"), codes.Unknown},
		{"own sub-timeout", fmt.Errorf("ocsp lookup: %w", context.DeadlineExceeded), codes.DeadlineExceeded},
		{"canceled", fmt.Errorf("lookup: %w", context.Canceled), codes.Unknown},
		{"bad option", &verify.OptionError{Option: "pin", Value: "x", Err: errors.New("bad")}, codes.InvalidArgument},
	}
	for _, c := range []codes.Code{codes.Canceled, codes.Unknown, codes.InvalidArgument, codes.DeadlineExceeded, codes.NotFound,
		codes.AlreadyExists, codes.PermissionDenied, codes.ResourceExhausted, codes.FailedPrecondition, codes.Aborted,
		codes.OutOfRange, codes.Unimplemented, codes.Internal, codes.Unavailable, codes.DataLoss, codes.Unauthenticated} {
		tests = append(tests, struct {
			name string
			err  error
			code codes.Code
		}{"status " + c.String(), status.Error(c, "verifier says "+c.String()), c})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := serve(t, &fake{verify: func(context.Context) (*verify.Verdict, error) { return nil, tc.err }}, rpc.DialOptions()...)
			_, err := call(c, 5*time.Second)
			var remote *rpc.RemoteError
			if !errors.As(err, &remote) {
				t.Fatalf("err = %v (%T); want a *rpc.RemoteError", err, err)
			}
			if remote.Code != tc.code {
				t.Errorf("code %s, want %s", remote.Code, tc.code)
			}
			if errors.Is(err, rpc.ErrTransport) || errors.Is(err, rpc.ErrGarbage) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				t.Errorf("err %v looks like a fault of the plugin or the host", err)
			}
		})
	}
}

// hugeVerdict is a plugin that answers every Verify with an allow whose
// reason is the one given, as long as it is.
type hugeVerdict struct {
	verifierv1.UnimplementedVerifierServer
	reason string
}

func (h hugeVerdict) Verify(context.Context, *verifierv1.VerifyRequest) (*verifierv1.VerifyResponse, error) {
	return &verifierv1.VerifyResponse{Allow: true, Reason: h.reason}, nil
}

func TestFaultsAreNotRemote(t *testing.T) {
	huge := strings.Repeat("A", 5<<20)
	t.Run("answer larger than MaxMessageSize", func(t *testing.T) {
		// A plugin written without the SDK, which would cut the reason.
		c, _, cancel := watchOf(t, hugeVerdict{reason: huge})
		defer cancel()
		v, err := call(c, 5*time.Second)
		if !errors.Is(err, rpc.ErrGarbage) {
			t.Fatalf("verdict %v, err %v; want ErrGarbage", v, err)
		}
		if len(err.Error()) > 300 {
			t.Errorf("error is %d bytes long; want a short one", len(err.Error()))
		}
	})
	t.Run("error text longer than the header limit", func(t *testing.T) {
		c, _ := serve(t, &fake{verify: func(context.Context) (*verify.Verdict, error) { return nil, errors.New(huge[:200<<10]) }}, rpc.DialOptions()...)
		_, err := call(c, 5*time.Second)
		t.Logf("err: %.200v", err)
		if err == nil || len(err.Error()) > verify.MaxTextLen+400 {
			t.Fatalf("err = %.300v (%d bytes); want a bounded error", err, len(fmt.Sprint(err)))
		}
	})
	t.Run("plugin goes away mid-call", func(t *testing.T) {
		var srv *grpc.Server
		started := make(chan struct{})
		c, s := serve(t, &fake{verify: func(ctx context.Context) (*verify.Verdict, error) {
			close(started)
			<-ctx.Done()
			return nil, ctx.Err()
		}}, rpc.DialOptions()...)
		srv = s
		go func() { <-started; srv.Stop() }()
		_, err := call(c, 5*time.Second)
		if !errors.Is(err, rpc.ErrTransport) {
			t.Fatalf("err = %v; want ErrTransport", err)
		}
	})
	t.Run("host's deadline", func(t *testing.T) {
		c, _ := serve(t, &fake{verify: func(ctx context.Context) (*verify.Verdict, error) {
			<-ctx.Done()
			return nil, errors.New("too late")
		}}, rpc.DialOptions()...)
		_, err := call(c, 100*time.Millisecond)
		var remote *rpc.RemoteError
		if !errors.Is(err, context.DeadlineExceeded) || errors.As(err, &remote) {
			t.Fatalf("err = %v; want the host's context.DeadlineExceeded", err)
		}
	})
	t.Run("connection without DialOptions", func(t *testing.T) {
		c, _ := serve(t, &fake{verify: func(context.Context) (*verify.Verdict, error) { return nil, errors.New("no") }})
		_, err := call(c, 5*time.Second)
		if !errors.Is(err, rpc.ErrTransport) || !strings.Contains(err.Error(), "DialOptions") {
			t.Fatalf("err = %v; want ErrTransport naming DialOptions", err)
		}
	})
}

func TestLongTextsAreTruncated(t *testing.T) {
	long := strings.Repeat("é", 3000) // 6000 bytes, two per rune
	c, _ := serve(t, &fake{verify: func(context.Context) (*verify.Verdict, error) {
		return &verify.Verdict{Reason: long, Matched: long}, nil
	}}, rpc.DialOptions()...)
	v, err := call(c, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]string{"reason": v.Reason, "matched": v.Matched} {
		if len(s) > verify.MaxTextLen+64 || !utf8.ValidString(s) || !strings.Contains(s, "truncated: 6000 bytes") {
			t.Errorf("%s: %d bytes, valid UTF-8 %v, ends %q; want at most about %d, cut on a rune, marked", name, len(s), utf8.ValidString(s), s[max(0, len(s)-40):], verify.MaxTextLen)
		}
	}
	c2, _ := serve(t, &fake{verify: func(context.Context) (*verify.Verdict, error) { return nil, errors.New(long) }}, rpc.DialOptions()...)
	_, err = call(c2, 5*time.Second)
	var remote *rpc.RemoteError
	if !errors.As(err, &remote) || len(remote.Message) > verify.MaxTextLen+64 || !strings.Contains(remote.Message, "truncated") {
		t.Fatalf("error %d bytes; want a truncated remote error", len(fmt.Sprint(err)))
	}
}

// TestPeerSizedErrorIsARejection is the attack of a peer whose
// certificate carries 70 KB of names, against a verifier whose error
// quotes them (a plugin author's natural fmt.Errorf). gRPC carries an
// error's text in a header, and one over the host's 64 KiB header limit
// reset the stream: the host took the plugin for broken and restarted it,
// on every such connection. The SDK now cuts the text before sending it,
// and the host gets a rejection, for a plain error and for one carrying
// its own status.
func TestPeerSizedErrorIsARejection(t *testing.T) {
	long := strings.Repeat("n.example,", 7<<10) // 70 KiB
	for name, e := range map[string]error{
		"plain":       errors.New(long),
		"with status": status.Error(codes.PermissionDenied, long),
	} {
		t.Run(name, func(t *testing.T) {
			c, _ := serve(t, &fake{verify: func(context.Context) (*verify.Verdict, error) { return nil, e }}, rpc.DialOptions()...)
			_, err := call(c, 5*time.Second)
			var remote *rpc.RemoteError
			if !errors.As(err, &remote) || !strings.Contains(remote.Message, "truncated: 71680 bytes") {
				t.Fatalf("ATTACK: a verifier's long error came back as %.200v (transport fault: %v); want a truncated rejection", err, errors.Is(err, rpc.ErrTransport))
			}
		})
	}
}

// committer is a fake that implements Commit as the test says.
type committer struct {
	fake
	commit error
}

func (c *committer) Commit(context.Context, *verify.Request) (*verify.CommitResponse, error) {
	return &verify.CommitResponse{}, c.commit
}

// TestCommitOfAVerifierWithoutCommit: a verifier without Commit
// (UNIMPLEMENTED: an SDK verifier that defines no commit method) has
// nothing to commit, unless its verdict asked for a commit: that allow
// held only on condition of a record it cannot make, and the commit
// fails (the host rejects the connection). It used to be taken for a
// record made, the allow with it.
func TestCommitOfAVerifierWithoutCommit(t *testing.T) {
	tests := []struct {
		name   string
		v      verify.Verifier
		commit bool // the verdict asks for a commit
		want   error
	}{
		{"no commit asked", &fake{}, false, nil},
		{"commit asked", &fake{}, true, rpc.ErrGarbage},
		{"commit asked, implemented", &committer{}, true, nil},
		{"commit asked, UNIMPLEMENTED by the verifier's own commit", &committer{commit: status.Error(codes.Unimplemented, "no store")}, true, rpc.ErrGarbage},
		{"no commit asked, UNIMPLEMENTED by the verifier's own commit", &committer{commit: status.Error(codes.Unimplemented, "no store")}, false, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			verdict := func(context.Context) (*verify.Verdict, error) {
				return &verify.Verdict{Allow: true, Reason: "first use", Commit: tc.commit}, nil
			}
			switch v := tc.v.(type) {
			case *fake:
				v.verify = verdict
			case *committer:
				v.verify = verdict
			}
			c, _ := serve(t, tc.v, rpc.DialOptions()...)
			if v, err := call(c, 5*time.Second); err != nil || !v.Allow || v.Commit != tc.commit {
				t.Fatalf("Verify = %+v, %v", v, err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := c.Commit(ctx, &verify.Request{PeerChain: [][]byte{[]byte("x")}})
			switch {
			case tc.want == nil && err != nil:
				t.Fatalf("Commit = %v; want nothing to commit", err)
			case tc.want != nil && (!errors.Is(err, tc.want) || !strings.Contains(err.Error(), "does not implement Commit")):
				t.Fatalf("Commit = %v; want %v saying the verifier does not implement Commit", err, tc.want)
			}
		})
	}
}

// TestNegativeCacheTimeIsARejection: a verifier written with the Go SDK
// that returns a negative cache time (a subtraction the wrong way round)
// rejects that peer with an error that says so, rather than sending a
// verdict the host must take for garbage, restarting the plugin on every
// call, as the Python SDK and the Node example already do.
func TestNegativeCacheTimeIsARejection(t *testing.T) {
	c, _ := serve(t, &fake{verify: func(context.Context) (*verify.Verdict, error) {
		return &verify.Verdict{Allow: true, Reason: "fine", CacheFor: -time.Second}, nil
	}}, rpc.DialOptions()...)
	v, err := call(c, 5*time.Second)
	var remote *rpc.RemoteError
	if !errors.As(err, &remote) || remote.Code != codes.Unknown || !strings.Contains(remote.Message, "negative cache time (-1s)") || v != nil {
		t.Fatalf("a negative cache time came back as %+v, %v; want a rejection that names it", v, err)
	}
	if errors.Is(err, rpc.ErrGarbage) {
		t.Errorf("%v is taken for garbage: the host would restart the plugin", err)
	}
}

// TestPanicIsARejection: a verifier that panics (in the Go SDK, on a
// peer's certificate it did not expect) rejects that peer with an error
// that says so, and the plugin keeps serving. The panic used to kill the
// plugin process: every call in flight failed with it, and every peer was
// rejected while the host restarted it with backoff, so one peer could
// keep a verifier down for all, where the Python SDK and the Node example
// answer an exception with a rejection.
func TestPanicIsARejection(t *testing.T) {
	var n int
	c, _ := serve(t, &fake{verify: func(context.Context) (*verify.Verdict, error) {
		if n++; n == 1 {
			var names []string
			_ = names[n] // out of range: the mistake of an author
		}
		return &verify.Verdict{Allow: true, Reason: "fine"}, nil
	}}, rpc.DialOptions()...)
	_, err := call(c, 5*time.Second)
	var remote *rpc.RemoteError
	if !errors.As(err, &remote) || remote.Code != codes.Unknown || !strings.Contains(remote.Message, "verifier panicked: runtime error: index out of range") {
		t.Fatalf("a panic in Verify came back as %v; want a rejection that names the panic", err)
	}
	if v, err := call(c, 5*time.Second); err != nil || !v.Allow {
		t.Fatalf("after a panic, Verify answered %+v, %v; want the verifier still serving", v, err)
	}
}

// TestPeerSizedReasonIsARejection is the attack of a peer whose
// certificate's names a verifier quotes in its rejection, as
// examples/go-verifier does (sdk.Rejectf("leaf %q ...", c.DNSNames)): a
// 256 KiB certificate message of control characters, %q-quoted, and
// twice in the text, makes a reason over the host's 1 MiB message cap.
// The host took the answer for garbage and restarted the plugin, failing
// every call in flight, one peer at a time. The SDK now cuts a verdict's
// texts to what the host keeps before sending them.
func TestPeerSizedReasonIsARejection(t *testing.T) {
	names := strings.Repeat("\x01", 256<<10)
	long := fmt.Sprintf("leaf %q is not pinned; to trust it: --verifier x:san=%q", names, names)
	for name, v := range map[string]*verify.Verdict{
		"reject": {Reason: long},
		"allow":  {Allow: true, Reason: long, Matched: long},
	} {
		t.Run(name, func(t *testing.T) {
			c, _ := serve(t, &fake{verify: func(context.Context) (*verify.Verdict, error) { return v, nil }}, rpc.DialOptions()...)
			got, err := call(c, 5*time.Second)
			if err != nil {
				t.Fatalf("ATTACK: a verdict with a %d-byte reason came back as %.200v (garbage: %v); want the verdict, its texts truncated", len(long), err, errors.Is(err, rpc.ErrGarbage))
			}
			if got.Allow != v.Allow || !strings.Contains(got.Reason, fmt.Sprintf("truncated: %d bytes", len(long))) || len(got.Reason) > verify.MaxTextLen || len(got.Matched) > verify.MaxTextLen {
				t.Fatalf("verdict allow=%v, reason %d bytes ending %q, matched %d bytes; want allow=%v, both cut to %d", got.Allow, len(got.Reason), got.Reason[max(0, len(got.Reason)-40):], len(got.Matched), v.Allow, verify.MaxTextLen)
			}
		})
	}
}

// echoed is a verifier that allows every peer, saying what it was asked.
type echoed struct{ fake }

func (*echoed) Verify(_ context.Context, req *verify.Request) (*verify.Verdict, error) {
	return &verify.Verdict{Allow: true, Reason: fmt.Sprintf("%s|%s|%s", req.ServerName, req.RemoteAddr, req.ALPN)}, nil
}

// TestRequestTextsThatAreNotUTF8: a client's SNI reaches a server's
// verifier as the client sent it, and Go's crypto/tls takes any bytes
// there; a unix socket's path, which is the remote address, may be any
// bytes too. A proto3 string carries only UTF-8: the host failed to encode
// the request, took that for a plugin it could not reach, and restarted
// it, failing every call in flight, for each such client. Such bytes now
// reach the plugin as U+FFFD.
func TestRequestTextsThatAreNotUTF8(t *testing.T) {
	c, _ := serve(t, &echoed{}, rpc.DialOptions()...)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	v, err := c.Verify(ctx, &verify.Request{PeerChain: [][]byte{[]byte("x")}, Side: verify.ServerVerifiesClient,
		ServerName: "a\xffb.example", RemoteAddr: "unix:/run/caf\xe9.sock", ALPN: "h\xc3"})
	if err != nil {
		t.Fatalf("ATTACK: a request with a server name that is not UTF-8 failed: %v (transport fault: %v)", err, errors.Is(err, rpc.ErrTransport))
	}
	if want := "a\uFFFDb.example|unix:/run/caf\uFFFD.sock|h\uFFFD"; !v.Allow || v.Reason != want {
		t.Fatalf("verdict allow=%v, the plugin saw %q; want allowed, %q", v.Allow, v.Reason, want)
	}
	if _, err := c.Commit(ctx, &verify.Request{ServerName: "a\xffb"}); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

// TestOptionThatIsNotUTF8: an option value that is not UTF-8 (a file
// name in Latin-1) cannot travel in a proto3 string. The host failed to
// encode the request and reported the plugin unreachable (exit 1); it is
// the user's option, refused as such, naming it.
func TestOptionThatIsNotUTF8(t *testing.T) {
	c, _ := serve(t, &fake{}, rpc.DialOptions()...)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, err := c.Configure(ctx, &verify.ConfigureRequest{Options: verify.Options{"name": {"ok"}, "file": {"/etc/ok", "/etc/caf\xe9"}}})
	var oe *verify.OptionError
	if !errors.As(err, &oe) || oe.Option != "file" || oe.Value != "/etc/caf\xe9" || errors.Is(err, rpc.ErrTransport) {
		t.Fatalf("Configure = %v; want an option error naming file=\"/etc/caf\\xe9\"", err)
	}
	if !strings.Contains(err.Error(), "UTF-8") {
		t.Errorf("error %q does not say what is wrong with the value", err)
	}
}

// TestVerdictTextsThatAreNotUTF8: a verdict whose reason or matched rule
// is not UTF-8 (a verifier quoting bytes it read with string(b)) keeps
// its verdict, those bytes written as U+FFFD. gRPC failed to encode it,
// and the plugin's allow came to the host as an error, "grpc: error while
// marshaling: string field contains invalid UTF-8", naming neither field.
func TestVerdictTextsThatAreNotUTF8(t *testing.T) {
	c, _ := serve(t, &fake{verify: func(context.Context) (*verify.Verdict, error) {
		return &verify.Verdict{Allow: true, Reason: "pinned in caf\xe9.list", Matched: "line \xff1"}, nil
	}}, rpc.DialOptions()...)
	v, err := call(c, 5*time.Second)
	if err != nil {
		t.Fatalf("an allow whose reason is not UTF-8 came back as %v", err)
	}
	if !v.Allow || v.Reason != "pinned in caf\uFFFD.list" || v.Matched != "line \uFFFD1" {
		t.Fatalf("verdict %+v; want the allow, with U+FFFD for the bytes that are not UTF-8", v)
	}
}
