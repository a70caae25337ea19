//go:build linux && race

package rawio

import (
	"runtime"
	"unsafe"
)

// ioSync stands for the kernel's copy between a write and the read that
// gets its bytes, as syscall's own does for the race detector: raw system
// calls tell it nothing, and a host and plugin in one test process would
// look unsynchronised.
var ioSync int64

func raceReleaseMerge() { runtime.RaceReleaseMerge(unsafe.Pointer(&ioSync)) }
func raceAcquire()      { runtime.RaceAcquire(unsafe.Pointer(&ioSync)) }
