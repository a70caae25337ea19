package host

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/go-hclog"

	"github.com/tlspin/tlspin/core/verify"
	"github.com/tlspin/tlspin/internal/printable"
)

// stderrTailSize is how much of a plugin's last stderr output is kept to
// explain a failed start.
const stderrTailSize = 2048

// maxStderrLine caps one line of a plugin's stderr as read; the rest of a
// longer line is dropped and counted. An SDK's log line of a failed call
// carries the exception's traceback or stack, often over the 4 KiB logged
// of a text (verify.MaxTextLen): cut there, its JSON would not parse, and
// the line would be logged as a plain one, at debug.
const maxStderrLine = 64 << 10

// maxStderrFields bounds the bytes of the fields logged of one JSON line,
// each already cut to verify.MaxTextLen: the others are dropped and
// counted.
const maxStderrFields = 8 << 10

// How many of a plugin's stderr lines the host logs: a burst, then so
// many a second; the others are dropped and counted. A plugin that floods
// its stderr (at error level, which any log level shows) would otherwise
// fill the host's log, and hold up every goroutine of the host that logs
// meanwhile. Lines the host's level hides cost nothing, and the last
// stderrTailSize bytes are kept whatever the rate.
const (
	stderrBurst  = 200
	stderrPerSec = 50
)

// pluginStderr is go-plugin's ClientConfig.Stderr: it gets a plugin's
// stderr one line at a time, keeps the last lines so that a plugin that
// dies before the handshake can say why in the error, whatever the log
// level, and re-emits every line on the host's logger, which is named after
// the verifier ("md5pin"), not after the executable. A line of hclog JSON
// (what the SDK writes) keeps its level, message and fields; the plugin's
// @module, @timestamp and @caller are dropped, since the host's logger says
// who and when. Any other line is logged at debug, or at error from the
// start of a Go panic on.
type pluginStderr struct {
	log hclog.Logger

	mu      sync.Mutex
	line    []byte
	dropped int
	tail    []byte
	inPanic bool

	rate lineRate // of the lines logged
}

// lineRate bounds the lines the host logs from one of a plugin's streams
// (admit): stderrBurst, then stderrPerSec; the others are dropped and
// counted. The zero lineRate is ready; it is not safe for concurrent use.
type lineRate struct {
	stream     string           // what the warnings call it: "stderr", "stdout"
	now        func() time.Time // nil: time.Now
	tokens     float64          // left at last
	last       time.Time
	suppressed int // lines dropped since the last one logged
}

func (s *pluginStderr) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(p)
	// p may be a whole message of go-plugin's stdio stream (up to
	// rpc.MaxMessageSize): cut it in place, since a copy of the rest at
	// every line made a megabyte of newlines cost minutes of CPU.
	for len(p) > 0 {
		chunk, rest, eol := bytes.Cut(p, []byte{'\n'})
		if room := maxStderrLine - len(s.line); len(chunk) > room {
			s.dropped += len(chunk) - room
			chunk = chunk[:room]
		}
		s.line = append(s.line, chunk...)
		if !eol {
			break
		}
		s.endLine()
		p = rest
	}
	return n, nil
}

// endLine keeps and logs the current line; s.mu is held.
func (s *pluginStderr) endLine() {
	line := strings.ToValidUTF8(string(s.line), "\uFFFD")
	whole := s.dropped == 0
	s.line, s.dropped = s.line[:0], 0
	shown := line // as a plain line is logged and kept
	if len(line) > verify.MaxTextLen || !whole {
		shown = cutLine(line)
	}
	s.emit(line, shown, whole)
	s.tail = append(s.tail, shown...)
	s.tail = append(s.tail, '\n')
	// Cut to its last stderrTailSize bytes once it holds twice that, not
	// at every line: a moving window of short lines.
	if len(s.tail) > 2*stderrTailSize {
		s.tail = slices.Delete(s.tail, 0, len(s.tail)-stderrTailSize)
	}
}

// cutLine returns line cut, on a rune boundary, to verify.MaxTextLen
// bytes with a note saying so.
func cutLine(line string) string {
	const note = " … [line truncated]"
	cut := min(len(line), verify.MaxTextLen-len(note))
	for cut > 0 && cut < len(line) && !utf8.RuneStart(line[cut]) {
		cut--
	}
	return line[:cut] + note
}

