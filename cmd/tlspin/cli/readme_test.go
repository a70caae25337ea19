package cli_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tlspin/tlspin/internal/syncbuf"
	"github.com/tlspin/tlspin/internal/testbin"
	"github.com/tlspin/tlspin/internal/wait"
)

// readmeBlocks returns the code blocks of README.md's step-by-step
// section: the server's terminal, then the client's.
func readmeBlocks(t *testing.T) (server, client []string) {
	t.Helper()
	data, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	i := strings.Index(s, "Step by step, exactly as a terminal shows it")
	if i < 0 {
		t.Fatal("README.md has no step-by-step section")
	}
	var blocks [][]string
	for _, part := range strings.Split(s[i:], "```")[1:] {
		if len(blocks) == 2 {
			break
		}
		if len(blocks) < 2 && strings.HasPrefix(part, "\n$ ") {
			blocks = append(blocks, strings.Split(strings.Trim(part, "\n"), "\n"))
		}
	}
	if len(blocks) != 2 {
		t.Fatalf("found %d code blocks in the step-by-step section, want 2", len(blocks))
	}
	return blocks[0], blocks[1]
}

var (
	timestamp = regexp.MustCompile(`\d{4}-\d\d-\d\dT[0-9:.]+Z`)
	loopback  = regexp.MustCompile(`(127\.0\.0\.1|localhost):\d+`)
	certLine  = regexp.MustCompile(`^(md5|sha256|spki) +(\S+)$`)
)

// normalize hides what changes from run to run: times and ports.
func normalize(lines []string) []string {
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		l = timestamp.ReplaceAllString(l, "TIME")
		l = loopback.ReplaceAllString(l, "${1}:PORT")
		if l = strings.TrimRight(l, " "); l != "" {
			out = append(out, l)
		}
	}
	slices.Sort(out) // stdout and stderr interleave as they will
	return out
}

// TestReadmeStepByStep runs the README's step-by-step commands with the
// real binary and checks that every line they print is the README's, once
// the pins of the README's certificate are replaced by this run's, and
// times and ports hidden.
func TestReadmeStepByStep(t *testing.T) {
	serverBlock, clientBlock := readmeBlocks(t)
	bin := testbin.Tlspin(t)
	dir := t.TempDir()
	env := append(os.Environ(), "PATH="+filepath.Dir(bin)+":"+os.Getenv("PATH"), "HOME="+dir)

	// Each block: commands, each followed by what it prints. The first
	// block makes the certificate, then starts the server; the second is
	// the client's.
	type step struct {
		cmd  string
		want []string
	}
	parse := func(block []string) []step {
		var steps []step
		for _, l := range block {
			if cmd, ok := strings.CutPrefix(l, "$ "); ok {
				steps = append(steps, step{cmd: cmd})
			} else if len(steps) > 0 {
				steps[len(steps)-1].want = append(steps[len(steps)-1].want, l)
			}
		}
		return steps
	}
	first, steps := parse(serverBlock), parse(clientBlock)
	if len(first) != 2 || !strings.HasPrefix(first[0].cmd, "tlspin cert ") || !strings.HasPrefix(first[1].cmd, "tlspin serve ") {
		t.Fatalf("the first block is not tlspin cert, then tlspin serve: %q", serverBlock)
	}
	certStep, serveStep := first[0], first[1]
	run := func(cmd string) ([]string, int) {
		c := exec.Command("sh", "-c", cmd)
		c.Dir, c.Env = dir, env
		var out bytes.Buffer
		c.Stdout, c.Stderr = &out, &out
		err := c.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		return strings.Split(out.String(), "\n"), code
	}

	// tlspin cert makes another key: map the README's pins to this run's.
	got, _ := run(certStep.cmd)
	var swaps []string
	for _, w := range certStep.want {
		m := certLine.FindStringSubmatch(w)
		if m == nil {
			continue
		}
		for _, g := range got {
			if n := certLine.FindStringSubmatch(g); n != nil && n[1] == m[1] {
				swaps = append(swaps, m[2], n[2])
			}
		}
	}
	if len(swaps) != 6 {
		t.Fatalf("tlspin cert printed %q; want md5, sha256 and spki lines as the README shows", got)
	}
	swap := strings.NewReplacer(swaps...)
	if g, w := normalize(got), normalize(strings.Split(swap.Replace(strings.Join(certStep.want, "\n")), "\n")); !slices.Equal(g, w) {
		t.Errorf("tlspin cert printed\n%q\nthe README shows\n%q", g, w)
	}

	// The server, on a free port instead of 8081.
	srv := exec.Command("sh", "-c", "exec "+serveStep.cmd+" --listen 127.0.0.1:0")
	srv.Dir, srv.Env = dir, env
	var sout syncbuf.Buffer
	srv.Stdout, srv.Stderr = &sout, &sout
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	listening := regexp.MustCompile(`listening: addr=127\.0\.0\.1:(\d+)`)
	var port string
	if !wait.Until(20*time.Second, func() bool {
		m := listening.FindStringSubmatch(sout.String())
		if m != nil {
			port = m[1]
		}
		return m != nil
	}) {
		t.Fatalf("serve did not listen:\n%s", sout.String())
	}

	last := 0
	for _, s := range steps {
		cmd := strings.ReplaceAll(swap.Replace(s.cmd), "localhost:8081", "localhost:"+port)
		var got []string
		if cmd == "echo $?" {
			got = []string{strconv.Itoa(last)}
		} else {
			got, last = run(cmd)
		}
		want := strings.Split(swap.Replace(strings.Join(s.want, "\n")), "\n")
		if g, w := normalize(got), normalize(want); !slices.Equal(g, w) {
			t.Errorf("$ %s\nprinted\n%q\nthe README shows\n%q", s.cmd, g, w)
		}
	}

	// Every line the server's block shows, in any order with its stderr.
	want := normalize(serveStep.want)
	if !wait.Until(10*time.Second, func() bool { return len(normalize(strings.Split(sout.String(), "\n"))) >= len(want) }) {
		t.Fatalf("serve printed\n%s", sout.String())
	}
	if g := normalize(strings.Split(sout.String(), "\n")); !slices.Equal(g, want) {
		t.Errorf("serve printed\n%q\nthe README shows\n%q", g, want)
	}
}
