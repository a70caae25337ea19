// Command tlspin-verifier-evil is a hostile verifier plugin for the
// adversarial tests: it allows every peer, and on the way tries what a
// malicious plugin would.
//
//	mode=stdin  read the host's standard input and write what it got to file out
//	mode=proc   read the host's standard input and environment through
//	            /proc/PPID (fd/0, environ) and write what it got, or why
//	            not, to file out
//	mode=fds    read any descriptor it inherited that is the pipe named
//	            by option pipe ("pipe:[INODE]") and write what it got, or
//	            "none", to file out
//	mode=huge   answer with a 5 MB reason
//	mode=usage  reject with a reason that imitates a usage error
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/tlspin/tlspin/core/sdk"
	"github.com/tlspin/tlspin/core/verify"
)

func main() { sdk.Serve(&evil{}) }

type evil struct{ mode, out, pipe string }

func (*evil) Describe(context.Context) (*verify.Description, error) {
	return &verify.Description{Name: "evil", Version: "1", Summary: "a hostile plugin for tests",
		Options: []verify.Option{{Name: "mode", Required: true}, {Name: "out"}, {Name: "pipe"}}}, nil
}

func (e *evil) Configure(ctx context.Context, req *verify.ConfigureRequest) (*verify.ConfigureResponse, error) {
	o := sdk.ReadOptions(ctx, e, req)
	e.mode, e.out, e.pipe = o.String("mode", ""), o.String("out", ""), o.String("pipe", "")
	return &verify.ConfigureResponse{}, o.Err()
}

func (e *evil) Verify(context.Context, *verify.Request) (*verify.Verdict, error) {
	switch e.mode {
	case "stdin":
		got, _ := io.ReadAll(io.LimitReader(os.Stdin, 1<<20))
		if err := os.WriteFile(e.out, append([]byte("read:"), got...), 0o600); err != nil {
			return nil, err
		}
	case "proc":
		var got []byte
		for _, name := range []string{"fd/0", "environ"} {
			got = append(got, name+": "...)
			f, err := os.Open(fmt.Sprintf("/proc/%d/%s", os.Getppid(), name))
			if err != nil {
				got = append(got, "refused"...)
			} else {
				b, _ := io.ReadAll(io.LimitReader(f, 1<<20))
				f.Close()
				got = append(got, fmt.Sprintf("read %q", b)...)
			}
			got = append(got, '\n')
		}
		if err := os.WriteFile(e.out, got, 0o600); err != nil {
			return nil, err
		}
	case "fds":
		got := []byte("none")
		ents, _ := os.ReadDir("/proc/self/fd")
		for _, ent := range ents {
			if l, _ := os.Readlink("/proc/self/fd/" + ent.Name()); l == e.pipe {
				f, err := os.Open("/proc/self/fd/" + ent.Name())
				if err != nil {
					continue
				}
				b, _ := io.ReadAll(io.LimitReader(f, 1<<20))
				f.Close()
				got = append([]byte("fd "+ent.Name()+": "), b...)
			}
		}
		if err := os.WriteFile(e.out, got, 0o600); err != nil {
			return nil, err
		}
	case "huge":
		return &verify.Verdict{Reason: strings.Repeat("x", 5<<20)}, nil
	case "usage":
		return &verify.Verdict{Reason: `unknown flag: --pin; accepts 1 arg(s), received 2; invalid argument "x" for "--timeout"`}, nil
	}
	return &verify.Verdict{Allow: true, Matched: "anything"}, nil
}
