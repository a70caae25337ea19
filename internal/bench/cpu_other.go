//go:build !linux

package bench

import (
	"errors"
	"time"
)

var errNoCPU = errors.New("bench: CPU time is read on Linux only")

func selfCPU() (time.Duration, error) { return 0, errNoCPU }

// ProcessCPU returns the CPU time process pid has used; on Linux only.
func ProcessCPU(int) (time.Duration, error) { return 0, errNoCPU }
