//go:build !linux

package cli

// selfExec is empty where there is no /proc/self/exe: built-ins run from
// the tlspin executable's path.
func selfExec() string { return "" }
