//go:build linux && !race

package direct

func raceReleaseMerge() {}
func raceAcquire()      {}
