//go:build unix

package files

import (
	"bufio"
	"errors"
	"io/fs"
	"os"
	"os/user"
	"strconv"
	"strings"
)

// accounts are the files privateGroup reads; tests point them elsewhere.
var accounts = struct{ group, passwd, nsswitch string }{"/etc/group", "/etc/passwd", "/etc/nsswitch.conf"}

// privateGroup reports whether no user but this one can be in group gid,
// as in a user private group (a group of one, named after its user, which
// a umask of 002 makes every new directory writable by): /etc/group lists
// no other member, and /etc/passwd gives no other user it as their own.
// Debian's OpenSSH accepts group-writable directories on the same
// grounds.
//
// It answers from those files alone, so it says no wherever they may not
// be the whole story: where /etc/nsswitch.conf takes users or groups from
// anything but them (LDAP, SSSD, systemd's userdb), which can add members
// the files do not show, where they have NIS compat lines (+ and -), and
// for a group they do not list or a line they cannot parse.
func privateGroup(gid uint32) bool {
	if !filesOnly(accounts.nsswitch) {
		return false
	}
	me := os.Geteuid()
	u, err := user.LookupId(strconv.Itoa(me))
	if err != nil {
		return false
	}
	found := false
	ok := scan(accounts.group, func(f []string) bool {
		id, ok := field(f, 2)
		if !ok {
			return false
		}
		if id != uint64(gid) {
			return true
		}
		found = true
		for _, m := range strings.Split(f[3], ",") {
			if m != "" && m != u.Username {
				return false
			}
		}
		return true
	})
	if !ok || !found {
		return false
	}
	return scan(accounts.passwd, func(f []string) bool {
		uid, ok1 := field(f, 2)
		g, ok2 := field(f, 3)
		return ok1 && ok2 && (g != uint64(gid) || uid == uint64(me))
	})
}

// groupMembers names who, besides this user, may be in a group that
// privateGroup did not find private, for messages.
func groupMembers() string {
	if !filesOnly(accounts.nsswitch) {
		return "its members, whom tlspin cannot all know here (/etc/nsswitch.conf reads users or groups from more than /etc/passwd and /etc/group),"
	}
	return "its other members"
}

// field parses the number in field i of an account line (glibc reads
// "02001" as 2001), or says the line cannot be read so.
func field(f []string, i int) (uint64, bool) {
	if len(f) < 4 {
		return 0, false
	}
	n, err := strconv.ParseUint(f[i], 10, 32)
	return n, err == nil
}

// blanks are what glibc's isspace takes for one, in the C locale.
const blanks = " \t\n\v\f\r"

// filesOnly reports whether the name service switch at path takes users,
// groups and login groups (initgroups) from the files alone; a missing
// file means that. It reads lines as glibc does: the database's name ends
// at a colon or a blank (either may stand alone), "#" starts a comment
// anywhere, and an action in brackets may be followed by the next source
// without a blank.
func filesOnly(path string) bool {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return true
	}
	if err != nil {
		return false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		line, _, _ := strings.Cut(s.Text(), "#")
		line = strings.TrimLeft(line, blanks)
		end := strings.IndexAny(line, ":"+blanks)
		if end < 0 {
			continue
		}
		// initgroups gives users their groups at login, beside group.
		if db := line[:end]; db != "passwd" && db != "group" && db != "initgroups" {
			continue
		}
		for _, src := range nsSources(strings.TrimPrefix(strings.TrimLeft(line[end:], blanks), ":")) {
			if src != "files" {
				return false
			}
		}
	}
	return s.Err() == nil
}

// nsSources returns the sources of a name service switch line, after its
// database's name, without the bracketed actions between them.
func nsSources(list string) []string {
	var out []string
	for len(list) > 0 {
		switch list[0] {
		case ' ', '\t', '\n', '\v', '\f', '\r':
			list = list[1:]
		case '[':
			_, rest, ok := strings.Cut(list, "]")
			if !ok {
				return append(out, list) // unclosed: not "files"
			}
			list = rest
		default:
			end := strings.IndexAny(list, blanks+"[")
			if end < 0 {
				end = len(list)
			}
			out = append(out, list[:end])
			list = list[end:]
		}
	}
	return out
}

// scan calls line with the colon-separated fields of each line of path
// until it returns false; it returns false then, or if path cannot be
// read, or has a NIS compat line. Blank lines and comments are skipped.
func scan(path string, line func([]string) bool) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		text := s.Text()
		switch {
		case strings.TrimSpace(text) == "", strings.HasPrefix(text, "#"):
			continue
		case strings.HasPrefix(text, "+"), strings.HasPrefix(text, "-"):
			return false // NIS compat: members from elsewhere
		}
		if !line(strings.Split(text, ":")) {
			return false
		}
	}
	return s.Err() == nil
}

// groupName is gid's name and number, for messages.
func groupName(gid uint32) string {
	id := strconv.FormatUint(uint64(gid), 10)
	if g, err := user.LookupGroupId(id); err == nil {
		return strconv.Quote(g.Name) + " (gid " + id + ")"
	}
	return "gid " + id
}
