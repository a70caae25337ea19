// Command proxybench measures tlspin proxy against stunnel on the same
// machine, in one run, and prints ratios (issue 11): two tlspin proxies
// (client mode, then server mode) and two stunnels configured the same
// way (TLS 1.3, ECDSA P-256, the peer's certificate pinned on both sides,
// TCP_NODELAY on both sockets), in front of one plaintext backend, runs
// alternating between the two.
//
// Workloads: bulk throughput over one connection; new connections per
// second with a small request/response from 16 concurrent clients
// (verifier on, verdict cache on); memory per idle proxied connection
// (resident memory of both proxy processes, before and after opening
// idle connections through them).
//
// It is not a test: run it on a quiet machine and copy its output and the
// machine's description to docs/performance.md. tests/proxybench/run.sh
// installs stunnel4 and builds tlspin first.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tlspin/tlspin/core/certs"
)

func main() {
	tlspin := flag.String("tlspin", "tlspin", "tlspin binary")
	stunnel := flag.String("stunnel", "stunnel4", "stunnel binary")
	bulk := flag.Int64("bulk", 1<<30, "bytes for the bulk workload")
	conns := flag.Duration("conns", 10*time.Second, "duration of the connections-per-second workload")
	clients := flag.Int("clients", 16, "concurrent clients for connections per second")
	idle := flag.Int("idle", 1000, "idle connections for the memory workload")
	rounds := flag.Int("rounds", 3, "alternating rounds per workload")
	only := flag.String("only", "", "run only these workloads, comma-separated: bulk, conns, idle (default: all)")
	flag.Parse()
	want, err := workloads(*only)
	if err != nil {
		fmt.Fprintln(os.Stderr, "proxybench:", err)
		os.Exit(2)
	}
	if err := run(*tlspin, *stunnel, *bulk, *conns, *clients, *idle, *rounds, want); err != nil {
		fmt.Fprintln(os.Stderr, "proxybench:", err)
		os.Exit(1)
	}
}

// workloads parses -only into the set of workloads to run.
func workloads(only string) (map[string]bool, error) {
	all := map[string]bool{"bulk": true, "conns": true, "idle": true}
	if only == "" {
		return all, nil
	}
	want := map[string]bool{}
	for w := range strings.SplitSeq(only, ",") {
		if !all[w] {
			return nil, fmt.Errorf("-only %q: unknown workload %q (want bulk, conns or idle)", only, w)
		}
		want[w] = true
	}
	return want, nil
}

// setup is one chain of two proxies in front of the backend.
type setup struct {
	name  string
	entry string // plaintext address clients dial
	pids  []int
	stop  func()
}

func run(tlspin, stunnel string, bulk int64, connsFor time.Duration, clients, idle, rounds int, want map[string]bool) error {
	dir, err := os.MkdirTemp("", "proxybench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	srvPEM, srvPin, err := identity(dir, "server")
	if err != nil {
		return err
	}
	cliPEM, cliPin, err := identity(dir, "client")
	if err != nil {
		return err
	}
	back, err := backend()
	if err != nil {
		return err
	}
	defer back.Close()
	target := back.Addr().String()

	tl, err := tlspinChain(tlspin, dir, target, srvPEM, srvPin, cliPEM, cliPin)
	if err != nil {
		return err
	}
	defer tl.stop()
	st, err := stunnelChain(stunnel, dir, target, srvPEM, cliPEM)
	if err != nil {
		return err
	}
	defer st.stop()

	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("machine: %d CPUs, load %s", cpus(), load)
	type result struct{ tlspin, stunnel []float64 }
	measure := func(name, unit string, f func(s *setup) (float64, error), higherBetter bool) error {
		var r result
		for range rounds {
			for _, s := range []*setup{tl, st} {
				v, err := f(s)
				if err != nil {
					return fmt.Errorf("%s through %s: %w", name, s.name, err)
				}
				if s == tl {
					r.tlspin = append(r.tlspin, v)
				} else {
					r.stunnel = append(r.stunnel, v)
				}
			}
		}
		a, b := median(r.tlspin), median(r.stunnel)
		ratio := a / b
		if !higherBetter {
			ratio = b / a
		}
		fmt.Printf("%-28s tlspin %12.1f %-8s stunnel %12.1f %-8s ratio %.2fx (higher is better for tlspin)\n", name, a, unit, b, unit, ratio)
		fmt.Printf("%-28s rounds: tlspin %.1f, stunnel %.1f\n", "", r.tlspin, r.stunnel)
		return nil
	}
	if want["bulk"] {
		cpu := map[string][]string{}
		err := measure("bulk, one connection", "MB/s", func(s *setup) (float64, error) {
			before, err := cpuTimes(s.pids)
			if err != nil {
				return 0, err
			}
			v, err := bulkRun(s.entry, bulk)
			if err != nil {
				return 0, err
			}
			after, err := cpuTimes(s.pids)
			if err != nil {
				return 0, err
			}
			gb := float64(bulk) / 1e9
			cpu[s.name] = append(cpu[s.name], fmt.Sprintf("%.2f+%.2f", (after[0]-before[0])/gb, (after[1]-before[1])/gb))
			return v, nil
		}, true)
		fmt.Printf("%-28s CPU s/GB, user+sys of both proxies: tlspin %s, stunnel %s\n", "", cpu["tlspin"], cpu["stunnel"])
		if err != nil {
			return err
		}
	}
	if want["conns"] {
		if err := measure("new connections", "conn/s", func(s *setup) (float64, error) { return connRate(s.entry, clients, connsFor) }, true); err != nil {
			return err
		}
	}
	if want["idle"] {
		return measure("memory per idle connection", "KB", func(s *setup) (float64, error) { return idleMemory(s, idle) }, false)
	}
	return nil
}

func cpus() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return bytes.Count(b, []byte("processor\t:"))
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s[len(s)/2]
}

