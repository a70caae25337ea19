//go:build unix

package files

import (
	"errors"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestGroupWritableDirectory is the attack of another member of a group
// that may write a directory on the path of this user's trust file: a
// tofu store (0600) in a team's 2770 directory, which they could remove
// so that a man-in-the-middle is recorded as first use, or replace with
// an old version. Such a directory is refused unless the group is this
// user's alone (a user private group, which a umask of 002 gives every
// directory), or the file is writable by that group anyway (a list the
// team keeps together), or the directory is sticky.
func TestGroupWritableDirectory(t *testing.T) {
	const gid = 54322
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name      string
		members   string // of the group, in /etc/group
		extra     string // more lines of /etc/group
		nsswitch  string // "": files only
		ownGroup  string // a user with it as their own, in /etc/passwd
		dirMode   os.FileMode
		fileMode  os.FileMode // 0: the file does not exist
		fileGroup int         // -1: the file keeps its group
		refused   string      // "" to read
	}{
		{"a team's directory, this user's file", "alice," + me.Username, "", "", "", os.ModeSetgid | 0o770, 0o600, -1, `may write to (mode 0770, not sticky), and its other members could replace or remove it`},
		{"a team's directory, the team's file", "alice," + me.Username, "", "", "", os.ModeSetgid | 0o770, 0o660, gid, ""},
		{"a team's directory, the file writable by another group", "alice", "", "", "", os.ModeSetgid | 0o770, 0o660, 0, "its other members could replace or remove it"},
		{"a team's directory, the file missing", "alice", "", "", "", os.ModeSetgid | 0o770, 0, -1, "its other members could put a file of theirs there"},
		{"a group others have as their own", "", "", "", "alice", os.ModeSetgid | 0o770, 0o600, -1, "its other members could replace or remove it"},
		{"this user's private group", me.Username, "", "", "", os.ModeSetgid | 0o770, 0o600, -1, ""},
		// The files are not the whole story: a directory service may add
		// members they do not show.
		{"a private group, users also from systemd's userdb", me.Username, "", "passwd: files systemd\ngroup: files systemd\n", "", os.ModeSetgid | 0o770, 0o600, -1, "whom tlspin cannot all know here (/etc/nsswitch.conf reads users or groups from more than /etc/passwd and /etc/group), could replace or remove it"},
		{"a private group, groups also from LDAP", me.Username, "", "passwd:  files\ngroup:   files [SUCCESS=return] ldap # directory\n", "", os.ModeSetgid | 0o770, 0o600, -1, "whom tlspin cannot all know here (/etc/nsswitch.conf reads users or groups from more than /etc/passwd and /etc/group), could replace or remove it"},
		{"a private group, actions but files only", me.Username, "", "passwd: files\ngroup: files [NOTFOUND=return]\n", "", os.ModeSetgid | 0o770, 0o600, -1, ""},
		{"a private group, NIS compat lines", me.Username, "+:::\n", "", "", os.ModeSetgid | 0o770, 0o600, -1, "its other members could replace or remove it"},
		// glibc reads 054322 as 54322: alice is in the group too.
		{"a private group, and a line naming its gid 0-padded", me.Username, "alias:x:054322:alice\n", "", "", os.ModeSetgid | 0o770, 0o600, -1, "its other members could replace or remove it"},
		{"a group of no one", "", "", "", "", 0o770, 0o600, -1, ""},
		{"a team's sticky directory", "alice", "", "", "", os.ModeSticky | 0o770, 0o600, -1, ""},
		{"a team's directory it may only read", "alice", "", "", "", 0o750, 0o600, -1, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			nsswitch := "passwd: files\ngroup: files\n"
			if tt.nsswitch != "" {
				nsswitch = tt.nsswitch
			}
			passwd := me.Username + ":x:" + me.Uid + ":" + me.Gid + "::/:/bin/sh\n"
			if tt.ownGroup != "" {
				passwd += tt.ownGroup + ":x:54323:" + strconv.Itoa(gid) + "::/:/bin/sh\n"
			}
			fakeAccounts(t, "# groups\nroot:x:0:\nteam:x:"+strconv.Itoa(gid)+":"+tt.members+"\n"+tt.extra, passwd, nsswitch)

			dir := filepath.Join(t.TempDir(), "team")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Lchown(dir, -1, gid); err != nil {
				t.Skipf("cannot give a directory to another group here: %v", err)
			}
			if err := os.Chmod(dir, tt.dirMode); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "known_pins")
			if tt.fileMode != 0 {
				file(t, dir, "known_pins", tt.fileMode)
				if tt.fileGroup >= 0 {
					if err := os.Lchown(path, -1, tt.fileGroup); err != nil {
						t.Fatal(err)
					}
				}
			}
			_, err := ReadTrusted(path)
			switch {
			case tt.refused == "" && tt.fileMode != 0 && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.refused == "" && tt.fileMode == 0 && !errors.Is(err, fs.ErrNotExist):
				t.Fatalf("a missing file: %v, want it missing", err)
			case tt.refused != "" && (err == nil || !strings.Contains(err.Error(), tt.refused)):
				t.Fatalf("read: %v, want refused with %q", err, tt.refused)
			case tt.refused != "" && errors.Is(err, fs.ErrNotExist):
				t.Fatalf("refused as missing: %v; a missing store would count as empty", err)
			}
			// A writer (tofu's store) writes 0600: any group that may
			// replace it is refused.
			_, rerr := Resolve(path)
			if wantRefused := tt.refused != "" || tt.fileGroup == gid; (rerr != nil) != wantRefused {
				t.Errorf("Resolve: %v, want refused: %v", rerr, wantRefused)
			}
			// A writer's file is this user's alone: no group is to be
			// given it.
			if rerr != nil && strings.Contains(rerr.Error(), "make it writable") {
				t.Errorf("Resolve advises making a file of this user's alone group-writable: %v", rerr)
			}
		})
	}
}

