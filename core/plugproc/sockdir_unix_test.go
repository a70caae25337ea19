//go:build unix

package plugproc

import (
	"net"
	"os"
	"path/filepath"
	"testing"
)

// socketAt leaves a unix socket at path, as a server that still runs
// would have it.
func socketAt(t *testing.T, path string) {
	t.Helper()
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
}

// shortTemp is a temporary directory with a path short enough for a
// socket in it (t.TempDir's name carries the test's).
func shortTemp(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// TestRemoveSocketDirTouchesOnlyGoPluginsDir: a plugin whose host died
// removes the socket go-plugin made for it and the directory go-plugin
// made (os.MkdirTemp "plugin-dir*", mode 0700), and nothing wherever
// PLUGIN_UNIX_SOCKET_DIR points otherwise: not another program's socket
// in a shared directory (/run/user/UID, /tmp), nor through a directory
// swapped for a symlink.
func TestRemoveSocketDirTouchesOnlyGoPluginsDir(t *testing.T) {
	t.Setenv(CookieKey, CookieValue)
	tests := []struct {
		name     string
		make     func(t *testing.T) (dir, sock string)
		wantGone bool
	}{
		{"go-plugin's directory", func(t *testing.T) (string, string) {
			dir, err := os.MkdirTemp(shortTemp(t), "plugin-dir")
			if err != nil {
				t.Fatal(err)
			}
			return dir, filepath.Join(dir, "plugin123")
		}, true},
		{"a directory of the user's sockets", func(t *testing.T) (string, string) {
			dir := filepath.Join(shortTemp(t), "run")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			return dir, filepath.Join(dir, "bus")
		}, false},
		{"a shared directory", func(t *testing.T) (string, string) {
			dir := filepath.Join(shortTemp(t), "plugin-dir1")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, 0o1777); err != nil {
				t.Fatal(err)
			}
			return dir, filepath.Join(dir, "plugin456")
		}, false},
		{"a symlink to another directory", func(t *testing.T) (string, string) {
			other := filepath.Join(shortTemp(t), "other")
			if err := os.Mkdir(other, 0o700); err != nil {
				t.Fatal(err)
			}
			link := filepath.Join(shortTemp(t), "plugin-dir2")
			if err := os.Symlink(other, link); err != nil {
				t.Fatal(err)
			}
			return link, filepath.Join(other, "plugin789")
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, sock := tt.make(t)
			socketAt(t, sock)
			t.Setenv(socketDirKey, dir)
			removeSocketDir()
			_, err := os.Lstat(sock)
			if gone := os.IsNotExist(err); gone != tt.wantGone {
				t.Errorf("socket %s removed: %v; want %v", sock, gone, tt.wantGone)
			}
			if _, err := os.Lstat(dir); os.IsNotExist(err) != tt.wantGone {
				t.Errorf("%s removed: %v; want %v", dir, os.IsNotExist(err), tt.wantGone)
			}
		})
	}
}
