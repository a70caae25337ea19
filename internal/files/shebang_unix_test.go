//go:build unix

package files

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestScriptInterpreterIsChecked is the attack of another user on a
// verifier plugin that is a script: the interpreter its #! line names
// runs as this user, with the script's name, and decides whom to trust as
// surely as the script does. One another user owns (nobody's, uid 65534,
// as a reviewer found), may write, or may swap (a directory of theirs or
// one every user may write, a link into one) is refused as the plugin
// itself would be, and so is one found by #!/usr/bin/env on a $PATH that
// passes through such a directory. The #! line is read as Linux reads
// it: at most 255 bytes, the interpreter and one argument after blanks;
// a relative interpreter, which the kernel looks up from the working
// directory, is refused; a chain of scripts is followed, to a bound.
func TestScriptInterpreterIsChecked(t *testing.T) {
	const other = 54321
	// interp makes a trusted program (no #! line) in dir/name's directory.
	interp := func(t *testing.T, dir, name string) string {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		return file(t, dir, name, 0o755)
	}
	script := func(t *testing.T, p, line string) string {
		t.Helper()
		if err := os.WriteFile(p, []byte(line+"\nbody\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tt := range []struct {
		name string
		// setup returns the plugin's first line and the $PATH it runs with.
		setup   func(t *testing.T, dir string) (line, searchPath string)
		refused string // "" if accepted
		plain   bool   // refused, but not as another user's (ErrUntrusted)
	}{
		{"a trusted interpreter", func(t *testing.T, dir string) (string, string) {
			return "#!" + interp(t, dir, "bin/interp"), ""
		}, "", false},
		{"a trusted interpreter with an argument, among blanks", func(t *testing.T, dir string) (string, string) {
			return "#! \t" + interp(t, dir, "bin/interp") + " \t-x  -y \t", ""
		}, "", false},
		{"an interpreter another user owns", func(t *testing.T, dir string) (string, string) {
			p := interp(t, dir, "bin/interp")
			chown(t, p, other)
			return "#!" + p, ""
		}, "belongs to uid 54321", false},
		{"an interpreter nobody owns (uid 65534), with an argument", func(t *testing.T, dir string) (string, string) {
			if os.Geteuid() == overflowUID {
				t.Skip("this user is uid 65534")
			}
			p := interp(t, dir, "x/interp")
			chown(t, p, overflowUID)
			return "#! " + p + " -u", ""
		}, "belongs to uid 65534", false},
		{"an interpreter every user may write", func(t *testing.T, dir string) (string, string) {
			p := interp(t, dir, "bin/interp")
			os.Chmod(p, 0o777)
			return "#!" + p, ""
		}, "may be written by every user (mode 0777)", false},
		{"an interpreter in a directory every user may write", func(t *testing.T, dir string) (string, string) {
			p := interp(t, dir, "bin/interp")
			os.Chmod(filepath.Dir(p), 0o777)
			return "#!" + p, ""
		}, "which every user may write to (mode 0777, not sticky)", false},
		{"an interpreter in another user's directory", func(t *testing.T, dir string) (string, string) {
			p := interp(t, dir, "theirs/interp")
			chown(t, filepath.Dir(p), other)
			return "#!" + p, ""
		}, "which belongs to uid 54321", false},
		{"an interpreter that is a link into a directory every user may write", func(t *testing.T, dir string) (string, string) {
			p := interp(t, dir, "shared/interp")
			os.Chmod(filepath.Dir(p), 0o777)
			link := filepath.Join(dir, "interp")
			symlink(t, p, link)
			return "#!" + link, ""
		}, "which every user may write to (mode 0777, not sticky)", false},
		{"a missing interpreter", func(t *testing.T, dir string) (string, string) {
			return "#!" + filepath.Join(dir, "bin", "nothing"), ""
		}, "", false},
		// The kernel opens it from the working directory of whoever runs
		// the plugin.
		{"a relative interpreter", func(t *testing.T, dir string) (string, string) {
			interp(t, dir, "bin/interp")
			return "#!bin/interp", ""
		}, `names "bin/interp" on its #! line, a relative path`, false},
		// Linux reads 256 bytes and cuts the argument there (or refuses
		// an interpreter's name cut short); macOS reads 512, and would
		// run what was not checked: refused.
		{"a line longer than the kernel reads, a trusted interpreter", func(t *testing.T, dir string) (string, string) {
			return "#!" + interp(t, dir, "bin/interp") + " " + strings.Repeat("a", 400), ""
		}, "its #! line is longer than the 255 bytes Linux reads", true},
		{"a line longer than the kernel reads, env and blanks before a program", func(t *testing.T, dir string) (string, string) {
			chown(t, interp(t, dir, "bin/prog"), other)
			return "#!" + interp(t, dir, "sys/env") + strings.Repeat(" ", 300) + "prog", filepath.Join(dir, "bin")
		}, "its #! line is longer than the 255 bytes Linux reads", true},
		{"an interpreter's name longer than the kernel reads", func(t *testing.T, dir string) (string, string) {
			p := interp(t, dir, "bin/interp")
			chown(t, p, other)
			return "#!" + strings.Repeat("/", 300) + p, ""
		}, "its #! line is longer than the 255 bytes Linux reads", true},
		{"a line of 255 bytes, another user's interpreter", func(t *testing.T, dir string) (string, string) {
			p := interp(t, dir, "bin/interp")
			chown(t, p, other)
			return "#!" + p + " " + strings.Repeat("a", 255-3-len(p)), ""
		}, "belongs to uid 54321", false},
		{"#! and blanks", func(t *testing.T, dir string) (string, string) {
			return "#!  \t ", ""
		}, "names no interpreter", true},
		// Linux reads its #! line, and runs the interpreter, whether or
		// not this user may read it. Root may read it: skipped.
		{"a script this user may execute but not read", func(t *testing.T, dir string) (string, string) {
			if os.Geteuid() == 0 {
				t.Skip("root reads any file")
			}
			return "#!" + interp(t, dir, "bin/interp"), ""
		}, "cannot be read", true},
		// Not a script: the kernel refuses to run it (ENOEXEC), as before.
		{"no #! line", func(t *testing.T, dir string) (string, string) {
			return "echo hello", ""
		}, "", false},
		{"a script as interpreter, whose interpreter is another user's", func(t *testing.T, dir string) (string, string) {
			p := interp(t, dir, "bin/theirs")
			chown(t, p, other)
			return "#!" + script(t, filepath.Join(dir, "bin", "mine"), "#!"+p), ""
		}, "belongs to uid 54321", false},
		{"scripts as interpreters, three deep, trusted", func(t *testing.T, dir string) (string, string) {
			p := interp(t, dir, "bin/interp")
			for _, n := range []string{"a", "b", "c"} {
				p = script(t, filepath.Join(dir, "bin", n), "#!"+p)
			}
			return "#!" + p, ""
		}, "", false},
		{"a script that is its own interpreter", func(t *testing.T, dir string) (string, string) {
			os.MkdirAll(filepath.Join(dir, "bin"), 0o755)
			p := filepath.Join(dir, "bin", "loop")
			return "#!" + script(t, p, "#!"+p), ""
		}, "lead through more than 8 programs", true},
		// env is root's; the program it finds is what decides.
		{"env, the program trusted on $PATH", func(t *testing.T, dir string) (string, string) {
			interp(t, dir, "bin/prog")
			return "#!" + interp(t, dir, "sys/env") + " prog", filepath.Join(dir, "none") + ":" + filepath.Join(dir, "bin")
		}, "", false},
		{"env, the program another user's", func(t *testing.T, dir string) (string, string) {
			chown(t, interp(t, dir, "bin/prog"), other)
			return "#!" + interp(t, dir, "sys/env") + " prog", filepath.Join(dir, "bin")
		}, `which env finds on $PATH`, false},
		{"env, the program a script whose interpreter is another user's", func(t *testing.T, dir string) (string, string) {
			p := interp(t, dir, "x/theirs")
			chown(t, p, other)
			interp(t, dir, "bin/prog")
			script(t, filepath.Join(dir, "bin", "prog"), "#!"+p)
			return "#!" + interp(t, dir, "sys/env") + " prog", filepath.Join(dir, "bin")
		}, "belongs to uid 54321", false},
		{"env, a directory every user may write before the program's", func(t *testing.T, dir string) (string, string) {
			interp(t, dir, "bin/prog")
			interp(t, dir, "shared/other")
			os.Chmod(filepath.Join(dir, "shared"), 0o777)
			return "#!" + interp(t, dir, "sys/env") + " prog", filepath.Join(dir, "shared") + ":" + filepath.Join(dir, "bin")
		}, "which every user may write to (mode 0777, not sticky)", false},
		{"env, a directory every user may write after the program's", func(t *testing.T, dir string) (string, string) {
			interp(t, dir, "bin/prog")
			interp(t, dir, "shared/other")
			os.Chmod(filepath.Join(dir, "shared"), 0o777)
			return "#!" + interp(t, dir, "sys/env") + " prog", filepath.Join(dir, "bin") + ":" + filepath.Join(dir, "shared")
		}, "", false},
		{"env, a relative $PATH entry before the program's", func(t *testing.T, dir string) (string, string) {
			interp(t, dir, "bin/prog")
			return "#!" + interp(t, dir, "sys/env") + " prog", "bin:" + filepath.Join(dir, "bin")
		}, `a relative entry of $PATH`, false},
		{"env, the program on no $PATH entry", func(t *testing.T, dir string) (string, string) {
			return "#!" + interp(t, dir, "sys/env") + " prog", filepath.Join(dir, "bin")
		}, "", false},
		{"env -S, the program another user's", func(t *testing.T, dir string) (string, string) {
			chown(t, interp(t, dir, "bin/prog"), other)
			return "#!" + interp(t, dir, "sys/env") + " -S A=1 prog -u", filepath.Join(dir, "bin")
		}, "which env finds on $PATH", false},
		{"env -S, PATH set to another user's directory", func(t *testing.T, dir string) (string, string) {
			interp(t, dir, "bin/prog")
			chown(t, filepath.Dir(interp(t, dir, "theirs/prog")), other)
			return "#!" + interp(t, dir, "sys/env") + " -S PATH=" + filepath.Join(dir, "theirs") + " prog", filepath.Join(dir, "bin")
		}, "which belongs to uid 54321", false},
		// Linux's env looks "prog -u" up as one name; macOS's splits it.
		{"env, the program another user's, with an argument", func(t *testing.T, dir string) (string, string) {
			chown(t, interp(t, dir, "bin/prog"), other)
			return "#!" + interp(t, dir, "sys/env") + " prog -u", filepath.Join(dir, "bin")
		}, "which env finds on $PATH", false},
		{"env without a program: it runs the script itself", func(t *testing.T, dir string) (string, string) {
			return "#!" + interp(t, dir, "sys/env") + " A=1", filepath.Join(dir, "bin")
		}, "", false},
		// env walks the ".." from where the link leads, not from bin.
		{"env, a $PATH entry with '..' after a link", func(t *testing.T, dir string) (string, string) {
			chown(t, interp(t, dir, "deep/prog"), other)
			interp(t, dir, "deep/sub/x")
			interp(t, dir, "bin/prog")
			symlink(t, filepath.Join(dir, "deep", "sub"), filepath.Join(dir, "bin", "link"))
			return "#!" + interp(t, dir, "sys/env") + " prog", dir + "/bin/link/.."
		}, "belongs to uid 54321", false},
		{"env with another option", func(t *testing.T, dir string) (string, string) {
			interp(t, dir, "bin/prog")
			return "#!" + interp(t, dir, "sys/env") + " -i prog", filepath.Join(dir, "bin")
		}, "cannot tell which program that runs", false},
		{"env, a relative program", func(t *testing.T, dir string) (string, string) {
			return "#!" + interp(t, dir, "sys/env") + " ./prog", filepath.Join(dir, "bin")
		}, `with "./prog" (its #! line), a relative path`, false},
		// The examples' lines: a missing program is found nowhere, and so
		// accepted (nothing runs).
		{"#!/usr/bin/env python3 on the usual $PATH", func(t *testing.T, dir string) (string, string) {
			if _, err := os.Stat("/usr/bin/env"); err != nil {
				t.Skip("no /usr/bin/env here")
			}
			return "#!/usr/bin/env python3", "/usr/local/bin:/usr/bin:/bin"
		}, "", false},
		{"#!/usr/bin/env sh without $PATH: /bin:/usr/bin", func(t *testing.T, dir string) (string, string) {
			if _, err := os.Stat("/usr/bin/env"); err != nil {
				t.Skip("no /usr/bin/env here")
			}
			return "#!/usr/bin/env sh", ""
		}, "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			line, searchPath := tt.setup(t, dir)
			plugins := chmodDir(t, filepath.Join(dir, "plugins"), 0o755)
			p := script(t, filepath.Join(plugins, "tlspin-verifier-x"), line)
			if strings.Contains(tt.name, "not read") {
				os.Chmod(p, 0o111)
			}
			err := CheckExecutable(p, searchPath)
			switch {
			case tt.refused == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.refused != "" && (err == nil || !strings.Contains(err.Error(), tt.refused)):
				t.Fatalf("ATTACK: %v, want refused with %q", err, tt.refused)
			case tt.refused != "" && !tt.plain && !errors.Is(err, ErrUntrusted):
				t.Fatalf("%v: not ErrUntrusted", err)
			case tt.refused != "" && !strings.HasPrefix(err.Error(), "files: "):
				t.Fatalf("%v: no package prefix", err)
			}
			if err != nil {
				t.Log(err)
			}
		})
	}
}

// TestShebang reads #! lines as Linux's binfmt_script does.
func TestShebang(t *testing.T) {
	long := "/" + strings.Repeat("x", 250)
	for _, tt := range []struct {
		in           string
		interp, arg  string
		script, runs bool
	}{
		{"#!/bin/sh\n", "/bin/sh", "", true, true},
		{"#!/bin/sh", "/bin/sh", "", true, true},
		{"#! /usr/bin/env  python3 -u \t\nx", "/usr/bin/env", "python3 -u", true, true},
		{"#!/bin/sh\t-e\n", "/bin/sh", "-e", true, true},
		{"#!/bin/sh \n", "/bin/sh", "", true, true},
		{"#!/bin/s\x00h -e\n", "/bin/s", "", true, true},
		{"#!/bin/sh\x00 -e\n", "/bin/sh", "", true, true},
		{"#!/bin/sh -\x00e\n", "/bin/sh", "-", true, true},
		{"#!\n", "", "", true, false},
		{"#! \t \n", "", "", true, false},
		{"#!" + long + " " + strings.Repeat("a", 100), long, strings.Repeat("a", 255-2-len(long)-1), true, true},
		{"#!" + long + strings.Repeat("y", 10), "", "", true, false},
		{"#!" + strings.Repeat(" ", 300), "", "", true, false},
		{"#", "", "", false, false},
		{"\x7fELF", "", "", false, false},
		{"", "", "", false, false},
	} {
		interp, arg, script, runs := shebang([]byte(tt.in))
		if interp != tt.interp || arg != tt.arg || script != tt.script || runs != tt.runs {
			t.Errorf("shebang(%q) = %q, %q, %v, %v; want %q, %q, %v, %v", tt.in, interp, arg, script, runs, tt.interp, tt.arg, tt.script, tt.runs)
		}
	}
}