// end is called once the plugin's stderr has ended (its process exited
// or closed it): a last line without its newline is logged and kept, and
// lines dropped for the rate since the last one logged are counted in the
// log, which no later line will do. A panic's dump of over stderrBurst
// lines ends that way: cut, and saying how much was cut.
func (s *pluginStderr) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.line) > 0 {
		s.endLine()
	}
	s.rate.end(s.log)
}

// String returns the kept output (its last stderrTailSize bytes),
// trimmed, or "".
func (s *pluginStderr) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.TrimSpace(string(s.tail[max(0, len(s.tail)-stderrTailSize):]))
}

// emit logs line, whole unless its end was dropped (maxStderrLine): if
// it is hclog JSON, at most verify.MaxTextLen of each text; else shown,
// line cut to that (cutLine).
func (s *pluginStderr) emit(line, shown string, whole bool) {
	if line == "" {
		return
	}
	// hclog escapes the string values of fields, not the message (nor
	// field names and other values: see parseHCLogJSON): a plugin must not
	// forge the host's log lines or drive its terminal.
	lvl, msg, args, ok := hclog.NoLevel, "", []any(nil), false
	if whole {
		lvl, msg, args, ok = parseHCLogJSON(line)
	}
	if ok {
		msg = printable.Escape(verify.Truncate(msg))
	} else {
		msg, lvl = printable.Escape(shown), hclog.NoLevel
		for _, l := range []hclog.Level{hclog.Trace, hclog.Debug, hclog.Info, hclog.Warn, hclog.Error} {
			if strings.HasPrefix(msg, "["+strings.ToUpper(l.String())+"]") {
				lvl = l
				break
			}
		}
		if lvl == hclog.NoLevel {
			if strings.HasPrefix(msg, "panic: ") || strings.HasPrefix(msg, "fatal error: ") {
				s.inPanic = true
			}
			lvl = hclog.Debug
			if s.inPanic {
				lvl = hclog.Error
			}
		}
	}
	if s.rate.admit(s.log, lvl) {
		s.log.Log(lvl, msg, args...)
	}
}

// admit reports whether a line at lvl is logged on log, within
// stderrBurst and stderrPerSec. The first line dropped says so, and the
// next line logged says how many were.
func (r *lineRate) admit(log hclog.Logger, lvl hclog.Level) bool {
	if lvl < log.GetLevel() {
		return true // the logger drops it, at no cost
	}
	now := time.Now()
	if r.now != nil {
		now = r.now()
	}
	if r.last.IsZero() {
		r.tokens = stderrBurst
	} else {
		r.tokens = min(stderrBurst, r.tokens+now.Sub(r.last).Seconds()*stderrPerSec)
	}
	r.last = now
	if r.tokens < 1 {
		if r.suppressed == 0 {
			log.Warn(fmt.Sprintf("the plugin writes more than %d lines a second to its %s: dropping them until it slows down", stderrPerSec, r.name()))
		}
		r.suppressed++
		return false
	}
	r.tokens--
	if r.suppressed > 0 {
		log.Warn("the plugin's "+r.name()+" slowed down", "dropped_lines", r.suppressed)
		r.suppressed = 0
	}
	return true
}

// end logs how many lines were dropped since the last one logged, once
// the stream has ended: no later line will.
func (r *lineRate) end(log hclog.Logger) {
	if r.suppressed > 0 {
		log.Warn("the plugin's "+r.name()+" ended", "dropped_lines", r.suppressed)
		r.suppressed = 0
	}
}

func (r *lineRate) name() string {
	if r.stream == "" {
		return "stderr"
	}
	return r.stream
}

