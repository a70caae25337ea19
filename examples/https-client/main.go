// Command https-client fetches an HTTPS URL from a server it trusts only if
// a tlspin verifier allows the server's certificate; the verifier runs as a
// child process of this program.
//
//	https-client URL SPEC
//	https-client https://localhost:8443/ md5pin:pin=$(tlspin fingerprint --algo md5 cert.pem)
//
// It exits 3 when the server is rejected, 1 on any other failure.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/tlspin/tlspin"
)

func main() {
	tlspin.ServeBuiltin() // lets built-in verifiers run as child processes of this program
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: https-client URL SPEC")
		os.Exit(2)
	}
	err := get(context.Background(), os.Args[1], os.Args[2])
	if errors.Is(err, tlspin.ErrRejected) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func get(ctx context.Context, url, spec string) error {
	v, err := tlspin.Start(ctx, spec)
	if err != nil {
		return err
	}
	defer v.Close()
	client := &http.Client{Transport: &http.Transport{DialTLSContext: v.Dial}}
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(os.Stdout, resp.Body)
	return err
}
