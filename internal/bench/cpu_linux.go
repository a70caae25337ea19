package bench

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// selfCPU returns the CPU time this process has used, every thread
// counted, those that have exited too.
func selfCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("bench: getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// ProcessCPU returns the CPU time the threads of process pid that are
// running now have used, from the scheduler's own count in nanoseconds
// (/proc/PID/task/*/schedstat): /proc/PID/stat counts in ticks of 10 ms,
// more than a plugin spends in a round of the bench. A thread that exits
// takes its time with it, which a plugin's threads (Go's, a handful, kept
// for the process's life) and cat's one do not.
func ProcessCPU(pid int) (time.Duration, error) {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	threads, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("bench: CPU time of process %d: %w", pid, err)
	}
	var total time.Duration
	for _, t := range threads {
		b, err := os.ReadFile(dir + "/" + t.Name() + "/schedstat")
		if errors.Is(err, fs.ErrNotExist) {
			continue // the thread has exited
		}
		if err != nil {
			return 0, fmt.Errorf("bench: CPU time of process %d: %w", pid, err)
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			return 0, fmt.Errorf("bench: CPU time of process %d: empty %s/%s/schedstat", pid, dir, t.Name())
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("bench: CPU time of process %d: %s/%s/schedstat: %w", pid, dir, t.Name(), err)
		}
		total += time.Duration(ns)
	}
	return total, nil
}
