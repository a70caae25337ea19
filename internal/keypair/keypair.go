// Package keypair keeps a key pair loaded from files current for TLS
// servers and clients that run for long: it reloads the files on request
// (SIGHUP) and when they change on disk, and keeps the pair in use when a
// new one does not load.
package keypair

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin/core/certs"
)

// Certificate is a key pair loaded from files, reloaded on demand and when
// the files change on disk. Handshakes read the current pair, so a reload
// affects new connections only; established ones continue.
type Certificate struct {
	certFile, keyFile string
	log               hclog.Logger
	cur               atomic.Pointer[tls.Certificate]
	mu                sync.Mutex
	seen              []os.FileInfo
	// load reads the pair: certs.LoadKeyPair, but for tests.
	load func(certFile, keyFile string) (tls.Certificate, error)
}

// Load loads certFile (with its key unless keyFile is given).
func Load(certFile, keyFile string, log hclog.Logger) (*Certificate, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	c := &Certificate{certFile: certFile, keyFile: keyFile, log: log, load: certs.LoadKeyPair}
	if err := c.Reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// Current returns the pair in use.
func (c *Certificate) Current() *tls.Certificate { return c.cur.Load() }

// GetCertificate is for tls.Config.GetCertificate.
func (c *Certificate) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.cur.Load(), nil
}

// GetClientCertificate is for tls.Config.GetClientCertificate.
func (c *Certificate) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return c.cur.Load(), nil
}

// Reload reads the files again. On error the pair in use stays, and the
// files as they were before the read count as seen: a change after it (a
// writer finishing a file read half written) is a change for Watch.
func (c *Certificate) Reload() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := c.stat()
	pair, err := c.load(c.certFile, c.keyFile)
	c.seen = seen
	if err != nil {
		return fmt.Errorf("keypair: reload %q: %w", c.certFile, err)
	}
	c.cur.Store(&pair)
	return nil
}

// stat describes the files now, for change detection.
func (c *Certificate) stat() []os.FileInfo {
	var out []os.FileInfo
	for _, f := range []string{c.certFile, c.keyFile} {
		if f == "" {
			continue
		}
		fi, _ := os.Stat(f) // a missing file is a change, seen by the reload
		out = append(out, fi)
	}
	return out
}

// changed reports whether the files differ from those last loaded: another
// file (renamed over or a symlink swapped), another size or time.
func (c *Certificate) changed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.stat()
	for i, fi := range now {
		old := c.seen[i]
		if (fi == nil) != (old == nil) {
			return true
		}
		if fi != nil && (!os.SameFile(fi, old) || fi.Size() != old.Size() || !fi.ModTime().Equal(old.ModTime())) {
			return true
		}
	}
	return false
}

// Watch reloads when the files change, checking every interval, until ctx
// ends. A failed reload keeps the pair in use and is logged each time the
// files change again.
func (c *Certificate) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.check()
	}
}

// check reloads the files if they changed since last looked at.
func (c *Certificate) check() {
	if !c.changed() {
		return
	}
	if err := c.Reload(); err != nil {
		// Once per change, not every tick: Reload noted the files it
		// failed on.
		c.log.Warn("certificate changed on disk but does not load; keeping the one in use", "error", err)
		return
	}
	c.log.Info("certificate reloaded from disk; new connections get it", "cert", c.certFile)
}
