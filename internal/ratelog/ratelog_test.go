package ratelog

import (
	"net/netip"
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

// TestPerSource: a source that floods uses up its own share of the
// warnings, not the others': with one per source, every other source
// still gets its warning in the same interval, until Burst is reached.
// Without a bound per source, one attacker who completes handshakes sent
// everyone else's rejections to debug level.
func TestPerSource(t *testing.T) {
	now := time.Unix(1000, 0)
	l := &Limiter{Burst: 3, PerSource: 1, Now: func() time.Time { return now }}
	attacker := netip.MustParseAddr("192.0.2.66")
	src := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}) }
	var got []bool
	for range 50 {
		ok, _ := l.AllowFrom(attacker)
		got = append(got, ok)
	}
	if want := append([]bool{true}, make([]bool, 49)...); !slices.Equal(got, want) {
		t.Errorf("the attacker's occurrences: %v, want only the first written", got)
	}
	got = nil
	var counted []uint64
	for i := range 3 {
		ok, n := l.AllowFrom(src(i))
		got, counted = append(got, ok), append(counted, n)
	}
	if want := []bool{true, true, false}; !slices.Equal(got, want) {
		t.Errorf("three other sources: %v, want %v (Burst is 3, the attacker used one)", got, want)
	}
	if want := []uint64{49, 0, 0}; !slices.Equal(counted, want) {
		t.Errorf("left out, as told: %v, want %v", counted, want)
	}
	now = now.Add(time.Second)
	ok, n := l.AllowFrom(attacker)
	if !ok || n != 1 {
		t.Errorf("next interval: %v with %d left out, want true with 1 (the third source's; the first source written counted the attacker's)", ok, n)
	}
	if ok, _ := l.AllowFrom(src(0)); !ok {
		t.Error("next interval: another source was not written")
	}
	if len(l.bySource) > l.Burst {
		t.Errorf("%d sources held, want at most Burst (%d)", len(l.bySource), l.Burst)
	}
}

// TestPerSourceUnset: without PerSource, sources are not told apart.
func TestPerSourceUnset(t *testing.T) {
	now := time.Unix(1000, 0)
	l := &Limiter{Burst: 2, Now: func() time.Time { return now }}
	var got []bool
	for _, s := range []string{"192.0.2.1", "192.0.2.1", "192.0.2.2"} {
		ok, _ := l.AllowFrom(netip.MustParseAddr(s))
		got = append(got, ok)
	}
	if want := []bool{true, true, false}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// TestPerSourceInARow: a source has PerSource warnings in a row (a user
// trying clients by hand sees each failure), then one an interval; an
// idle source gets its whole share back, and is forgotten.
func TestPerSourceInARow(t *testing.T) {
	now := time.Unix(1000, 0)
	l := &Limiter{Burst: 10, PerSource: 3, Now: func() time.Time { return now }}
	src := netip.MustParseAddr("192.0.2.1")
	written := func(n int) (got int) {
		for range n {
			if ok, _ := l.AllowFrom(src); ok {
				got++
			}
		}
		return got
	}
	steps := []struct {
		after  time.Duration
		tries  int
		wanted int
	}{
		{0, 5, 3},                       // three in a row, then none
		{time.Second, 5, 1},             // one back an interval
		{2500 * time.Millisecond, 5, 2}, // two intervals: two back
		{time.Hour, 5, 3},               // idle: the whole share back
		{100 * time.Millisecond, 1, 0},  // within the interval, used up
	}
	for i, st := range steps {
		now = now.Add(st.after)
		if got := written(st.tries); got != st.wanted {
			t.Errorf("step %d: %d of %d written, want %d", i, got, st.tries, st.wanted)
		}
	}
	now = now.Add(time.Hour)
	l.AllowFrom(netip.MustParseAddr("192.0.2.2"))
	if _, held := l.bySource[src]; held || len(l.bySource) != 1 {
		t.Errorf("sources held after an idle hour: %v; want only the one just written", l.bySource)
	}
}