// identity writes an ECDSA P-256 pair (key and certificate in one file)
// and returns its path and SPKI pin.
func identity(dir, name string) (string, string, error) {
	key, c, err := certs.SelfSigned(certs.Template{Type: certs.ECDSA, CommonName: name, SANs: []string{"127.0.0.1", "localhost"}})
	if err != nil {
		return "", "", err
	}
	kp, err := certs.EncodeKey(key)
	if err != nil {
		return "", "", err
	}
	file := filepath.Join(dir, name+".pem")
	if err := os.WriteFile(file, append(kp, certs.EncodeCert(c)...), 0o600); err != nil {
		return "", "", err
	}
	// stunnel pins the peer by its certificate file alone.
	if err := os.WriteFile(filepath.Join(dir, name+".crt"), certs.EncodeCert(c), 0o644); err != nil {
		return "", "", err
	}
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return file, "sha256//" + base64.StdEncoding.EncodeToString(sum[:]), nil
}

// backend answers "size\n" requests with that many bytes, and sinks
// anything else to EOF, answering with the byte count.
func backend() (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.(*net.TCPConn).SetNoDelay(true)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				first, err := br.Peek(1)
				if err != nil {
					return
				}
				if first[0] == 'R' { // request/response
					br.ReadString('\n')
					c.Write([]byte("pong\n"))
					return
				}
				n, _ := io.Copy(io.Discard, br)
				fmt.Fprintf(c, "%d\n", n)
			}()
		}
	}()
	return ln, nil
}

var listening = regexp.MustCompile(`listening: addr=(\S+)`)

// startTlspin runs tlspin args and waits until it listens.
func startTlspin(bin string, args ...string) (*exec.Cmd, string, error) {
	cmd := exec.Command(bin, append([]string{"--log-level", "info"}, args...)...)
	// X25519 alone, as the stunnels are configured: Go would otherwise
	// lead with the larger and slower X25519MLKEM768.
	cmd.Env = append(os.Environ(), "GODEBUG=tlsmlkem=0")
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case a := <-addr:
		return cmd, a, nil
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		return nil, "", errors.New("tlspin did not listen within 30s")
	}
}

func tlspinChain(bin, dir, target, srvPEM, srvPin, cliPEM, cliPin string) (*setup, error) {
	srv, srvAddr, err := startTlspin(bin, "proxy", "server", "--listen", "127.0.0.1:0", "--target", target,
		"--cert", srvPEM, "--verifier", "spkipin", "--pin", cliPin, "--max-conns", "100000", "--max-handshakes", "1024", "--max-conns-per-ip", "0")
	if err != nil {
		return nil, err
	}
	cli, cliAddr, err := startTlspin(bin, "proxy", "client", "--listen", "127.0.0.1:0", "--target", srvAddr,
		"--cert", cliPEM, "--verifier", "spkipin", "--pin", srvPin, "--max-conns", "100000", "--max-handshakes", "1024", "--max-conns-per-ip", "0")
	if err != nil {
		srv.Process.Kill()
		return nil, err
	}
	return &setup{name: "tlspin", entry: cliAddr, pids: []int{srv.Process.Pid, cli.Process.Pid}, stop: func() {
		for _, c := range []*exec.Cmd{cli, srv} {
			c.Process.Signal(syscall.SIGTERM)
			c.Wait()
		}
	}}, nil
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// stunnelChain runs two stunnels configured as the tlspin proxies are:
// TLS 1.3, the same P-256 pairs, each side's peer certificate pinned
// (verifyPeer with the peer's certificate as the only trusted one),
// TCP_NODELAY on both sockets, and the key exchange and cipher suite Go
// picks (X25519 with Go's hybrid turned off, AES-128-GCM).
func stunnelChain(bin, dir, target, srvPEM, cliPEM string) (*setup, error) {
	srvAddr, err := freePort()
	if err != nil {
		return nil, err
	}
	cliAddr, err := freePort()
	if err != nil {
		return nil, err
	}
	common := "foreground = yes\npid =\ndebug = 3\nsocket = l:TCP_NODELAY=1\nsocket = r:TCP_NODELAY=1\n" +
		"curves = X25519\nciphersuites = TLS_AES_128_GCM_SHA256\n"
	srvConf := common + fmt.Sprintf("[server]\naccept = %s\nconnect = %s\ncert = %s\nsslVersionMin = TLSv1.3\nverifyPeer = yes\nCAfile = %s\n",
		srvAddr, target, srvPEM, filepath.Join(dir, "client.crt"))
	cliConf := common + fmt.Sprintf("[client]\nclient = yes\naccept = %s\nconnect = %s\ncert = %s\nsslVersionMin = TLSv1.3\nverifyPeer = yes\nCAfile = %s\n",
		cliAddr, srvAddr, cliPEM, filepath.Join(dir, "server.crt"))
	var cmds []*exec.Cmd
	stop := func() {
		for _, c := range cmds {
			c.Process.Signal(syscall.SIGTERM)
			c.Wait()
		}
	}
	for i, conf := range []string{srvConf, cliConf} {
		file := filepath.Join(dir, fmt.Sprintf("stunnel%d.conf", i))
		if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
			stop()
			return nil, err
		}
		cmd := exec.Command(bin, file)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			stop()
			return nil, fmt.Errorf("%s: %w (install stunnel4)", bin, err)
		}
		cmds = append(cmds, cmd)
	}
	for _, a := range []string{srvAddr, cliAddr} {
		if !listeningOn(a) {
			stop()
			return nil, fmt.Errorf("stunnel not listening on %s", a)
		}
	}
	return &setup{name: "stunnel", entry: cliAddr, pids: []int{cmds[0].Process.Pid, cmds[1].Process.Pid}, stop: stop}, nil
}

