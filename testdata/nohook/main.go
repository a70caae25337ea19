// Command nohook starts the verifier spec given as its argument without
// calling tlspin.ServeBuiltin, to test where built-in verifiers then come
// from.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/tlspin/tlspin"
)

func main() {
	v, err := tlspin.Start(context.Background(), os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	v.Close()
	fmt.Println("started")
}
