package tlspin

// WatchPasses is how many rounds of Watch's questions have ended.
func WatchPasses(v *Verifiers) uint64 { return v.watched.Passes() }

// WatchLen is how many connections Watch holds.
func WatchLen(v *Verifiers) int { return v.watched.Len() }
