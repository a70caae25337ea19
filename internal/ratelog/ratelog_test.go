package ratelog

import (
	"slices"
	"testing"
	"time"
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
