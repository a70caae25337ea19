// Package wait is the bounded polling loop tests use where no readiness
// signal exists (a process to die, a file to change).
package wait

import "time"

// Until calls cond every 10ms until it is true or d has passed, and
// reports whether it became true.
func Until(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return cond()
}
