// Command rawplugin is the smallest verifier plugin that speaks go-plugin's
// protocol without go-plugin, so that the wire tests can leave out one
// piece at a time. $RAWPLUGIN lists what it does, comma-separated:
//
//	controller  serve plugin.GRPCController/Shutdown (exit when asked)
//	deaf        serve plugin.GRPCController/Shutdown, answer it and go on
//	            running (the host must kill it); with $RAWPLUGIN_STOPS
//	            set, first create a file named by its pid in that directory
//	stdio       serve plugin.GRPCStdio/StreamStdio (open, silent)
//	health      serve grpc.health.v1.Health
//	san         certificate with DNS SAN localhost (else CN=localhost only)
//	nocert      no certificate in the handshake line (serve TLS anyway)
//	stdout      write a line to stdout in every Verify, after the handshake
//
// Describe's summary is the magic cookie value it was started with.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/tlspin/tlspin/core/certs"
	verifierv1 "github.com/tlspin/tlspin/proto/verifier/v1"
)

// StdoutMarker is what the stdout mode writes after the handshake.
const StdoutMarker = "RAWPLUGIN-STDOUT-AFTER-HANDSHAKE"

type verifier struct {
	verifierv1.UnimplementedVerifierServer
	stdout bool
}

func (v *verifier) Describe(context.Context, *verifierv1.DescribeRequest) (*verifierv1.DescribeResponse, error) {
	return &verifierv1.DescribeResponse{Name: "raw", Version: "1", Summary: os.Getenv("TLSPIN_VERIFIER_PLUGIN")}, nil
}

func (v *verifier) Configure(context.Context, *verifierv1.ConfigureRequest) (*verifierv1.ConfigureResponse, error) {
	return &verifierv1.ConfigureResponse{}, nil
}

func (v *verifier) Verify(_ context.Context, r *verifierv1.VerifyRequest) (*verifierv1.VerifyResponse, error) {
	if v.stdout {
		fmt.Println(StdoutMarker)
	}
	return &verifierv1.VerifyResponse{Allow: len(r.GetPeerChain()) > 0, Reason: "raw"}, nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "rawplugin:", err)
		os.Exit(1)
	}
}

func run() error {
	mode := map[string]bool{}
	for _, m := range strings.Split(os.Getenv("RAWPLUGIN"), ",") {
		mode[m] = true
	}
	// A Linux host sends no certificate: plain gRPC (the host checks the
	// socket's process with the kernel). Elsewhere, AutoMTLS.
	var (
		opts      []grpc.ServerOption
		announced string
	)
	if pem := os.Getenv("PLUGIN_CLIENT_CERT"); pem != "" {
		host, err := certs.ParseCertificates([]byte(pem))
		if err != nil {
			return err
		}
		tpl := certs.Template{Type: certs.ECDSA, CommonName: "localhost", IsCA: true}
		if mode["san"] {
			tpl.SANs = []string{"localhost"}
		}
		key, cert, err := certs.SelfSigned(tpl)
		if err != nil {
			return err
		}
		clients := x509.NewCertPool()
		clients.AddCert(host[0])
		opts = append(opts, grpc.Creds(credentials.NewTLS(&tls.Config{
			Certificates: []tls.Certificate{{Certificate: [][]byte{cert.Raw}, PrivateKey: key}},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    clients,
			MinVersion:   tls.VersionTLS12,
		})))
		if !mode["nocert"] {
			announced = base64.RawStdEncoding.EncodeToString(cert.Raw)
		}
	}
	s := grpc.NewServer(opts...)
	verifierv1.RegisterVerifierServer(s, &verifier{stdout: mode["stdout"]})
	if mode["health"] {
		h := health.NewServer()
		h.SetServingStatus("plugin", grpc_health_v1.HealthCheckResponse_SERVING)
		grpc_health_v1.RegisterHealthServer(s, h)
	}
	// controller: Shutdown stops the server, as go-plugin's does; deaf:
	// Shutdown is answered and the plugin keeps running, leaving a file
	// named by its pid in $RAWPLUGIN_STOPS to say it was asked.
	if mode["controller"] || mode["deaf"] {
		s.RegisterService(&grpc.ServiceDesc{
			ServiceName: "plugin.GRPCController",
			HandlerType: (*any)(nil),
			Methods: []grpc.MethodDesc{{MethodName: "Shutdown", Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				if err := dec(&emptypb.Empty{}); err != nil {
					return nil, err
				}
				if !mode["deaf"] {
					go s.Stop()
					return &emptypb.Empty{}, nil
				}
				if dir := os.Getenv("RAWPLUGIN_STOPS"); dir != "" {
					if err := os.WriteFile(filepath.Join(dir, strconv.Itoa(os.Getpid())), nil, 0o600); err != nil {
						return nil, err
					}
				}
				return &emptypb.Empty{}, nil
			}}},
		}, struct{}{})
	}
	if mode["stdio"] {
		s.RegisterService(&grpc.ServiceDesc{
			ServiceName: "plugin.GRPCStdio",
			HandlerType: (*any)(nil),
			Streams: []grpc.StreamDesc{{StreamName: "StreamStdio", ServerStreams: true, Handler: func(_ any, st grpc.ServerStream) error {
				<-st.Context().Done()
				return nil
			}}},
		}, struct{}{})
	}
	dir, err := os.MkdirTemp("", "rawplugin-")
	if err != nil {
		return err
	}
	if mode["opendir"] {
		if err := os.Chmod(dir, 0o755); err != nil {
			return err
		}
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "plugin.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return err
	}
	fmt.Printf("1|1|unix|%s|grpc|%s\n", sock, announced)
	return s.Serve(ln)
}
