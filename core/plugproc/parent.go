package plugproc

import (
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
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
//   - everywhere, the parent is watched: a plugin whose parent changed
//     was orphaned (the backstop where there is no parent-death signal).
//     On Linux the runtime's poller waits on a descriptor of the parent
//     (a pidfd), which the kernel marks when it exits; elsewhere the
//     parent is polled (parentGone says why not everywhere).
//
// SIGTERM from anyone else ends the plugin and its group the same way.
// The group is killed only when the plugin leads it, as a tlspin host
// starts every plugin: a plugin run otherwise never signals a group that
// is not its own. Run it in a goroutine of its own.
func WatchHost() { watch(hostPID, true) }

// WatchParent is WatchHost for a plugin that starts no processes, such as
// tlspin-builtins: it only watches for an orphaned plugin. SIGTERM, the
// parent-death signal included, keeps its default action, which ends the
// plugin: with no children there is no group to kill first. Catching a
// signal costs the Go runtime a thread of its own, made while the
// plugin's first call waits: about 2 ms of a launch on a 2-core machine.
// Run it in a goroutine of its own.
func WatchParent() { watch(hostPID, false) }

// watch ends the plugin when its parent is no longer ppid, or, if catch,
// on termSignal.
func watch(ppid int, catch bool) {
	if ppid <= 1 {
		return
	}
	watchWith(ppid, notify(catch))
}

// notify returns the channel termSignal arrives on if catch, else one that
// never receives.
func notify(catch bool) <-chan os.Signal {
	term := make(chan os.Signal, 1)
	if catch && termSignal != nil {
		signal.Notify(term, termSignal)
	}
	return term
}

func watchWith(ppid int, term <-chan os.Signal) {
	select {
	case <-term:
	case <-parentGone(ppid):
	}
	removeSocketDir()
	killOwnGroup()
	os.Exit(2)
}

// parentGone returns a channel closed once the plugin's parent is no
// longer ppid: at once if it is not now, else when that process exits.
// Where the system gives a descriptor of a process (openExit), the
// runtime's poller waits on it, and nothing runs until the parent exits:
// an idle plugin is never woken, and an orphan ends at once. Elsewhere the
// parent is polled, which keeps a timer pending for the plugin's life: the
// runtime's poller then sleeps with a timeout each time the plugin waits
// for its next call, which arms a kernel timer and cancels it when the
// call comes.
func parentGone(ppid int) <-chan struct{} {
	exit, err := openExit(ppid)
	// Checked once the descriptor is open: it is the parent's, not that
	// of a later process given the parent's pid.
	if os.Getppid() != ppid {
		if err == nil {
			exit.Close()
		}
		gone := make(chan struct{})
		close(gone)
		return gone
	}
	if err != nil {
		return pollParent(ppid)
	}
	gone := make(chan struct{})
	go func() {
		if !exited(exit) {
			<-pollParent(ppid)
		}
		close(gone)
	}()
	return gone
}

// pollParent returns a channel closed once the plugin's parent is no
// longer ppid, checked four times a second.
func pollParent(ppid int) <-chan struct{} {
	gone := make(chan struct{})
	go func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for range t.C {
			if os.Getppid() != ppid {
				close(gone)
				return
			}
		}
	}()
	return gone
}

// socketDirKey names the directory a go-plugin host made for the plugin's
// socket (go-plugin's EnvUnixSocketDir).
const socketDirKey = "PLUGIN_UNIX_SOCKET_DIR"

// removeSocketDir removes the plugin's socket and the directory its host
// made for it. The host removes both when it stops the plugin; a host that
// died first (SIGKILL, or os.Exit, log.Fatal or a panic before Close)
// never does, and would leave one directory per plugin in $TMPDIR on
// every run. Only a directory as go-plugin makes one is touched (named
// plugin-dir*, not a symlink, closed to group and others): not one the
// variable names otherwise (a shared directory, the user's own sockets in
// /run/user/UID) nor one swapped for a link. In it only go-plugin's
// sockets (plugin*) are removed, and the directory only once empty.
func removeSocketDir() {
	dir := os.Getenv(socketDirKey)
	if dir == "" || !StartedByHost() || !strings.HasPrefix(filepath.Base(dir), "plugin-dir") {
		return
	}
	if fi, err := os.Lstat(dir); err != nil || !fi.IsDir() || fi.Mode().Perm()&0o077 != 0 {
		return
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Type()&fs.ModeSocket != 0 && strings.HasPrefix(e.Name(), "plugin") {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	_ = os.Remove(dir)
}
