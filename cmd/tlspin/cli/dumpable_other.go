//go:build !linux

package cli

// keepPluginsOut does nothing here: see dumpable_linux.go.
func keepPluginsOut() {}
