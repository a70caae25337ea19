package tlspin_test

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/tlspin/tlspin"
)

// handshakeOverTCP runs a TLS handshake between client and server
// configurations over a loopback TCP connection and returns the client's
// state and both sides' errors.
func handshakeOverTCP(t *testing.T, client, server *tls.Config) (tls.ConnectionState, error, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srvErr := make(chan error, 1)
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			srvErr <- err
			return
		}
		defer raw.Close()
		raw.SetDeadline(time.Now().Add(10 * time.Second))
		c := tls.Server(raw, server)
		err = c.Handshake()
		if err == nil {
			// TLS 1.3: the server judges the client after the client's
			// handshake returned; tell the client the outcome.
			_, err = c.Write([]byte{1})
		}
		srvErr <- err
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(10 * time.Second))
	c := tls.Client(raw, client)
	cerr := c.Handshake()
	if cerr == nil {
		_, cerr = c.Read(make([]byte, 1))
	}
	cs := c.ConnectionState()
	c.Close()
	return cs, cerr, <-srvErr
}

// echKeys makes an ECH configuration for publicName: the list a client
// is given, and the key a server decrypts with.
func echKeys(t *testing.T, publicName string) ([]byte, tls.EncryptedClientHelloKey) {
	t.Helper()
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	u16 := func(b []byte, v int) []byte { return binary.BigEndian.AppendUint16(b, uint16(v)) }
	var body []byte
	body = append(body, 1)   // config_id
	body = u16(body, 0x0020) // DHKEM(X25519, HKDF-SHA256)
	body = u16(body, len(k.PublicKey().Bytes()))
	body = append(body, k.PublicKey().Bytes()...)
	body = u16(body, 4)         // one cipher suite:
	body = u16(u16(body, 1), 1) // HKDF-SHA256, AES-128-GCM
	body = append(body, 32)     // maximum_name_length
	body = append(body, byte(len(publicName)))
	body = append(body, publicName...)
	body = u16(body, 0) // no extensions
	cfg := u16(u16(nil, 0xfe0d), len(body))
	cfg = append(cfg, body...)
	list := append(u16(nil, len(cfg)), cfg...)
	return list, tls.EncryptedClientHelloKey{Config: cfg, PrivateKey: k.Bytes(), SendAsRetry: true}
}

// TestHookClientConfigECH: a client configuration with Encrypted Client
// Hello, hooked, still works, and the verifiers decide on the server of
// the inner (secret) name. Once, hooking raised MinVersion from 0 to TLS
// 1.2, which crypto/tls refuses with ECH: every handshake failed. When
// the server rejects ECH, crypto/tls checks the public name's
// certificate against RootCAs, not the verifiers, and fails the
// handshake whatever it finds: never a connection.
func TestHookClientConfigECH(t *testing.T) {
	srv := newIdentity("server")
	list, key := echKeys(t, "public.example")
	for _, tt := range []struct {
		name     string
		pin      string
		echKeys  bool // the server decrypts ECH
		hookLate bool // the ECH list is set after the hook
		ok       bool
	}{
		{"accepted", srv.spki, true, false, true},
		{"accepted, list set after the hook", srv.spki, true, true, true},
		{"accepted, wrong pin", newIdentity("other").spki, true, false, false},
		{"rejected by the server", srv.spki, false, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := start(t, []string{"spkipin:pin=" + tt.pin})
			scfg := &tls.Config{Certificates: []tls.Certificate{srv.cert}}
			if tt.echKeys {
				scfg.EncryptedClientHelloKeys = []tls.EncryptedClientHelloKey{key}
			}
			ccfg := &tls.Config{}
			if !tt.hookLate {
				ccfg.EncryptedClientHelloConfigList = list
			}
			ccfg = v.HookClientConfig(ccfg, "localhost")
			ccfg.EncryptedClientHelloConfigList = list
			cs, cerr, _ := handshakeOverTCP(t, ccfg, scfg)
			if tt.ok {
				if cerr != nil || !cs.ECHAccepted {
					t.Fatalf("handshake: %v (ECH accepted: %v); want success with ECH", cerr, cs.ECHAccepted)
				}
				return
			}
			if cerr == nil {
				t.Fatal("handshake succeeded; want the server refused")
			}
			if tt.echKeys && !errors.Is(cerr, tlspin.ErrRejected) {
				t.Errorf("handshake: %v; want ErrRejected", cerr)
			}
		})
	}
}

