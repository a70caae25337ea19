package peercred

import (
	"os"
	"testing"
)

// TestIsAncestorRefusesNoPID: a plugin whose parent is outside its pid
// namespace has parent 0, and SO_PEERCRED says 0 for any process outside
// it; comparing the parent with the peer's pid before refusing 0 took any
// such process for the host.
func TestIsAncestorRefusesNoPID(t *testing.T) {
	for _, tt := range []struct {
		name string
		ppid int // what getppid answers
		pid  int
		want bool
	}{
		{"pid 0, parent outside the namespace", 0, 0, false},
		{"pid -1, parent unknown", -1, -1, false},
		{"pid 0, parent in the namespace", os.Getppid(), 0, false},
		{"pid -1, parent in the namespace", os.Getppid(), -1, false},
		{"the parent", os.Getppid(), os.Getppid(), true},
		{"a host that is pid 1", 1, 1, true},
		{"itself", os.Getppid(), os.Getpid(), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer func(f func() int) { getppid = f }(getppid)
			getppid = func() int { return tt.ppid }
			if got := isAncestor(tt.pid); got != tt.want {
				t.Errorf("isAncestor(%d) with parent %d = %v, want %v", tt.pid, tt.ppid, got, tt.want)
			}
		})
	}
}
