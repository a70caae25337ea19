// Package verifiers holds the registry of built-in verifiers: constructors
// looked up by name. Each built-in lives in its own package below this one;
// package builtin assembles them.
package verifiers

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/tlspin/tlspin/core/verify"
)

// ErrUnknown is returned by Lookup for a name that is not registered.
var ErrUnknown = errors.New("verifiers: unknown verifier")

// Constructor makes a fresh, unconfigured verifier.
type Constructor func() verify.Verifier

// Registry maps names to constructors. The zero value is empty and usable.
type Registry struct {
	byName map[string]Constructor
}

// Register adds a constructor; a duplicate or empty name is an error.
func (r *Registry) Register(name string, c Constructor) error {
	if name == "" || strings.ContainsAny(name, " /:,=") {
		return fmt.Errorf("verifiers: invalid name %q", name)
	}
	if c == nil {
		return fmt.Errorf("verifiers: nil constructor for %q", name)
	}
	if _, dup := r.byName[name]; dup {
		return fmt.Errorf("verifiers: %q registered twice", name)
	}
	if r.byName == nil {
		r.byName = map[string]Constructor{}
	}
	r.byName[name] = c
	return nil
}

// Lookup returns a new verifier called name, or an error listing the names
// that exist.
func (r *Registry) Lookup(name string) (verify.Verifier, error) {
	c, ok := r.byName[name]
	if !ok {
		return nil, fmt.Errorf("%w %q (built-in: %s)", ErrUnknown, name, strings.Join(r.Names(), ", "))
	}
	return c(), nil
}

// Names returns the registered names, sorted.
func (r *Registry) Names() []string {
	out := make([]string, 0, len(r.byName))
	for n := range r.byName {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
