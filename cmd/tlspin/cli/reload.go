package cli

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tlspin/tlspin/internal/keypair"
)

// keepCurrent reloads cert on every SIGHUP, and when its files change
// (checked every interval), until ctx ends or stop is called; serve and
// the proxy share it. With no cert (proxy client without --cert) there is
// nothing to reload: SIGHUP is logged, rather than let its default action
// end the command and cut every connection.
func keepCurrent(ctx context.Context, cert *keypair.Certificate, interval time.Duration, a *app) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
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
	return func() { signal.Stop(hup); cancel(); <-done }
}
