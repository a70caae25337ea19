package cli_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/tlspin/tlspin/internal/testbin"
	"github.com/tlspin/tlspin/internal/testpy"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testbin.Cleanup()
	testpy.Cleanup()
	os.Exit(code)
}

// TestScripts runs the CLI end to end from testdata/script/*.txtar, with
// the real tlspin binary (built once) on $PATH, so that built-in verifiers
// run as real plugin processes.
func TestScripts(t *testing.T) {
	bin := testbin.Tlspin(t)
	plugins := filepath.Dir(testbin.Build(t, "./cmd/tlspin/cli/testdata/plugins/misbehave", "tlspin-verifier-misbehave"))
	// The Python example runs with the Python SDK installed (pip, in a
	// virtual environment), as its README says.
	pyPlugins := t.TempDir()
	if ok, _ := havePythonGRPC(); ok {
		testpy.Plugin(t, "../../../examples/python-verifier/tlspin-verifier-pyspki", pyPlugins)
	}
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("PATH", filepath.Dir(bin)+string(os.PathListSeparator)+env.Getenv("PATH"))
			env.Setenv("TESTPLUGINS", plugins)
			env.Setenv("TLSPIN_BIN", bin)
			env.Setenv("PYPLUGINS", pyPlugins)
			env.Setenv("HOME", env.WorkDir)
			env.Values[serversKey{}] = map[string]*server{}
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"startserve": cmdStartServe,
			"stopserve":  cmdStopServe,
			"waitfor":    cmdWaitFor,
			"plaintcp":   cmdPlainTCP,
			"freeport":   cmdFreePort,
			"tcpconnect": cmdTCPConnect,
			"waitexit":   cmdWaitExit,
		},
		Condition: func(cond string) (bool, error) {
			if cond == "pygrpc" {
				return havePythonGRPC()
			}
			name, ok := strings.CutPrefix(cond, "have:")
			if !ok {
				return false, fmt.Errorf("unknown condition %q", cond)
			}
			_, err := exec.LookPath(name)
			return err == nil, nil
		},
	})
}

var listening = regexp.MustCompile(`listening: addr=(\S+)`)

// servers are the background servers of one script.
type server struct {
	cmd  *exec.Cmd
	done chan error
}

// cmdStartServe runs `tlspin serve --listen 127.0.0.1:0 ARGS...` in the
// background as NAME, waits until it listens, and sets $ADDR (and
// $NAME_ADDR). Its stdout goes to NAME.out and stderr to NAME.err.
// Usage: startserve NAME ARGS...
func cmdStartServe(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 {
		ts.Fatalf("usage: startserve NAME ARGS...")
	}
	name := args[0]
	out, err := os.Create(ts.MkAbs(name + ".out"))
	ts.Check(err)
	errf, err := os.Create(ts.MkAbs(name + ".err"))
	ts.Check(err)
	cmd := exec.Command(ts.Getenv("TLSPIN_BIN"), append([]string{"serve", "--listen", "127.0.0.1:0"}, args[1:]...)...)
	cmd.Dir = ts.Getenv("WORK")
	cmd.Env = scriptEnv(ts)
	cmd.Stdout = out
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	ts.Check(cmd.Start())
	s := &server{cmd: cmd, done: make(chan error, 1)}
	go func() { s.done <- cmd.Wait(); pw.Close() }()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			fmt.Fprintln(errf, sc.Text())
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		errf.Close()
	}()
	select {
	case a := <-addr:
		ts.Setenv("ADDR", a)
		ts.Setenv(strings.ToUpper(name)+"_ADDR", a)
	case err := <-s.done:
		ts.Fatalf("server %s exited before listening: %v", name, err)
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		ts.Fatalf("server %s did not listen within 30s", name)
	}
	ts.Defer(func() {
		cmd.Process.Kill()
		<-s.done
	})
	serversOf(ts)[name] = s
}

// serversKey holds a script's background servers in its Values.
type serversKey struct{}

func serversOf(ts *testscript.TestScript) map[string]*server {
	return ts.Value(serversKey{}).(map[string]*server)
}

// cmdStopServe sends SIGTERM to server NAME and waits for it to exit 0
// (or, negated, non-zero). Usage: stopserve NAME
func cmdStopServe(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: stopserve NAME")
	}
	s := serverNamed(ts, args[0])
	ts.Check(s.cmd.Process.Signal(syscall.SIGTERM))
	awaitExit(ts, s, args[0], neg, "of SIGTERM")
}

// serverNamed returns the background server NAME.
func serverNamed(ts *testscript.TestScript, name string) *server {
	s, ok := serversOf(ts)[name]
	if !ok {
		ts.Fatalf("no server %s", name)
	}
	return s
}

// awaitExit waits for s to exit 0 (or, negated, non-zero) within 30s.
func awaitExit(ts *testscript.TestScript, s *server, name string, neg bool, what string) {
	select {
	case err := <-s.done:
		s.done <- err
		if (err != nil) != neg {
			ts.Fatalf("server %s exited with %v", name, err)
		}
	case <-time.After(30 * time.Second):
		ts.Fatalf("server %s did not exit within 30s %s", name, what)
	}
}

// cmdWaitFor polls FILE until it contains TEXT, for at most 10s.
// Usage: waitfor FILE TEXT
func cmdWaitFor(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: waitfor FILE TEXT")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(ts.MkAbs(args[0]))
		if strings.Contains(string(b), args[1]) {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("%s does not contain %q after 10s; it holds:\n%s", args[0], args[1], b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cmdPlainTCP starts a plain TCP server (not TLS) on loopback that
// answers every connection with an HTTP error, and sets $PLAIN_ADDR.
func cmdPlainTCP(ts *testscript.TestScript, neg bool, args []string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("HTTP/1.0 400 Bad Request\r\n\r\n"))
			c.Close()
		}
	}()
	ts.Defer(func() { ln.Close() })
	ts.Setenv("PLAIN_ADDR", ln.Addr().String())
}

// cmdTCPConnect opens a TCP connection to ADDR and closes it without a
// byte sent. Usage: tcpconnect ADDR
func cmdTCPConnect(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: tcpconnect ADDR")
	}
	c, err := net.DialTimeout("tcp", args[0], 5*time.Second)
	ts.Check(err)
	ts.Check(c.Close())
}

// cmdWaitExit waits for server NAME to exit on its own with status 0 (or,
// negated, non-zero), for at most 30s. Usage: waitexit NAME
func cmdWaitExit(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: waitexit NAME")
	}
	awaitExit(ts, serverNamed(ts, args[0]), args[0], neg, "on its own")
}

// cmdFreePort sets $FREE_ADDR to a loopback address nobody listens on.
func cmdFreePort(ts *testscript.TestScript, neg bool, args []string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	ts.Setenv("FREE_ADDR", ln.Addr().String())
	ln.Close()
}

func scriptEnv(ts *testscript.TestScript) []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "WORK", "TESTPLUGINS"} {
		env = append(env, k+"="+ts.Getenv(k))
	}
	return env
}

// havePythonGRPC reports whether Debian's python3 has the gRPC modules the
// Python verifier example needs. In CI they must be there.
func havePythonGRPC() (bool, error) {
	err := exec.Command(testpy.System, "-c", "import grpc, google.protobuf, cryptography, pip").Run()
	if err != nil && os.Getenv("CI") != "" {
		return false, fmt.Errorf("CI lacks python3 gRPC modules (.ci/run installs them): %v", err)
	}
	return err == nil, nil
}
