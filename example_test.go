package tlspin_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tlspin/tlspin"
)

// An HTTPS client that trusts exactly one public key, checked by the
// spkipin verifier running as a child process.
func ExampleStart() {
	ctx := context.Background()
	server := newIdentity("api.internal")
	srv := httpsServer(server)
	defer srv.Close()

	v, err := tlspin.Start(ctx, "spkipin:pin="+server.spki)
	fatalIf(err)
	defer v.Close()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: v.ClientConfig("localhost")}}
	out, err := get(client, srv.URL)
	fatalIf(err)
	fmt.Println(out)
	// Output: 200 OK hello
}

// A server presenting another certificate is rejected during the
// handshake; the error says which verifier said what.
func ExampleStart_rejected() {
	ctx := context.Background()
	srv := httpsServer(newIdentity("impostor"))
	defer srv.Close()

	v, err := tlspin.Start(ctx, "md5pin:pin=00112233445566778899aabbccddeeff")
	fatalIf(err)
	defer v.Close()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: v.ClientConfig("localhost")}}
	_, err = client.Get(srv.URL)
	var rej *tlspin.RejectionError
	if errors.As(err, &rej) {
		fmt.Println(errors.Is(err, tlspin.ErrRejected), rej.Peer, rej.Verdicts[0].Verifier, rej.Verdicts[0].Allowed)
	}
	// Output: true server md5pin false
}

// Several verifiers, with options: any one of them allowing is enough.
func ExampleStartWith() {
	ctx := context.Background()
	server := newIdentity("api.internal")
	srv := httpsServer(server)
	defer srv.Close()

	v, err := tlspin.StartWith(ctx, []string{"md5pin:pin=00112233445566778899aabbccddeeff"},
		tlspin.WithVerifier("sha256pin", map[string][]string{"pin": {server.sha}}),
		tlspin.WithRequire(tlspin.RequireAny))
	fatalIf(err)
	defer v.Close()
	fmt.Println(v.Names())
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: v.ClientConfig("localhost")}}
	out, err := get(client, srv.URL)
	fatalIf(err)
	fmt.Println(out)
	// Output:
	// [md5pin sha256pin]
	// 200 OK hello
}

// ClientConfig fits any crypto/tls client; here a raw connection.
func ExampleVerifiers_ClientConfig() {
	ctx := context.Background()
	server := newIdentity("db.internal")
	srv := httpsServer(server)
	defer srv.Close()

	v, err := tlspin.Start(ctx, "sha256pin:pin="+server.sha)
	fatalIf(err)
	defer v.Close()
	conn, err := tls.Dial("tcp", srv.Listener.Addr().String(), v.ClientConfig("localhost"))
	fatalIf(err)
	defer conn.Close()
	fmt.Println("verified:", len(conn.ConnectionState().PeerCertificates), "certificate")
	// Output: verified: 1 certificate
}

// ServerConfig makes a mutual-TLS server: only a client presenting the
// pinned certificate gets through.
func ExampleVerifiers_ServerConfig() {
	ctx := context.Background()
	server, client := newIdentity("server"), newIdentity("client")

	// The server trusts the client's key...
	sv, err := tlspin.Start(ctx, "spkipin:pin="+client.spki)
	fatalIf(err)
	defer sv.Close()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", sv.ServerConfig(server.cert))
	fatalIf(err)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if c.(*tls.Conn).Handshake() == nil {
					io.WriteString(c, "welcome\n")
				}
			}()
		}
	}()

	// ...and the client trusts the server's.
	cv, err := tlspin.Start(ctx, "spkipin:pin="+server.spki)
	fatalIf(err)
	defer cv.Close()
	cfg := cv.ClientConfig("localhost")
	cfg.Certificates = []tls.Certificate{client.cert}
	conn, err := tls.Dial("tcp", ln.Addr().String(), cfg)
	fatalIf(err)
	defer conn.Close()
	line, err := io.ReadAll(conn)
	fatalIf(err)
	fmt.Print(strings.ToUpper(string(line)))
	// Output: WELCOME
}

// Dial knows the address it dials, so tofu records the server as
// HOST:PORT, as the tlspin command does; it fits http.Transport.
func ExampleVerifiers_Dial() {
	ctx := context.Background()
	srv := httpsServer(newIdentity("first-contact"))
	defer srv.Close()

	dir := tempDir()
	defer os.RemoveAll(dir)
	v, err := tlspin.Start(ctx, "tofu:file="+dir+"/known_pins")
	fatalIf(err)
	defer v.Close()
	client := &http.Client{Transport: &http.Transport{DialTLSContext: v.Dial}}
	out, err := get(client, localhostURL(srv))
	fatalIf(err)
	fmt.Println(out)
	// Output: 200 OK hello
}

// ClientConfigForAddr is for a program that dials and handshakes itself:
// once the handshake has succeeded, confirm, given the connection, lets
// tofu record the server as HOST:PORT. Never call it after a failed
// handshake (a deferred call would be): the server has not proved it
// holds its key, and confirm refuses, recording nothing.
func ExampleVerifiers_ClientConfigForAddr() {
	ctx := context.Background()
	srv := httpsServer(newIdentity("first-contact"))
	defer srv.Close()

	dir := tempDir()
	defer os.RemoveAll(dir)
	v, err := tlspin.Start(ctx, "tofu:file="+dir+"/known_pins")
	fatalIf(err)
	defer v.Close()
	addr := strings.TrimPrefix(localhostURL(srv), "https://")
	cfg, confirm := v.ClientConfigForAddr("localhost", addr)
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	fatalIf(err)
	conn := tls.Client(raw, cfg)
	defer conn.Close()
	if err := conn.HandshakeContext(ctx); err != nil {
		fatalIf(err) // no confirm: nothing is recorded
	}
	if err := confirm(ctx, conn); err != nil {
		fatalIf(err) // a first use that could not be recorded: close it unused
	}
	pins, err := os.ReadFile(filepath.Join(dir, "known_pins"))
	fatalIf(err)
	fmt.Println(strings.Contains(string(pins), addr+" spki:"))
	// Output: true
}

