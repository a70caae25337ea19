package pin

import "fmt"

// Set is a small set of pins of one algorithm (a pin and its backups).
// Match compares against every pin in constant time, without an early exit.
type Set struct {
	Algo Algo
	Pins []Pin
	// Style is the format of the first pin added, so that a mismatch can
	// show the received fingerprint the way the user wrote the pin.
	Style Format
}

// Match returns the pin that equals the digest of certDER, if any.
func (s *Set) Match(certDER []byte) (Pin, bool, error) {
	i, err := s.Index(certDER)
	if err != nil || i < 0 {
		return Pin{}, false, err
	}
	return s.Pins[i], true, nil
}

// Index returns the index in Pins of the pin that equals the digest of
// certDER (the last, if several do), or -1.
func (s *Set) Index(certDER []byte) (int, error) {
	d, err := Sum(s.Algo, certDER)
	if err != nil {
		return -1, err
	}
	found := -1
	for i, p := range s.Pins {
		if p.Equal(d) {
			found = i
		}
	}
	return found, nil
}

// Add parses value (one pin, or several joined by ";") and adds it.
func (s *Set) Add(value string) error {
	ps, err := ParseList(s.Algo, value)
	if err != nil {
		return err
	}
	if len(s.Pins) == 0 {
		s.Style = Detect(value)
	}
	s.Pins = append(s.Pins, ps...)
	return nil
}

// Fingerprint returns certDER's digest printed the way pins of s's
// algorithm are usually written.
func (s *Set) Fingerprint(certDER []byte) (string, error) {
	d, err := Sum(s.Algo, certDER)
	if err != nil {
		return "", fmt.Errorf("pin: %w", err)
	}
	if s.Style != "" {
		if out, err := Print(s.Algo, d, s.Style); err == nil {
			return out, nil
		}
	}
	return Pin{Algo: s.Algo, Digest: d}.String(), nil
}

// OtherAlgo reports a pin of s that equals certDER's digest under another
// algorithm of the same size: a certificate's sha256 fingerprint given
// where its spki pin is expected, or the other way round. It returns the
// pin and that algorithm.
func (s *Set) OtherAlgo(certDER []byte) (Pin, Algo, bool) {
	for _, a := range Algos {
		if a == s.Algo || a.Size() != s.Algo.Size() {
			continue
		}
		d, err := Sum(a, certDER)
		if err != nil {
			continue
		}
		for _, p := range s.Pins {
			if p.Equal(d) {
				return p, a, true
			}
		}
	}
	return Pin{}, "", false
}
