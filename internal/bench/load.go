package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// LoadAverage returns the machine's load averages over 1, 5 and 15
// minutes, from /proc/loadavg (Linux), for a report to say how busy the
// machine was: the figures move with it.
func LoadAverage() ([]float64, error) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return nil, fmt.Errorf("bench: load average: %w", err)
	}
	return parseLoadAvg(string(b))
}

// parseLoadAvg reads the first three fields of /proc/loadavg.
func parseLoadAvg(s string) ([]float64, error) {
	f := strings.Fields(s)
	if len(f) < 3 {
		return nil, fmt.Errorf("bench: load average: %q has fewer than 3 fields", s)
	}
	out := make([]float64, 3)
	for i := range out {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("bench: load average: field %d of %q is not a load", i+1, s)
		}
		out[i] = v
	}
	return out, nil
}
