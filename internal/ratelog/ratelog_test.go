package ratelog

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

func TestAllow(t *testing.T) {
	now := time.Unix(1000, 0)
	l := &Limiter{Now: func() time.Time { return now }}
	steps := []struct {
		after      time.Duration
		ok         bool
		suppressed uint64
	}{
		{0, true, 0},
		{100 * time.Millisecond, false, 0},
		{100 * time.Millisecond, false, 0},
		{time.Second, true, 2},
		{999 * time.Millisecond, false, 0},
		{time.Millisecond, true, 1},
		{time.Hour, true, 0},
	}
	for i, s := range steps {
		now = now.Add(s.after)
		if ok, n := l.Allow(); ok != s.ok || n != s.suppressed {
			t.Errorf("step %d: Allow() = %v, %d; want %v, %d", i, ok, n, s.ok, s.suppressed)
		}
	}
}

// TestBurst: Burst warnings an interval, then none until the next.
func TestBurst(t *testing.T) {
	now := time.Unix(1000, 0)
	l := &Limiter{Burst: 3, Every: time.Second, Now: func() time.Time { return now }}
	var got []bool
	for range 5 {
		ok, _ := l.Allow()
		got = append(got, ok)
	}
	now = now.Add(time.Second)
	ok, n := l.Allow()
	if want := []bool{true, true, true, false, false}; !slices.Equal(got, want) || !ok || n != 2 {
		t.Errorf("got %v, then %v with %d left out; want %v, then true with 2", got, ok, n, want)
	}
}

// TestWarn: what Allow lets through is a warning, the next one saying how
// many were left out; the rest go to debug level.
func TestWarn(t *testing.T) {
	var out strings.Builder
	log := hclog.New(&hclog.LoggerOptions{Output: &out, Level: hclog.Debug})
	now := time.Unix(0, 0)
	l := Limiter{Now: func() time.Time { return now }}
	for range 3 {
		l.Warn(log, "refused", "remote", "10.0.0.1")
	}
	now = now.Add(time.Second)
	l.Warn(log, "refused", "remote", "10.0.0.1")
	var levels []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		levels = append(levels, strings.Fields(line)[1])
	}
	if want := []string{"[WARN]", "[DEBUG]", "[DEBUG]", "[WARN]"}; !slices.Equal(levels, want) {
		t.Fatalf("levels %v, want %v:\n%s", levels, want, out.String())
	}
	if !strings.HasSuffix(strings.TrimSpace(out.String()), "remote=10.0.0.1 suppressed=2") {
		t.Errorf("the last warning does not count the two left out:\n%s", out.String())
	}
}