// TestHookServerConfigClientAuth: whatever ClientAuth a program sets on
// the configuration it hooks, before the hook or after, with the chooser
// replaced after it or not, a client without a certificate is refused,
// over TLS 1.2 and 1.3.
func TestHookServerConfigClientAuth(t *testing.T) {
	srv, client := newIdentity("server"), newIdentity("client")
	v := start(t, []string{"spkipin:pin=" + client.spki})
	auths := []tls.ClientAuthType{tls.NoClientCert, tls.RequestClientCert, tls.VerifyClientCertIfGiven}
	for _, vers := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		for _, auth := range auths {
			for _, how := range []string{"before", "after", "after, chooser gone"} {
				t.Run(tls.VersionName(vers)+"/"+auth.String()+"/"+how, func(t *testing.T) {
					scfg := &tls.Config{Certificates: []tls.Certificate{srv.cert}}
					if how == "before" {
						scfg.ClientAuth = auth
					}
					scfg = v.HookServerConfig(scfg)
					if how != "before" {
						scfg.ClientAuth = auth
					}
					if how == "after, chooser gone" {
						scfg.GetConfigForClient = nil
					}
					ccfg := &tls.Config{InsecureSkipVerify: true, MaxVersion: vers}
					_, cerr, serr := handshakeOverTCP(t, ccfg, scfg)
					if serr == nil || cerr == nil {
						t.Fatalf("client without a certificate: server %v, client %v; want refused", serr, cerr)
					}
					if how == "after, chooser gone" && !errors.Is(serr, tlspin.ErrRejected) {
						t.Errorf("server: %v; want the verifiers' ErrRejected", serr)
					}
				})
			}
		}
	}
}

// quicHandshake runs a QUIC TLS handshake between client and server
// configurations in memory, and returns each side's error.
func quicHandshake(t *testing.T, client, server *tls.Config) (cerr, serr error) {
	t.Helper()
	cli := tls.QUICClient(&tls.QUICConfig{TLSConfig: client})
	srv := tls.QUICServer(&tls.QUICConfig{TLSConfig: server})
	defer cli.Close()
	defer srv.Close()
	return quicRun(t, cli, srv, nil)
}

// quicRun starts cli and srv and runs their handshake, telling seen of
// every event, and returns each side's error.
func quicRun(t *testing.T, cli, srv *tls.QUICConn, seen func(from *tls.QUICConn, ev tls.QUICEvent)) (cerr, serr error) {
	t.Helper()
	ctx := context.Background()
	cli.SetTransportParameters(nil)
	if err := cli.Start(ctx); err != nil {
		return err, nil
	}
	if err := srv.Start(ctx); err != nil {
		return nil, err
	}
	done := map[*tls.QUICConn]bool{}
	for range 100 {
		for _, p := range [][2]*tls.QUICConn{{cli, srv}, {srv, cli}} {
			if failed, err := quicStep(p[0], p[1], done, seen); err != nil {
				if failed == cli {
					return err, nil
				}
				return nil, err
			}
		}
		if done[cli] && done[srv] {
			return nil, nil
		}
	}
	t.Fatal("QUIC handshake did not end")
	return nil, nil
}

// quicStep hands what from has to say to to, until from has nothing
// more, telling seen (if not nil) of each event; it returns the side
// that failed, and its error.
func quicStep(from, to *tls.QUICConn, done map[*tls.QUICConn]bool, seen func(*tls.QUICConn, tls.QUICEvent)) (*tls.QUICConn, error) {
	for {
		ev := from.NextEvent()
		if seen != nil && ev.Kind != tls.QUICNoEvent {
			seen(from, ev)
		}
		switch ev.Kind {
		case tls.QUICNoEvent:
			return nil, nil
		case tls.QUICErrorEvent:
			return from, ev.Err
		case tls.QUICHandshakeDone:
			done[from] = true
		case tls.QUICTransportParametersRequired:
			from.SetTransportParameters(nil)
		case tls.QUICWriteData:
			if err := to.HandleData(ev.Level, ev.Data); err != nil {
				return to, err
			}
		}
	}
}

// TestHookQUIC: a hooked configuration given to crypto/tls's QUIC
// (tls.QUICClient, tls.QUICServer) has its peer decided by the verifiers
// as over TCP.
func TestHookQUIC(t *testing.T) {
	srv, good, bad := newIdentity("server"), newIdentity("good"), newIdentity("bad")
	v := start(t, []string{"spkipin:pin=" + srv.spki, "spkipin:pin=" + good.spki}, tlspin.WithRequire(tlspin.RequireAny))
	plain := func(id *identity) *tls.Config {
		c := &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, ServerName: "localhost"}
		if id != nil {
			c.Certificates = []tls.Certificate{id.cert}
		}
		return c
	}
	hookedClient := func() *tls.Config {
		return v.HookClientConfig(&tls.Config{MinVersion: tls.VersionTLS13}, "localhost")
	}
	hookedServer := func(id identity) *tls.Config {
		return v.HookServerConfig(&tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{id.cert}})
	}
	for _, tt := range []struct {
		name           string
		client, server *tls.Config
		fails          string // the side that refuses its peer, if any
		verifiers      bool   // the verifiers refuse it (ErrRejected)
	}{
		{"client, pinned server", hookedClient(), plain(&srv), "", false},
		{"client, other server", hookedClient(), plain(&bad), "client", true},
		{"server, pinned client", plain(&good), hookedServer(srv), "", false},
		{"server, other client", plain(&bad), hookedServer(srv), "server", true},
		// crypto/tls refuses it itself: the hook requires a certificate.
		{"server, client without a certificate", plain(nil), hookedServer(srv), "server", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cerr, serr := quicHandshake(t, tt.client, tt.server)
			err := map[string]error{"client": cerr, "server": serr}[tt.fails]
			switch {
			case tt.fails == "" && (cerr != nil || serr != nil):
				t.Errorf("client %v, server %v; want both done", cerr, serr)
			case tt.fails != "" && err == nil:
				t.Errorf("client %v, server %v; want the %s to refuse its peer", cerr, serr, tt.fails)
			case tt.verifiers && !errors.Is(err, tlspin.ErrRejected):
				t.Errorf("%s: %v; want ErrRejected", tt.fails, err)
			}
		})
	}
}

