//go:build linux

package tlspin_test

import (
	"context"
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tlspin/tlspin"
	"github.com/tlspin/tlspin/internal/wait"
)

// slowStartTimeout is the start timeout of the tests below: what Start
// and Close took, before they heeded cancellation, when a plugin had not
// yet answered go-plugin's handshake.
const slowStartTimeout = 8 * time.Second

// slowPlugin writes a plugin that never completes its launch handshake
// (it sleeps), except that its first launch, if firstOK, runs the
// misbehave plugin in mode=crash: a plugin that starts, then dies on its
// first Verify, so that its restart is the launch that never completes.
// It returns the plugin's directory and the file its sleeping launch
// writes its pid to.
func slowPlugin(t *testing.T, firstOK bool) (dir, pidFile string) {
	dir = t.TempDir()
	pidFile = filepath.Join(dir, "sleeping.pid")
	script := "#!/bin/sh\n"
	if firstOK {
		script += "if [ ! -e " + dir + "/launched ]; then : > " + dir + "/launched; exec " +
			filepath.Join(misbehaveDir(t), "tlspin-verifier-misbehave") + "; fi\n"
	}
	script += "echo $$ > " + pidFile + ".tmp && mv " + pidFile + ".tmp " + pidFile + "\nexec sleep 60\n"
	if err := os.WriteFile(filepath.Join(dir, "tlspin-verifier-slow"), []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	return dir, pidFile
}

// sleepingPid waits for the sleeping launch of a slowPlugin to start and
// returns its pid.
func sleepingPid(t *testing.T, pidFile string) int {
	t.Helper()
	var pid int
	if !wait.Until(5*time.Second, func() bool {
		b, err := os.ReadFile(pidFile)
		if err != nil {
			return false
		}
		pid, err = strconv.Atoi(string(b[:len(b)-1]))
		return err == nil
	}) {
		t.Fatal("the plugin's slow launch never began")
	}
	return pid
}

// pidGone reports whether pid has exited and been reaped: a zombie is a
// child not reaped, and still there.
func pidGone(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return os.IsNotExist(err)
}

// TestStartHeedsCancellation: Start's context bounds the start, and
// Close stops the verifiers, even while a plugin has not yet answered the
// launch handshake (a slow or stuck plugin): the launch is abandoned and
// its process killed at once, not left to run out the start timeout.
// Start and Close used to block for the whole start timeout there (10 s
// by default), whatever the context said.
func TestStartHeedsCancellation(t *testing.T) {
	t.Run("Start's context ends during the launch", func(t *testing.T) {
		dir, pidFile := slowPlugin(t, false)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		type result struct {
			v   *tlspin.Verifiers
			err error
		}
		done := make(chan result, 1)
		begun := time.Now()
		go func() {
			v, err := tlspin.StartWith(ctx, []string{"slow"}, tlspin.WithPluginDirs(dir), tlspin.WithStartTimeout(slowStartTimeout))
			done <- result{v, err}
		}()
		pid := sleepingPid(t, pidFile)
		cancel()
		r := <-done
		took := time.Since(begun)
		if r.err == nil {
			r.v.Close()
			t.Fatal("Start succeeded with a plugin that never answered")
		}
		if !errors.Is(r.err, context.Canceled) {
			t.Errorf("Start: %v\nwant an error matching context.Canceled", r.err)
		}
		if took > slowStartTimeout/2 {
			t.Errorf("Start returned %s after it began, cancelled at once: it waited out the start timeout", took.Round(time.Millisecond))
		}
		if !wait.Until(5*time.Second, func() bool { return pidGone(pid) }) {
			t.Errorf("the abandoned plugin (pid %d) still runs", pid)
		}
	})
	t.Run("an expired context starts nothing", func(t *testing.T) {
		dir, pidFile := slowPlugin(t, false)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		v, err := tlspin.StartWith(ctx, []string{"slow"}, tlspin.WithPluginDirs(dir), tlspin.WithStartTimeout(slowStartTimeout))
		if err == nil {
			v.Close()
			t.Fatal("Start succeeded with a cancelled context")
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Start: %v\nwant an error matching context.Canceled", err)
		}
		if _, err := os.Stat(pidFile); err == nil {
			t.Errorf("Start with a cancelled context launched the plugin")
		}
	})
	t.Run("a sibling that fails abandons the launch", func(t *testing.T) {
		dir, pidFile := slowPlugin(t, false)
		begun := time.Now()
		v, err := tlspin.StartWith(context.Background(), []string{"slow", "spkipin:pin=nothex"}, tlspin.WithPluginDirs(dir), tlspin.WithStartTimeout(slowStartTimeout))
		took := time.Since(begun)
		if err == nil {
			v.Close()
			t.Fatal("Start succeeded with a bad option")
		}
		if !errors.Is(err, tlspin.ErrBadConfig) || errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), `"nothex"`) {
			t.Errorf("Start: %v\nwant the bad option alone, not the abandoned launch", err)
		}
		if took > slowStartTimeout/2 {
			t.Errorf("Start returned %s after it began: it waited for the slow sibling", took.Round(time.Millisecond))
		}
		if b, err := os.ReadFile(pidFile); err == nil {
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			if !wait.Until(5*time.Second, func() bool { return pidGone(pid) }) {
				t.Errorf("the abandoned plugin (pid %d) still runs", pid)
			}
		}
	})
	t.Run("Close during a restart", func(t *testing.T) {
		dir, pidFile := slowPlugin(t, true)
		srv := newIdentity("server")
		addr := tlsServer(t, srv)
		v, err := tlspin.StartWith(context.Background(), []string{"slow:mode=crash"}, tlspin.WithPluginDirs(dir), tlspin.WithStartTimeout(slowStartTimeout))
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		// The plugin dies on this handshake's Verify; its restart is the
		// launch that never answers.
		if c, err := tls.Dial("tcp", addr, v.ClientConfig("localhost")); err == nil {
			c.Close()
			t.Fatal("a crashing verifier allowed the server")
		}
		pid := sleepingPid(t, pidFile)
		begun := time.Now()
		v.Close()
		if took := time.Since(begun); took > slowStartTimeout/2 {
			t.Errorf("Close took %s: it waited for the restart's launch to time out", took.Round(time.Millisecond))
		}
		if !wait.Until(5*time.Second, func() bool { return pidGone(pid) }) {
			t.Errorf("the restarting plugin (pid %d) still runs after Close", pid)
		}
	})
}
