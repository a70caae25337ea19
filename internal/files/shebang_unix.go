//go:build unix

package files

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// binprmBufSize is how much of a file Linux reads to tell how to run it
// (BINPRM_BUF_SIZE): a #! line is read no further.
const binprmBufSize = 256

// maxInterpreters bounds the chain of programs a plugin's #! lines lead
// to, each interpreter and each program env finds counted. Linux follows
// at most 5 #! lines in one exec (ELOOP past them); env starts another.
const maxInterpreters = 8

// defaultPath is what glibc's execvp, and so env, searches when $PATH is
// unset (confstr _CS_PATH).
const defaultPath = "/bin:/usr/bin"

// errTooManyInterpreters is the refusal of a chain longer than
// maxInterpreters, passed up as it is rather than once per link.
type errTooManyInterpreters struct{ error }

// checkInterpreter refuses the script at path (real, once its links are
// resolved, and already checked itself) if the program its #! line names
// would be refused as a plugin: that program runs as this user with the
// script's name, and decides whom to trust as surely as the script does.
// The line is read and split as Linux does (shebang). For env, the
// program it then finds on searchPath is checked too (checkEnv). A file
// without a #! line names no interpreter: a binary runs as it is (its
// ELF loader is not checked), anything else not at all (ENOEXEC). depth
// counts the programs checked before this one on the way from the plugin.
func checkInterpreter(path, real, searchPath string, depth int) error {
	f, err := os.OpenFile(real, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOFOLLOW, 0)
	if err != nil {
		// Linux runs what it may execute without read permission, its
		// #! line's interpreter too: what cannot be read is refused.
		return fmt.Errorf("files: %q cannot be read (%w), so the interpreter its #! line may name cannot be checked: make it readable by this user", path, err)
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return fmt.Errorf("files: %q is no longer a regular file", path)
	}
	buf := make([]byte, binprmBufSize)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return fmt.Errorf("files: reading %q: %w", path, err)
	}
	interp, arg, script, runs := shebang(buf[:n])
	switch {
	case !script:
		return nil
	case n == binprmBufSize && !bytes.ContainsAny(buf, "\n\x00"):
		// Linux cuts the argument short, or refuses the file; a system
		// that reads further (macOS reads 512 bytes) would run what the
		// check did not see.
		return fmt.Errorf("files: %q: its #! line is longer than the %d bytes Linux reads: put the interpreter's absolute path, and at most one argument, on a shorter first line", path, binprmBufSize-1)
	case !runs:
		return fmt.Errorf("files: %q starts with #!, but names no interpreter (Linux will not run it): put the interpreter's absolute path, and at most one argument, on its first line", path)
	case !strings.HasPrefix(interp, "/"):
		return untrusted("files: %q names %q on its #! line, a relative path, which the kernel looks up from the working directory of whoever runs it: name the interpreter by its absolute path (#!/usr/bin/env NAME to find it on $PATH)", path, interp)
	case depth >= maxInterpreters:
		return errTooManyInterpreters{fmt.Errorf("files: %q: its #! lines lead through more than %d programs (a script that runs itself?), and Linux follows 5 at most: name a program that is not a script on the #! line", path, maxInterpreters)}
	}
	if err := checkProgram(interp, searchPath, depth+1); err != nil {
		if errors.As(err, new(errTooManyInterpreters)) {
			return err
		}
		return fmt.Errorf("files: %q is a script run by %q (its #! line), which is refused: %w", path, interp, err)
	}
	if filepath.Base(interp) == "env" {
		return checkEnv(path, arg, searchPath, depth+1)
	}
	return nil
}

// shebang reads the #! line at the start of b (the file's first
// binprmBufSize bytes) as Linux's binfmt_script does: script says it
// starts with #!, runs that Linux finds an interpreter there. The line
// ends at a newline, a NUL, or after the 255th byte if the interpreter's
// name ends before it (else Linux refuses the file); blanks (spaces and
// tabs) around it are dropped; the interpreter is the first word, and
// the rest, blanks inside kept, is its one argument.
func shebang(b []byte) (interp, arg string, script, runs bool) {
	if len(b) < 2 || b[0] != '#' || b[1] != '!' {
		return "", "", false, false
	}
	buf := make([]byte, binprmBufSize) // the kernel's buffer, zeroed past the file
	copy(buf, b)
	last := len(buf) - 1
	blank := func(c byte) bool { return c == ' ' || c == '\t' }
	// nonBlank and terminator search buf[from:to+1], as next_non_spacetab
	// and next_terminator do; -1 if none.
	nonBlank := func(from, to int) int {
		for i := from; i <= to; i++ {
			if !blank(buf[i]) {
				return i
			}
		}
		return -1
	}
	terminator := func(from, to int) int {
		for i := from; i <= to; i++ {
			if blank(buf[i]) || buf[i] == 0 {
				return i
			}
		}
		return -1
	}
	end := -1
	for i := 0; i < len(buf) && buf[i] != 0; i++ { // strnchr stops at a NUL
		if buf[i] == '\n' {
			end = i
			break
		}
	}
	if end < 0 {
		name := nonBlank(2, last)
		if name < 0 || terminator(name, last) < 0 {
			return "", "", true, false // blanks only, or a name cut short
		}
		end = last
	}
	for blank(buf[end-1]) {
		end--
	}
	name := nonBlank(2, end)
	if name < 0 || name == end {
		return "", "", true, false
	}
	argAt := -1
	sep := terminator(name, end)
	if sep >= 0 && buf[sep] != 0 {
		argAt = nonBlank(sep, end)
	}
	buf[end] = 0
	if sep >= 0 {
		buf[sep] = 0
	}
	cstring := func(i int) string {
		s := buf[i:]
		if j := strings.IndexByte(string(s), 0); j >= 0 {
			s = s[:j]
		}
		return string(s)
	}
	interp = cstring(name)
	if argAt >= 0 {
		arg = cstring(argAt)
	}
	return interp, arg, true, true
}