// fakeAccounts points privateGroup at these contents of /etc/group,
// /etc/passwd and /etc/nsswitch.conf for the test.
func fakeAccounts(t *testing.T, group, passwd, nsswitch string) {
	t.Helper()
	etc := t.TempDir()
	saved := accounts
	t.Cleanup(func() { accounts = saved })
	accounts.group = filepath.Join(etc, "group")
	accounts.passwd = filepath.Join(etc, "passwd")
	accounts.nsswitch = filepath.Join(etc, "nsswitch.conf")
	writeFile(t, accounts.group, group)
	writeFile(t, accounts.passwd, passwd)
	writeFile(t, accounts.nsswitch, nsswitch)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestGroupWritableExecutable: a team may keep a list together, but a
// verifier plugin its group may write runs as this user whatever another
// member puts in it: refused, unless the group is this user's alone.
func TestGroupWritableExecutable(t *testing.T) {
	const gid = 54322
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, members, refused string
	}{
		{"a team's", "alice," + me.Username, `may be written by group gid 54322 (mode 0775), whose other members could change what it decides`},
		{"this user's private group's", me.Username, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fakeAccounts(t, "team:x:"+strconv.Itoa(gid)+":"+tt.members+"\n", me.Username+":x:"+me.Uid+":"+me.Gid+"::/:/bin/sh\n", "group: files\npasswd: files\n")
			p := file(t, t.TempDir(), "tlspin-verifier-x", 0o775)
			if err := os.Lchown(p, -1, gid); err != nil {
				t.Skipf("cannot give a file to another group here: %v", err)
			}
			err := CheckExecutable(p, "")
			if (err == nil) != (tt.refused == "") || (err != nil && !strings.Contains(err.Error(), tt.refused)) {
				t.Fatalf("%v, want refused with %q", err, tt.refused)
			}
		})
	}
}

// TestFilesOnly reads /etc/nsswitch.conf as glibc does, so that a source
// besides the files is never missed: a line without a colon, an action in
// brackets followed by a source without a blank, a comment anywhere.
func TestFilesOnly(t *testing.T) {
	for _, tt := range []struct {
		name, conf string
		want       bool
	}{
		{"files", "passwd: files\ngroup: files\n", true},
		{"no colon, files", "passwd files\ngroup\tfiles\n", true},
		{"a comment", "passwd: files # ldap\ngroup:files#sss\n", true},
		{"an action between files", "passwd: files [NOTFOUND=return] files\ngroup: files\n", true},
		{"other databases", "passwd: files\ngroup: files\nhosts: files dns\nnetgroup: nis\n", true},
		{"systemd", "passwd: files systemd\ngroup: files systemd\n", false},
		{"no colon, systemd", "passwd: files\ngroup           files systemd\n", false},
		{"a source glued to an action", "passwd: files\ngroup: files [UNAVAIL=return]systemd\n", false},
		{"an unclosed action", "passwd: files\ngroup: files [UNAVAIL=return\n", false},
		{"compat", "passwd: compat\ngroup: compat\n", false},
		{"sss for passwd only", "passwd: files sss\ngroup: files\n", false},
		{"indented", "  group: files ldap\n", false},
		{"a vertical tab after the name", "passwd: files\ngroup\v: files systemd\n", false},
		{"a form feed before the name", "passwd: files\n\fgroup: files systemd\n", false},
		{"login groups from elsewhere", "passwd: files\ngroup: files\ninitgroups: files systemd\n", false},
		{"login groups from the files", "passwd: files\ngroup: files\ninitgroups: files\n", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "nsswitch.conf")
			writeFile(t, path, tt.conf)
			if got := filesOnly(path); got != tt.want {
				t.Errorf("filesOnly(%q) = %v, want %v", tt.conf, got, tt.want)
			}
		})
	}
	if !filesOnly(filepath.Join(t.TempDir(), "missing")) {
		t.Error("a missing nsswitch.conf is not files only")
	}
}

// TestGroupWritableDirectoriesAllNamed: where several directories on a
// path are a group's to write, the refusal names every one in its advice,
// so that one run says all there is to change.
func TestGroupWritableDirectoriesAllNamed(t *testing.T) {
	const gid = 54322
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	fakeAccounts(t, "team:x:"+strconv.Itoa(gid)+":alice\n", me.Username+":x:"+me.Uid+":"+me.Gid+"::/:/bin/sh\n", "group: files\npasswd: files\n")
	outer := filepath.Join(t.TempDir(), "a")
	inner := filepath.Join(outer, "b")
	if err := os.MkdirAll(inner, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{outer, inner} {
		if err := os.Lchown(d, -1, gid); err != nil {
			t.Skipf("cannot give a directory to another group here: %v", err)
		}
		if err := os.Chmod(d, 0o770); err != nil {
			t.Fatal(err)
		}
	}
	path := file(t, inner, "pins", 0o600)
	_, err = ReadTrusted(path)
	if want := "chmod g-w " + outer + " " + inner; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("%v, want the advice %q", err, want)
	}
}