func listeningOn(addr string) bool {
	for range 300 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

// bulkRun sends n bytes through entry and returns MB/s, once the backend
// confirmed the count.
func bulkRun(entry string, n int64) (float64, error) {
	c, err := net.Dial("tcp", entry)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	buf := make([]byte, 256<<10)
	start := time.Now()
	for sent := int64(0); sent < n; {
		k := min(int64(len(buf)), n-sent)
		if _, err := c.Write(buf[:k]); err != nil {
			return 0, err
		}
		sent += k
	}
	c.(*net.TCPConn).CloseWrite()
	reply, err := io.ReadAll(c)
	if err != nil {
		return 0, err
	}
	if got := strings.TrimSpace(string(reply)); got != strconv.FormatInt(n, 10) {
		return 0, fmt.Errorf("backend counted %q bytes, sent %d", got, n)
	}
	return float64(n) / 1e6 / time.Since(start).Seconds(), nil
}

// connRate runs clients that each open a connection, send a request, read
// the response and close, for d; it returns connections per second.
func connRate(entry string, clients int, d time.Duration) (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var done atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for range clients {
		wg.Go(func() {
			for ctx.Err() == nil {
				c, err := net.Dial("tcp", entry)
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				c.SetDeadline(time.Now().Add(10 * time.Second))
				c.Write([]byte("R\n"))
				b, err := io.ReadAll(c)
				c.Close()
				if err != nil || string(b) != "pong\n" {
					firstErr.CompareAndSwap(nil, fmt.Errorf("reply %q: %v", b, err))
					return
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return 0, err
	}
	return float64(done.Load()) / time.Since(start).Seconds(), nil
}

// idleMemory opens n idle connections through s (each completes its TLS
// handshakes: a byte goes through and back is not needed, the backend
// accepts) and returns the growth of both proxies' resident memory per
// connection, in KB.
func idleMemory(s *setup, n int) (float64, error) {
	before, err := rss(s.pids)
	if err != nil {
		return 0, err
	}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := net.Dial("tcp", s.entry)
		if err != nil {
			return 0, err
		}
		conns = append(conns, c)
	}
	time.Sleep(2 * time.Second) // let every handshake finish: no readiness signal crosses two proxies
	after, err := rss(s.pids)
	if err != nil {
		return 0, err
	}
	return float64(after-before) / float64(n), nil
}

// cpuTimes sums the user and system CPU time of pids, in seconds.
func cpuTimes(pids []int) ([2]float64, error) {
	var t [2]float64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return t, err
		}
		// Fields after the command name, which is in parentheses:
		// state is field 3, utime 14 and stime 15 (proc(5)).
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) < 13 {
			return t, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
		}
		for i, s := range f[11:13] {
			ticks, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return t, fmt.Errorf("/proc/%d/stat: %w", pid, err)
			}
			t[i] += ticks / 100 // USER_HZ is 100 on Linux
		}
	}
	return t, nil
}

// rss sums VmRSS (KB) of pids.
func rss(pids []int) (int64, error) {
	var total int64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return 0, err
		}
		for l := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				total += kb
			}
		}
	}
	return total, nil
}