// checkEnv refuses the script at path if the program its
// "#!/usr/bin/env ARG" line makes env run would be refused as a plugin.
// env searches searchPath (defaultPath if empty) for it as execvp does,
// name by name: each directory before the one it is found in is checked
// too, since whoever could write there could put a program of theirs
// first. A program found nowhere is accepted: env fails, and nothing runs.
// Only "[-S] [VAR=VALUE...] NAME [ARGS]" is read (a PATH= there is what
// env searches): with other options, or quotes, escapes and variables in
// -S's string, which program runs is not told, and the script is
// refused. Without a NAME, env runs the script itself, checked
// already (again and again: nothing else runs).
func checkEnv(path, arg, searchPath string, depth int) error {
	cannot := func(why string) error {
		return untrusted("files: %q is run by env with %q (its #! line), and tlspin cannot tell which program that runs (%s): name the interpreter by its absolute path, or write #!/usr/bin/env NAME", path, arg, why)
	}
	// Linux passes the rest of the line as one argument, blanks and all,
	// which env takes for a name; macOS splits it into words, and env
	// -S does. Words are read: on Linux, that checks a program that
	// will not run, which is harmless.
	s := arg
	if rest, ok := strings.CutPrefix(arg, "-S"); ok {
		if strings.ContainsAny(rest, "\\\"'$#") {
			return cannot("quotes, escapes, variables or comments in -S's string")
		}
		s = rest
	}
	words := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\t' })
	name := ""
	for _, w := range words {
		if strings.HasPrefix(w, "-") {
			return cannot("an option other than -S")
		}
		if k, v, ok := strings.Cut(w, "="); ok {
			if k == "PATH" {
				searchPath = v
				if v == "" {
					searchPath = ":" // set but empty: the working directory
				}
			}
			continue
		}
		name = w
		break
	}
	if name == "" {
		return nil
	}
	if depth >= maxInterpreters {
		return errTooManyInterpreters{fmt.Errorf("files: %q: its #! lines lead through more than %d programs (a script that runs itself?): name a program that is not a script on the #! line", path, maxInterpreters)}
	}
	refused := func(prog string, err error) error {
		if errors.As(err, new(errTooManyInterpreters)) {
			return err
		}
		return fmt.Errorf("files: %q is a script run by %q, which env finds on $PATH (%q) as %s, which is refused: %w", path, name, searchPath, prog, err)
	}
	if strings.Contains(name, "/") {
		if !strings.HasPrefix(name, "/") {
			return untrusted("files: %q is run by env with %q (its #! line), a relative path, which env looks up from the working directory of whoever runs it: name the program by its absolute path", path, name)
		}
		if err := checkProgram(name, searchPath, depth+1); err != nil {
			return refused(name, err)
		}
		return nil
	}
	dirs := searchPath
	if dirs == "" {
		dirs = defaultPath
	}
	for _, dir := range strings.Split(dirs, ":") {
		if !strings.HasPrefix(dir, "/") {
			return untrusted("files: %q is a script run by %q, which env looks for in %q, a relative entry of $PATH (%q), before it finds it anywhere else: which program runs would depend on the working directory: remove %q from $PATH, or name the interpreter by its absolute path", path, name, dir, searchPath, dir)
		}
		prog := dir + "/" + name // as execvp makes it: not cleaned, a ".." walked
		real, shared, err := walk(prog, true)
		if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, fs.ErrPermission) {
			continue // execvp goes on past what is no directory, or closed
		}
		if err != nil {
			return refused(prog, err)
		}
		st, err := os.Stat(real)
		if err != nil || st.IsDir() || unix.Access(real, unix.X_OK) != nil {
			// Not there, or not what execvp runs: it goes on, and so
			// may a program a group put there later.
			if len(shared) > 0 && errors.Is(err, fs.ErrNotExist) {
				return refused(prog, refuseShared(prog, shared, nil, false))
			}
			continue
		}
		if err := checkProgram(prog, searchPath, depth+1); err != nil {
			return refused(prog, err)
		}
		return nil
	}
	return nil
}
