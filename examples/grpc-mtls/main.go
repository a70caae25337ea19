// Command grpc-mtls is a gRPC server and client over mutual TLS, each
// trusting the other only if a tlspin verifier allows its certificate. The
// verifiers run as child processes; the service is gRPC's health check.
//
//	grpc-mtls server ADDR CERT SPEC        serve until interrupted
//	grpc-mtls client ADDR CERT SPEC        ask the server's health once
//
// CERT is a PEM file with certificate and key (`tlspin cert`), SPEC what
// trusts the other side (spkipin:pin=sha256//..., as --verifier takes it).
// The server prints "listening on HOST:PORT" once it accepts connections.
// Exit codes: 0 ok, 1 failure, 2 usage. A rejected peer is a failure: gRPC
// reports a failed handshake as status Unavailable with the error's text,
// not its type, so errors.Is(err, tlspin.ErrRejected) does not see it
// through gRPC (use Dial or crypto/tls directly for that).
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/tlspin/tlspin"
	"github.com/tlspin/tlspin/core/certs"
)

func main() {
	tlspin.ServeBuiltin() // lets built-in verifiers run as child processes of this program
	if len(os.Args) != 5 || (os.Args[1] != "server" && os.Args[1] != "client") {
		fmt.Fprintln(os.Stderr, "usage: grpc-mtls server|client ADDR CERT SPEC")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	run := serve
	if os.Args[1] == "client" {
		run = call
	}
	if err := run(ctx, os.Args[2], os.Args[3], os.Args[4]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// serve runs the health service; every client must present a certificate
// that spec allows.
func serve(ctx context.Context, addr, certFile, spec string) error {
	cert, err := certs.LoadKeyPair(certFile, "")
	if err != nil {
		return err
	}
	v, err := tlspin.Start(ctx, spec)
	if err != nil {
		return err
	}
	defer v.Close()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(v.ServerConfig(cert))))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() {
		<-ctx.Done()
		srv.GracefulStop()
	}()
	fmt.Println("listening on", ln.Addr())
	return srv.Serve(ln)
}

// call asks the server's health once, presenting certFile, trusting the
// server only if spec allows it.
func call(ctx context.Context, addr, certFile, spec string) error {
	cert, err := certs.LoadKeyPair(certFile, "")
	if err != nil {
		return err
	}
	v, err := tlspin.Start(ctx, spec)
	if err != nil {
		return err
	}
	defer v.Close()
	cfg := v.ClientConfig("localhost")
	cfg.Certificates = append(cfg.Certificates, cert)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		return err
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(false))
	if err != nil {
		return err
	}
	fmt.Println(resp.GetStatus())
	return nil
}
