package bench

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

// TestProcessCPU: the scheduler's count of a process's CPU time grows as
// it works, and agrees with getrusage's; a process that is gone is an
// error, not a zero.
func TestProcessCPU(t *testing.T) {
	before, err := ProcessCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	self0, err := selfCPU()
	if err != nil {
		t.Fatal(err)
	}
	// Work until getrusage counts 20 ms more, for 5 s at most.
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); {
		if s, _ := selfCPU(); s-self0 >= 20*time.Millisecond {
			break
		}
	}
	after, err := ProcessCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if d := after - before; d < 15*time.Millisecond {
		t.Errorf("ProcessCPU grew by %v over 20 ms of work", d)
	}
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Skip(err)
	}
	if d, err := ProcessCPU(gone.Process.Pid); err == nil {
		t.Errorf("ProcessCPU of a process that has exited = %v, want an error", d)
	}
}

// TestCPUUse: what a mode used adds up over its slices, and becomes
// unknown (-1) for good once a reading fails, goes backwards (a thread
// that exited took its time with it) or comes from another peer process
// than the slice started with (a restarted plugin).
func TestCPUUse(t *testing.T) {
	ms := time.Millisecond
	r := func(self, peer time.Duration, pid int) cpuReading {
		return cpuReading{self: self, peer: peer, pid: pid}
	}
	tests := []struct {
		name       string
		slices     [][2]cpuReading
		self, peer time.Duration
	}{
		{"two slices", [][2]cpuReading{{r(10*ms, 1*ms, 7), r(30*ms, 3*ms, 7)}, {r(40*ms, 5*ms, 7), r(45*ms, 6*ms, 7)}}, 25 * ms, 3 * ms},
		{"no peer", [][2]cpuReading{{r(10*ms, -1, 0), r(30*ms, -1, 0)}}, 20 * ms, -1},
		{"a failed reading", [][2]cpuReading{{r(-1, 1*ms, 7), r(30*ms, 3*ms, 7)}, {r(40*ms, 5*ms, 7), r(45*ms, 6*ms, 7)}}, -1, 3 * ms},
		{"the peer restarted", [][2]cpuReading{{r(10*ms, 1*ms, 7), r(30*ms, 3*ms, 7)}, {r(40*ms, 5*ms, 7), r(45*ms, 9*ms, 8)}}, 25 * ms, -1},
		{"backwards", [][2]cpuReading{{r(10*ms, 5*ms, 7), r(30*ms, 3*ms, 7)}}, 20 * ms, -1},
	}
	for _, tt := range tests {
		var u cpuUse
		for _, s := range tt.slices {
			u.add(s[0], s[1])
		}
		if u.self != tt.self || u.peer != tt.peer {
			t.Errorf("%s: used %v here and %v by the peer; want %v and %v", tt.name, u.self, u.peer, tt.self, tt.peer)
		}
	}
}