// parseHCLogJSON reads a line an hclog JSON logger wrote: its level,
// message and fields in name order, without hclog's @-fields, each field's
// name and value cut to verify.MaxTextLen, and fields past
// maxStderrFields bytes dropped and counted.
func parseHCLogJSON(line string) (hclog.Level, string, []any, bool) {
	if !strings.HasPrefix(line, "{") {
		return hclog.NoLevel, "", nil, false
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		return hclog.NoLevel, "", nil, false
	}
	lv, _ := m["@level"].(string)
	msg, hasMsg := m["@message"].(string)
	// A line's level is one a logger writes at: "off" is what a logger
	// is set to, and a line "at off" would be shown whatever the host's
	// level, even with its logging off.
	lvl := hclog.LevelFromString(lv)
	if lvl < hclog.Trace || lvl > hclog.Error || !hasMsg {
		return hclog.NoLevel, "", nil, false
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		if !strings.HasPrefix(k, "@") {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	// hclog writes field names, and values that are not strings (arrays
	// rendered with %v, objects, numbers), as they are: the plugin chooses
	// both. A value that is not a string becomes an escaped string, which
	// hclog quotes where it holds a space or "=", as it does any string
	// value; a name is quoted unless it is a plain word, so that a name
	// such as "a=1 verdict" cannot pass for fields of the host's own.
	args := make([]any, 0, 2*len(keys))
	size := 0
	for i, k := range keys {
		v, ok := m[k].(string)
		if !ok {
			v = printable.Escape(fmt.Sprint(m[k]))
		}
		name, v := fieldName(verify.Truncate(k)), verify.Truncate(v)
		if size += len(name) + len(v); size > maxStderrFields {
			args = append(args, "dropped_fields", len(keys)-i)
			break
		}
		args = append(args, name, v)
	}
	return lvl, msg, args, true
}

// fieldName returns a plugin's hclog field name as the host logs it: as
// it is if it is a plain word (letters, digits, "_", "-", "."), else
// quoted and escaped.
func fieldName(k string) string {
	plain := k != ""
	for _, r := range k {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !strings.ContainsRune("_-.", r) {
			plain = false
			break
		}
	}
	if plain {
		return k
	}
	return strconv.QuoteToASCII(k)
}

// goPluginLogger is the logger go-plugin gets: the verifier's, except that
// the logger go-plugin names after the executable to re-emit its stderr
// (as "tlspin.md5pin.exe", with the plugin's @module and timestamp as
// fields) is switched off: pluginStderr does that job.
type goPluginLogger struct {
	hclog.Logger
	muted string
	// noChannel bounds go-plugin's warnings of stdio messages on no
	// channel (goPluginNoChannel), shared by the loggers Named makes.
	noChannel *sharedRate
}

// sharedRate is a lineRate that goroutines may share.
type sharedRate struct {
	mu   sync.Mutex
	rate lineRate
}

func (s *sharedRate) admit(log hclog.Logger, lvl hclog.Level) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rate.admit(log, lvl)
}

// newGoPluginLogger returns the logger go-plugin gets for the plugin whose
// executable is path, which logs on log.
func newGoPluginLogger(log hclog.Logger, path string) goPluginLogger {
	return goPluginLogger{Logger: log, muted: filepath.Base(path), noChannel: &sharedRate{rate: lineRate{stream: "stdio stream (on no channel)"}}}
}

// go-plugin narrates every plugin's exit, at info if clean and at error if
// not (killed: by the host after a timeout, at a start that was cancelled,
// or at a stop that was not graceful), and warns when it had to kill one.
// The host reports each of these itself where it matters (a failed start,
// a timeout, a crash), so go-plugin's own are for debugging.
const (
	goPluginExited = "plugin process exited"
	goPluginKilled = "plugin failed to exit gracefully"
)

// goPluginNoChannel is go-plugin's warning of a message on a plugin's stdio
// stream that is for neither its stdout nor its stderr. It comes once per
// message, and the plugin sends as many as it likes, of a few bytes each:
// these warnings are held to the rate of the plugin's own lines
// (lineRate).
const goPluginNoChannel = "unknown channel, dropping"

func (l goPluginLogger) Info(msg string, args ...any) {
	l.narrate(hclog.Info, msg, args...)
}

func (l goPluginLogger) Warn(msg string, args ...any) {
	l.narrate(hclog.Warn, msg, args...)
}

func (l goPluginLogger) Error(msg string, args ...any) {
	l.narrate(hclog.Error, msg, args...)
}

// narrate logs msg at lvl, or at debug level for go-plugin's narration.
func (l goPluginLogger) narrate(lvl hclog.Level, msg string, args ...any) {
	if msg == goPluginExited || msg == goPluginKilled {
		lvl = hclog.Debug
	}
	if msg == goPluginNoChannel && l.noChannel != nil && !l.noChannel.admit(l.Logger, lvl) {
		return
	}
	l.Logger.Log(lvl, msg, args...)
}

func (l goPluginLogger) Named(name string) hclog.Logger {
	if name == l.muted {
		return hclog.New(&hclog.LoggerOptions{Level: hclog.Off, Output: io.Discard})
	}
	return goPluginLogger{Logger: l.Logger.Named(name), muted: l.muted, noChannel: l.noChannel}
}
