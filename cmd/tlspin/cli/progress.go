package cli

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/mattn/go-isatty"
)

// progress tells the user what a long command (bench, compare) is doing,
// on one line of stderr rewritten in place, when stderr is a terminal. It
// writes nothing otherwise, so logs and scripts see no progress, and never
// writes to stdout.
type progress struct {
	mu    sync.Mutex
	w     io.Writer // nil: off
	name  string
	stop  chan struct{}
	timer sync.WaitGroup
}

// newProgress returns the progress line of command name on w, which is on
// only when w is a terminal.
func newProgress(w io.Writer, name string) *progress {
	p := &progress{name: name}
	if isTerminal(w) {
		p.w = w
	}
	return p
}

// isTerminal reports whether w, a reader or a writer, is a terminal.
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// Step shows step done of total.
func (p *progress) Step(done, total int, what string) {
	p.endTimer()
	p.show(fmt.Sprintf("[%d/%d] %s", done, total, what))
}

// Timed shows what with the seconds elapsed of about d, updated until the
// next Step or Done.
func (p *progress) Timed(done, total int, what string, d time.Duration) {
	p.endTimer()
	if p.w == nil {
		return
	}
	t0 := time.Now()
	line := func() string {
		return fmt.Sprintf("[%d/%d] %s: %.0fs of about %.0fs", done, total, what, time.Since(t0).Seconds(), d.Seconds())
	}
	p.show(line())
	stop := make(chan struct{})
	p.mu.Lock()
	p.stop = stop
	p.mu.Unlock()
	p.timer.Go(func() {
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				p.show(line())
			}
		}
	})
}

// Done clears the line.
func (p *progress) Done() {
	p.endTimer()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.w != nil {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

func (p *progress) show(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.w != nil {
		fmt.Fprintf(p.w, "\r\033[Ktlspin: %s: %s", p.name, s)
	}
}

func (p *progress) endTimer() {
	p.mu.Lock()
	if p.stop != nil {
		close(p.stop)
		p.stop = nil
	}
	p.mu.Unlock()
	p.timer.Wait()
}
