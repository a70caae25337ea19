//go:build linux && !race

package rawio

func raceReleaseMerge() {}
func raceAcquire()      {}
