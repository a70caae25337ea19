package tlspin_test

import (
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
