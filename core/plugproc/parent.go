package plugproc

import (
	"os"
	"os/signal"
	"time"
)

// hostPID is the plugin's parent when the program started: the host.
var hostPID = os.Getppid()

// WatchHost ends the plugin, and with it every process in its process
// group (children it started), when the host goes away without stopping
// it:
//
//   - on Linux the host asks the kernel for a parent-death signal, which
//     this package turns from SIGKILL into SIGTERM for itself (see
//     parent_linux.go), so that it lives long enough to kill its group;
//   - everywhere, the parent is polled: a plugin whose parent changed was
//     orphaned (the backstop where there is no parent-death signal).
//
// SIGTERM from anyone else ends the plugin and its group the same way.
// The group is killed only when the plugin leads it, as a tlspin host
// starts every plugin: a plugin run otherwise never signals a group that
// is not its own. Run it in a goroutine of its own.
func WatchHost() { watchHost(hostPID) }

func watchHost(ppid int) {
	if ppid <= 1 {
		return
	}
	term := make(chan os.Signal, 1)
	if termSignal != nil {
		signal.Notify(term, termSignal)
	}
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-term:
		case <-t.C:
			if os.Getppid() == ppid {
				continue
			}
		}
		killOwnGroup()
		os.Exit(2)
	}
}