// TestHookQUICEarlyData: a QUIC client whose pin was removed after it got
// a ticket is refused when it resumes (ErrRejected), 0-RTT offered or
// not. But a server that issued the ticket allowing 0-RTT
// (SendSessionTicket with EarlyData, quic-go's Allow0RTT) has crypto/tls
// install the client's early-data keys when it resumes, before
// VerifyConnection: its 0-RTT data can be read before the verifiers
// refuse it, which is why HookServerConfig's documentation says not to
// allow 0-RTT. The test logs whether that still happens.
func TestHookQUICEarlyData(t *testing.T) {
	srv, good := newIdentity("server"), newIdentity("good")
	before := start(t, []string{"spkipin:pin=" + good.spki})
	after := start(t, []string{"spkipin:pin=" + newIdentity("other").spki})
	key := [32]byte{1}
	hooked := func(v *tlspin.Verifiers) *tls.Config {
		c := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{srv.cert}, NextProtos: []string{"h3"}}
		c.SetSessionTicketKeys([][32]byte{key})
		return v.HookServerConfig(c)
	}
	ccfg := &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, ServerName: "localhost",
		Certificates: []tls.Certificate{good.cert}, ClientSessionCache: tls.NewLRUClientSessionCache(1), NextProtos: []string{"h3"}}

	cli, s := tls.QUICClient(&tls.QUICConfig{TLSConfig: ccfg}), tls.QUICServer(&tls.QUICConfig{TLSConfig: hooked(before)})
	defer cli.Close()
	defer s.Close()
	if cerr, serr := quicRun(t, cli, s, nil); cerr != nil || serr != nil {
		t.Fatalf("first handshake: client %v, server %v", cerr, serr)
	}
	if err := s.SendSessionTicket(tls.QUICSessionTicketOptions{EarlyData: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := quicStep(s, cli, map[*tls.QUICConn]bool{}, nil); err != nil {
		t.Fatal(err)
	}

	cli2, s2 := tls.QUICClient(&tls.QUICConfig{TLSConfig: ccfg}), tls.QUICServer(&tls.QUICConfig{TLSConfig: hooked(after)})
	defer cli2.Close()
	defer s2.Close()
	early := false
	_, serr := quicRun(t, cli2, s2, func(from *tls.QUICConn, ev tls.QUICEvent) {
		if from == s2 && ev.Kind == tls.QUICSetReadSecret && ev.Level == tls.QUICEncryptionLevelEarly {
			early = true
		}
	})
	if !errors.Is(serr, tlspin.ErrRejected) {
		t.Fatalf("resumed handshake of a client no longer pinned: server %v; want ErrRejected", serr)
	}
	t.Logf("0-RTT keys installed before the verifiers refused the client: %v", early)
}

// TestHookServerConfigResumption: a client that resumes, over TLS 1.2 or
// 1.3, a session a hooked server gave it is asked about again: refused
// (ErrRejected) once its pin is gone, though crypto/tls itself would
// resume it without looking at its certificate.
func TestHookServerConfigResumption(t *testing.T) {
	srv, client := newIdentity("server"), newIdentity("client")
	pinned := start(t, []string{"spkipin:pin=" + client.spki})
	removed := start(t, []string{"spkipin:pin=" + newIdentity("other").spki})
	for _, vers := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(vers), func(t *testing.T) {
			hooked := func(v *tlspin.Verifiers) *tls.Config {
				c := &tls.Config{Certificates: []tls.Certificate{srv.cert}, MaxVersion: vers}
				c.SetSessionTicketKeys([][32]byte{{byte(vers)}})
				return v.HookServerConfig(c)
			}
			ccfg := &tls.Config{InsecureSkipVerify: true, ServerName: "localhost", Certificates: []tls.Certificate{client.cert},
				ClientSessionCache: tls.NewLRUClientSessionCache(1)}
			for i, tt := range []struct {
				v              *tlspin.Verifiers
				resumed, allow bool
			}{{pinned, false, true}, {pinned, true, true}, {removed, true, false}} {
				cs, cerr, serr := handshakeOverTCP(t, ccfg, hooked(tt.v))
				switch {
				case tt.allow && (cerr != nil || serr != nil || cs.DidResume != tt.resumed):
					t.Fatalf("handshake %d: client %v, server %v, resumed %v; want allowed, resumed %v", i, cerr, serr, cs.DidResume, tt.resumed)
				case !tt.allow && !errors.Is(serr, tlspin.ErrRejected):
					t.Fatalf("handshake %d, the pin removed: server %v; want ErrRejected", i, serr)
				}
			}
		})
	}
}
