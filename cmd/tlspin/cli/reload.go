package cli

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tlspin/tlspin/internal/keypair"
)

// catchHUP takes SIGHUP from its default action, which ends the process,
// and keeps one for keepCurrent: serve and the proxy call it first thing,
// so that a SIGHUP while their verifiers start (which can take seconds) is
// a reload done once they have started, not a death by signal (exit 129).
// release gives SIGHUP back on return.
func catchHUP() (hup chan os.Signal, release func()) {
	hup = make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	return hup, func() { signal.Stop(hup) }
}

// keepCurrent reloads cert on every SIGHUP caught on hup (catchHUP), one
// that came before it was called included, and when its files change
// (checked every interval), until ctx ends or stop is called; serve and
// the proxy share it. With no cert (proxy client without --cert) there is
// nothing to reload: SIGHUP is logged, rather than let its default action
// end the command and cut every connection.
func keepCurrent(ctx context.Context, hup <-chan os.Signal, cert *keypair.Certificate, interval time.Duration, a *app) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	if cert != nil {
		go cert.Watch(ctx, interval)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if cert == nil {
					a.log.Info("SIGHUP: no --cert to reload; going on")
					continue
				}
				if err := cert.Reload(); err != nil {
					a.log.Warn("SIGHUP: certificate does not load; keeping the one in use", "error", err)
					continue
				}
				a.log.Info("SIGHUP: certificate reloaded; new connections get it")
			}
		}
	}()
	return func() { cancel(); <-done }
}