// Listen serves mutual TLS: Accept returns only connections whose client
// presented a certificate the verifiers allow. It fits http.Serve, and
// records a tofu first use once the handshake has succeeded.
func ExampleVerifiers_Listen() {
	ctx := context.Background()
	server, client := newIdentity("server"), newIdentity("client")

	v, err := tlspin.Start(ctx, "spkipin:pin="+client.spki)
	fatalIf(err)
	defer v.Close()
	ln, err := v.Listen("tcp", "127.0.0.1:0", server.cert)
	fatalIf(err)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept() // verified: the handshake is done
			if err != nil {
				return
			}
			io.WriteString(c, "welcome\n")
			c.Close()
		}
	}()

	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{
		InsecureSkipVerify: true, // this client checks nothing; see ClientConfig
		Certificates:       []tls.Certificate{client.cert},
	})
	fatalIf(err)
	defer conn.Close()
	line, err := io.ReadAll(conn)
	fatalIf(err)
	fmt.Print(string(line))
	// Output: welcome
}

// Mutual TLS between two programs of this library: the client, started
// WithClientCertificate, pins the server and presents its own certificate,
// which the server's Listen pins in turn.
func ExampleWithClientCertificate() {
	ctx := context.Background()
	server, client := newIdentity("server"), newIdentity("client")

	sv, err := tlspin.Start(ctx, "spkipin:pin="+client.spki)
	fatalIf(err)
	defer sv.Close()
	ln, err := sv.Listen("tcp", "127.0.0.1:0", server.cert)
	fatalIf(err)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "welcome, client\n")
			c.Close()
		}
	}()

	// client.cert would come from tls.LoadX509KeyPair(certFile, keyFile).
	cv, err := tlspin.StartWith(ctx, []string{"spkipin:pin=" + server.spki}, tlspin.WithClientCertificate(client.cert))
	fatalIf(err)
	defer cv.Close()
	conn, err := cv.Dial(ctx, "tcp", ln.Addr().String())
	fatalIf(err)
	defer conn.Close()
	line, err := io.ReadAll(conn)
	fatalIf(err)
	fmt.Print(string(line))
	// Output: welcome, client
}

// Check decides on a certificate chain without a handshake (read from a
// file, say), as the verifiers would decide on a peer presenting it.
func ExampleVerifiers_Check() {
	ctx := context.Background()
	server, other := newIdentity("server"), newIdentity("other")

	v, err := tlspin.Start(ctx, "spkipin:pin="+server.spki)
	fatalIf(err)
	defer v.Close()
	verdicts, err := v.Check(ctx, tlspin.Peer{Chain: server.cert.Certificate, ServerName: "localhost"})
	fatalIf(err)
	fmt.Println(verdicts[0].Verifier, verdicts[0].Allowed)
	_, err = v.Check(ctx, tlspin.Peer{Chain: other.cert.Certificate, ServerName: "localhost"})
	fmt.Println(errors.Is(err, tlspin.ErrRejected))
	// Output:
	// spkipin true
	// true
}

// Watch closes a connection made with a configuration (here the
// program's own tls.Server) once the verifiers no longer allow its peer:
// the client's line is removed from the allowlist while it is connected.
// (Dial's and Listen's connections are watched without asking.)
func ExampleVerifiers_Watch() {
	ctx := context.Background()
	server, client := newIdentity("server"), newIdentity("client")
	dir := tempDir()
	defer os.RemoveAll(dir)
	list := filepath.Join(dir, "allowed")
	fatalIf(os.WriteFile(list, []byte("spki:"+strings.TrimPrefix(client.spki, "sha256//")+"\n"), 0o600))

	v, err := tlspin.Start(ctx, "allowlist:file="+list)
	fatalIf(err)
	defer v.Close()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", v.ServerConfig(server.cert))
	fatalIf(err)
	defer ln.Close()
	revoked := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		since := time.Now() // before the handshake: a change during it is not missed
		if tc.Handshake() != nil {
			return
		}
		peer := tlspin.PeerOf(tc.ConnectionState(), true, c.RemoteAddr().String(), "")
		stop := v.Watch(peer, since, func(err error) {
			tc.NetConn().Close() // revoked must not block: no close_notify
			revoked <- err
		})
		defer stop()
		io.WriteString(c, "welcome\n")
		io.Copy(io.Discard, c)
	}()

	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{
		InsecureSkipVerify: true, // this client checks nothing; see ClientConfig
		Certificates:       []tls.Certificate{client.cert},
	})
	fatalIf(err)
	defer conn.Close()
	_, err = bufio.NewReader(conn).ReadString('\n') // allowed and watched
	fatalIf(err)
	fatalIf(os.WriteFile(list, []byte("# nobody\n"), 0o600))
	select {
	case err := <-revoked:
		fmt.Println(errors.Is(err, tlspin.ErrRejected))
	case <-time.After(10 * time.Second):
		fmt.Println("still open")
	}
	// Output: true
}
