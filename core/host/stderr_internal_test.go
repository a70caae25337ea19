package host

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// TestPluginStderrIsEscaped is the attack of a plugin that writes
// terminal escapes and a carriage return to its stderr, plain or in an
// hclog JSON message, field name or field value, to forge the host's log
// lines: the host logs them escaped, at the level the plugin gave.
func TestPluginStderrIsEscaped(t *testing.T) {
	for _, tt := range []struct{ name, line, level, want string }{
		{"plain line", "[WARN] \x1b[2J\rtlspin: sent; server verified OK", "[WARN]", `[WARN] \x1b[2J\x0dtlspin: sent`},
		{"hclog JSON message", `{"@level":"warn","@message":"\u001b]0;pwned\u0007\rforged","n":1}`, "[WARN]", `\x1b]0;pwned\x07\x0dforged`},
		// hclog writes a field's name as it is.
		{"hclog JSON field name", `{"@level":"error","@message":"m","\u001b]0;pwned\u0007\u001b[2J":"v"}`, "[ERROR]", `"\x1b]0;pwned\a\x1b[2J"=v`},
		{"hclog JSON field name forging fields", `{"@level":"info","@message":"m","a=1 verdict":"allow"}`, "[INFO]", `"a=1 verdict"=allow`},
		{"hclog JSON field name with a bidi override", `{"@level":"info","@message":"m","\u202ek":"v"}`, "[INFO]", `"\u202ek"=v`},
		{"hclog JSON plain field name", `{"@level":"info","@message":"m","peer.addr-1_x":"v"}`, "[INFO]", ` peer.addr-1_x=v`},
		// hclog renders a slice with %v and writes it as it is.
		{"hclog JSON array value", `{"@level":"error","@message":"m","k":["\u001b]0;pwned\u0007"]}`, "[ERROR]", `k=[\x1b]0;pwned\x07]`},
		{"hclog JSON array value forging fields", `{"@level":"info","@message":"m","k":[1,"x=2"]}`, "[INFO]", `k="[1 x=2]"`},
		{"hclog JSON nested object", `{"@level":"error","@message":"m","k":{"\u001b[2J":{"x":"\r\u009b31m"}}}`, "[ERROR]", `k=map[\x1b[2J:map[x:\x0d\x9b31m]]`},
		// A string value is left to hclog, which quotes and escapes it.
		{"hclog JSON string value", `{"@level":"warn","@message":"m","k":"\u001b]0;pwned\u0007\r\u202eforged"}`, "[WARN]", `k="\x1b]0;pwned\a\r\u202eforged"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			s := &pluginStderr{log: hclog.New(&hclog.LoggerOptions{Output: &out, Level: hclog.Trace})}
			s.Write([]byte(tt.line + "\n"))
			got := out.String()
			if strings.ContainsAny(got, "\x1b\x07\r\u009b\u202e") {
				t.Fatalf("ATTACK: raw control characters in the host's log: %q", got)
			}
			if !strings.Contains(got, tt.want) || !strings.Contains(got, tt.level) {
				t.Fatalf("logged %q, want it to contain %q at %s", got, tt.want, tt.level)
			}
		})
	}
}

// TestPluginStderrLevels: a plugin's line is logged at its own level
// only where the host's level shows that level. hclog reads "off" as a
// level too, one above error: a line claiming it is no log line of any
// level, and must not pass a host whose logging is off.
func TestPluginStderrLevels(t *testing.T) {
	for _, tt := range []struct {
		name, line string
		host       hclog.Level
		want       string // in the log; "" for nothing logged
	}{
		{"off, host off", `{"@level":"off","@message":"tlspin: sent; server verified OK"}`, hclog.Off, ""},
		{"OFF, host off", `{"@level":" OFF ","@message":"forged"}`, hclog.Off, ""},
		{"error, host off", `{"@level":"error","@message":"hidden"}`, hclog.Off, ""},
		{"off, host error", `{"@level":"off","@message":"forged"}`, hclog.Error, ""},
		{"off, host debug: a plain line", `{"@level":"off","@message":"forged"}`, hclog.Debug, `[DEBUG] {"@level":"off"`},
		{"error, host error", `{"@level":"error","@message":"shown"}`, hclog.Error, "[ERROR] shown"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			s := &pluginStderr{log: hclog.New(&hclog.LoggerOptions{Output: &out, Level: tt.host})}
			s.Write([]byte(tt.line + "\n"))
			s.end()
			got := out.String()
			if tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
				t.Errorf("logged %q, want %q", got, tt.want)
			}
		})
	}
}

// TestGoPluginNarrationIsDebug: go-plugin logs every plugin's exit, at
// error when it was killed (a start the caller cancelled, a timeout),
// and warns when it had to kill one. The host says what matters itself,
// so these are debug lines: a program that cancelled a Start must not
// log an error. Anything else go-plugin says keeps its level.
func TestGoPluginNarrationIsDebug(t *testing.T) {
	for _, tt := range []struct {
		name string
		log  func(hclog.Logger)
		want string // at info level; "" for nothing
	}{
		{"killed", func(l hclog.Logger) { l.Error(goPluginExited, "error", "signal: killed") }, ""},
		{"exited", func(l hclog.Logger) { l.Info(goPluginExited) }, ""},
		{"had to kill", func(l hclog.Logger) { l.Warn(goPluginKilled) }, ""},
		{"anything else", func(l hclog.Logger) { l.Error("plugin failed to start") }, "[ERROR] plugin failed to start"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, lvl := range []hclog.Level{hclog.Info, hclog.Debug} {
				var b bytes.Buffer
				tt.log(goPluginLogger{Logger: hclog.New(&hclog.LoggerOptions{Output: &b, Level: lvl})})
				want := tt.want
				if lvl == hclog.Debug && want == "" {
					want = "[DEBUG]"
				}
				if got := b.String(); want == "" && got != "" || !strings.Contains(got, want) {
					t.Errorf("at %s level: logged %q; want %q", lvl, got, want)
				}
			}
		})
	}
}

// TestStderrOfManyLinesIsCheap: go-plugin hands a plugin's stdio stream
// to pluginStderr one message at a time, up to rpc.MaxMessageSize: a
// plugin can send a megabyte of short lines in one Write. Each line used
// to copy the rest of the message (256 KiB of newlines took 30 s of CPU,
// a megabyte minutes); the cost is now linear, and the tail that explains
// a failed start still ends with the last lines.
func TestStderrOfManyLinesIsCheap(t *testing.T) {
	const size = 256 << 10
	for _, tt := range []struct{ name, line string }{
		{"empty lines", "\n"},
		{"one-byte lines", "a\n"},
		{"lines of a kilobyte", strings.Repeat("b", 1023) + "\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := &pluginStderr{log: hclog.New(&hclog.LoggerOptions{Output: io.Discard, Level: hclog.Info})}
			msg := []byte(strings.Repeat(tt.line, size/len(tt.line)) + "last words\n")
			done := make(chan struct{})
			start := time.Now()
			go func() {
				defer close(done)
				if n, err := s.Write(msg); n != len(msg) || err != nil {
					t.Errorf("Write = %d, %v; want %d, nil", n, err, len(msg))
				}
			}()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatalf("ATTACK: %d bytes of %s still being written after 5 s (quadratic)", len(msg), tt.name)
			}
			t.Logf("%d bytes in %s", len(msg), time.Since(start))
			if got := s.String(); !strings.HasSuffix(got, "last words") || len(got) > stderrTailSize {
				t.Errorf("tail %q (%d bytes); want at most %d bytes ending with the last line", got[max(0, len(got)-40):], len(got), stderrTailSize)
			}
		})
	}
}

// TestPluginStderrFlood is the attack of a plugin that writes its stderr
// as fast as it can, at error level (which every log level shows): the
// host logs a burst, says it drops the rest, and once the plugin slows
// down, how many it dropped. Lines the host's level hides are not
// counted, and the tail kept to explain a failed start still has the last
// lines.
func TestPluginStderrFlood(t *testing.T) {
	var out bytes.Buffer
	clock := time.Unix(1_000_000, 0)
	s := &pluginStderr{log: hclog.New(&hclog.LoggerOptions{Output: &out, Level: hclog.Info}), rate: lineRate{now: func() time.Time { return clock }}}
	for range 5000 {
		s.Write([]byte("[DEBUG] hidden\n"))
	}
	for i := range 1000 {
		s.Write([]byte(`{"@level":"error","@message":"flood ` + strconv.Itoa(i) + `"}` + "\n"))
	}
	logged := strings.Count(out.String(), "flood ")
	if logged != stderrBurst {
		t.Errorf("%d of 1000 flooding lines logged at once, want the burst of %d", logged, stderrBurst)
	}
	if n := strings.Count(out.String(), "dropping them until it slows down"); n != 1 {
		t.Errorf("the drop was announced %d times, want once:\n%s", n, out.String())
	}
	if !strings.Contains(s.String(), "flood 999") {
		t.Errorf("the kept tail lacks the last line: %q", s.String())
	}
	out.Reset()
	clock = clock.Add(time.Second)
	s.Write([]byte("[ERROR] after a second\n"))
	if got := out.String(); !strings.Contains(got, "dropped_lines=800") || !strings.Contains(got, "after a second") {
		t.Errorf("after a second: %q; want the count of dropped lines, then the line", got)
	}
}

// TestPluginStdoutFlood is the attack of a direct plugin that floods its
// stdout after the handshake line: each line is a fault the host logs,
// at stderr's rate, so the log gets a burst and counts the rest.
func TestPluginStdoutFlood(t *testing.T) {
	const flood = 5000
	var out bytes.Buffer
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	d := &directProc{lines: make(chan string, 1)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.readStdout(r, hclog.New(&hclog.LoggerOptions{Output: &out, Level: hclog.Info}))
	}()
	go func() {
		defer w.Close()
		w.Write([]byte("1|5|fd|3|tlspin-direct\n"))
		for i := range flood {
			w.Write([]byte("flood " + strconv.Itoa(i) + "\n"))
		}
	}()
	<-done
	if got := <-d.lines; got != "1|5|fd|3|tlspin-direct\n" {
		t.Fatalf("handshake line %q", got)
	}
	logged := strings.Count(out.String(), "wrote to stdout after its handshake")
	if logged < stderrBurst || logged > stderrBurst+stderrPerSec*10 {
		t.Fatalf("%d of %d lines logged, want the burst of %d and what the rate adds", logged, flood, stderrBurst)
	}
	if !regexp.MustCompile(`stdout ended: dropped_lines=\d+`).MatchString(out.String()) {
		t.Fatalf("the end does not count the dropped lines:\n%s", out.String()[max(0, out.Len()-300):])
	}
	// On a loaded machine the flood outlasts a token (20 ms): the line
	// then admitted counts the lines dropped before it, and the end
	// counts the rest.
	dropped := 0
	for _, m := range regexp.MustCompile(`stdout (?:ended|slowed down): dropped_lines=(\d+)`).FindAllStringSubmatch(out.String(), -1) {
		n, _ := strconv.Atoi(m[1])
		dropped += n
	}
	if logged+dropped != flood {
		t.Errorf("%d lines logged and %d dropped, want %d in all", logged, dropped, flood)
	}
}

// TestPluginStderrEnd: when a plugin's stderr ends, a last line without
// its newline is logged and kept (a plugin's last words before it exits
// often have none), and lines dropped for the rate are counted in the
// log, since no later line will count them: a panic's dump of over
// stderrBurst lines says how much of it was cut.
func TestPluginStderrEnd(t *testing.T) {
	for _, tt := range []struct {
		name  string
		write func(s *pluginStderr)
		want  []string // in the log, in order
		tail  string   // the kept output's end
	}{
		{"a last line without a newline", func(s *pluginStderr) {
			s.Write([]byte("[ERROR] first\n[ERROR] cannot read /etc/pins: permission denied"))
		}, []string{"first", "cannot read /etc/pins: permission denied"}, "cannot read /etc/pins: permission denied"},
		{"a panic cut by the rate", func(s *pluginStderr) {
			s.Write([]byte("panic: runtime error: index out of range\n"))
			for i := range 2 * stderrBurst {
				s.Write([]byte("\tframe " + strconv.Itoa(i) + "\n"))
			}
		}, []string{"panic: runtime error", "dropping them until it slows down", "the plugin's stderr ended: dropped_lines=" + strconv.Itoa(stderrBurst+1)}, "frame " + strconv.Itoa(2*stderrBurst-1)},
		{"nothing left to say", func(s *pluginStderr) {
			s.Write([]byte("[ERROR] all said\n"))
		}, []string{"all said"}, "all said"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			clock := time.Unix(1_000_000, 0)
			s := &pluginStderr{log: hclog.New(&hclog.LoggerOptions{Output: &out, Level: hclog.Info}), rate: lineRate{now: func() time.Time { return clock }}}
			tt.write(s)
			s.end()
			got := out.String()
			at := 0
			for _, w := range tt.want {
				i := strings.Index(got[at:], w)
				if i < 0 {
					t.Fatalf("log lacks %q after byte %d:\n%s", w, at, got)
				}
				at += i + len(w)
			}
			if n := strings.Count(got, "stderr ended"); tt.name == "nothing left to say" && n != 0 {
				t.Errorf("the end was logged with nothing dropped:\n%s", got)
			}
			if !strings.HasSuffix(s.String(), tt.tail) {
				t.Errorf("kept output ends %q; want %q", s.String()[max(0, len(s.String())-60):], tt.tail)
			}
			before := out.Len()
			s.end() // a second end says nothing more
			if out.Len() != before {
				t.Errorf("a second end logged %q", out.String()[before:])
			}
		})
	}
}

// TestLongPluginLogLines: an SDK's log line of a failed verify() carries
// the exception and its traceback or stack as fields, often over 4 KiB.
// Cut at 4 KiB, the JSON no longer parsed, and the line was logged as a
// plain one, at debug: at the default level the error was never seen. A
// JSON line is now read whole up to 64 KiB and logged at its level, its
// message and each field cut to 4 KiB; a longer line, or a plain one, is
// cut as before.
func TestLongPluginLogLines(t *testing.T) {
	stack := strings.Repeat("  File \"verifier.py\", line 12, in verify\n", 300) // 12 KB
	for _, tt := range []struct {
		name, line string
		want       []string // in the log at info level
		max        int      // the most logged
	}{
		{"a traceback field", `{"@level":"error","@message":"verify failed","error":"ValueError('bad')","traceback":` + strconv.Quote(stack) + `}`,
			[]string{"[ERROR]", "verify failed", `error="ValueError('bad')"`, "truncated: 12300 bytes in all"}, 6 << 10},
		{"a long message", `{"@level":"warn","@message":"` + strings.Repeat("m", 10<<10) + `"}`,
			[]string{"[WARN]", "truncated: 10240 bytes in all"}, 6 << 10},
		{"many fields", `{"@level":"error","@message":"m"` + manyFields(2000) + `}`,
			[]string{"[ERROR]", "dropped_fields="}, 10 << 10},
		{"over 64 KiB: a plain line, cut", `{"@level":"error","@message":"` + strings.Repeat("m", 70<<10) + `"}`,
			nil, 0},
		{"a plain line, cut", "[ERROR] " + strings.Repeat("p", 10<<10),
			[]string{"[ERROR]", "line truncated"}, 6 << 10},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			s := &pluginStderr{log: hclog.New(&hclog.LoggerOptions{Output: &out, Level: hclog.Info})}
			s.Write([]byte(tt.line + "\n"))
			s.end()
			got := out.String()
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("logged %.300q…, want it to say %q", got, w)
				}
			}
			if len(got) > tt.max {
				t.Errorf("logged %d bytes, want at most %d", len(got), tt.max)
			}
		})
	}
}

// manyFields returns n JSON fields, each with a comma before it.
func manyFields(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `,"f%04d":"xxxxxxxxxx"`, i)
	}
	return b.String()
}
