package files

import (
	"os"
	"syscall"
	"time"
)

// ChangeTime returns fi's status change time (ctime), which every write,
// chmod or rename sets and no tool can set back: a trust file written
// over in place with its size and modification time kept (cp -p,
// touch -r) is told from the version read before by it alone. It is the
// zero time where the system does not say.
func ChangeTime(fi os.FileInfo) time.Time {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return time.Unix(int64(st.Ctim.Sec), int64(st.Ctim.Nsec))
	}
	return time.Time{}
}
