//go:build unix

package files

import (
	"bufio"
	"os"
	"os/user"
	"strconv"
	"strings"
)

// accounts are the files privateGroup reads; tests point them elsewhere.
var accounts = struct{ group, passwd string }{"/etc/group", "/etc/passwd"}

// privateGroup reports whether no user but this one can be in group gid,
// as in a user private group (a group of one, named after its user, which
// a umask of 002 makes every new directory writable by): /etc/group lists
// no other member, and /etc/passwd gives no other user it as their own. A
// group it cannot find there (one from a directory service, say) is not
// private. Debian's OpenSSH accepts group-writable directories on the
// same grounds.
func privateGroup(gid uint32) bool {
	me := os.Geteuid()
	u, err := user.LookupId(strconv.Itoa(me))
	if err != nil {
		return false
	}
	found := false
	ok := scan(accounts.group, func(f []string) bool {
		if len(f) < 4 || f[2] != strconv.FormatUint(uint64(gid), 10) {
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
		return len(f) < 4 || f[3] != strconv.FormatUint(uint64(gid), 10) || f[2] == strconv.Itoa(me)
	})
}

// scan calls line with the colon-separated fields of each line of path
// until it returns false; it returns false then, or if path cannot be
// read.
func scan(path string, line func([]string) bool) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if !line(strings.Split(s.Text(), ":")) {
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
