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
	"github.com/tlspin/tlspin/internal/files"
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
	// The first read takes what an operator may give at the start, a
	// pipe (--cert <(...)) included; reloads take regular files only.
	c := &Certificate{certFile: certFile, keyFile: keyFile, log: log, load: loadFirst}
	if err := c.reload(); err != nil {
		return nil, fmt.Errorf("keypair: load %q: %w", certFile, err)
	}
	c.load = loadAgain
	WarnIfReadable(log, certFile, keyFile)
	return c, nil
}

// WarnIfReadable warns on log when the file holding the private key of a
// pair (keyFile, or certFile if keyFile is "") may be read by other
// users, who could then impersonate its owner: a key written by cat > or
// cp under the usual umask is. A key its group may read is not warned of
// (Debian's ssl-cert group shares keys so).
func WarnIfReadable(log hclog.Logger, certFile, keyFile string) {
	path := keyFile
	if path == "" {
		path = certFile
	}
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o004 == 0 {
		return
	}
	log.Warn(fmt.Sprintf("%s holds a private key and is readable by other users (mode %04o), who could impersonate this side with it: chmod o-r %s", path, fi.Mode().Perm(), path))
}

// MaxFileSize bounds what is read of the certificate and the key files:
// a key pair with its chain takes a few kilobytes, and a file written
// over one by mistake (a log, a disk image) must not be read whole into
// a long-running server's memory.
const MaxFileSize = 1 << 20

// loadFirst reads the pair at the start: any file that can be read, as
// certs.LoadKeyPair does, up to MaxFileSize, but a named pipe that no
// program writes to is refused at once (files.ReadGiven).
func loadFirst(certFile, keyFile string) (tls.Certificate, error) {
	return loadWith(certFile, keyFile, false)
}

// loadAgain reads the pair for a reload, which runs while the server
// serves and its SIGTERM waits for it: regular files only, opened without
// waiting. A FIFO (a mistaken mkfifo, a tool streaming its output) is
// refused at once: opening it would wait for a writer for good, and
// reading from one, for as long as the writer likes.
func loadAgain(certFile, keyFile string) (tls.Certificate, error) {
	return loadWith(certFile, keyFile, true)
}

func loadWith(certFile, keyFile string, regularOnly bool) (tls.Certificate, error) {
	certPEM, err := files.ReadGiven(certFile, MaxFileSize, regularOnly)
	if err != nil {
		return tls.Certificate{}, err
	}
	var keyPEM []byte
	if keyFile != "" {
		if keyPEM, err = files.ReadGiven(keyFile, MaxFileSize, regularOnly); err != nil {
			return tls.Certificate{}, err
		}
	}
	return certs.ParseKeyPair(certPEM, keyPEM, certFile, keyFile)
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
	if err := c.reload(); err != nil {
		return fmt.Errorf("keypair: reload %q: %w", c.certFile, err)
	}
	return nil
}

func (c *Certificate) reload() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := c.stat()
	pair, err := c.load(c.certFile, c.keyFile)
	c.seen = seen
	if err != nil {
		return err
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
