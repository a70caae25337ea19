//go:build !linux

package cli

// keepPluginsOut does nothing here: dumpable_linux.go says what it does
// on Linux.
func keepPluginsOut() {}
