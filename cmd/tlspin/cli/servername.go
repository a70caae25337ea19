package cli

import (
	"fmt"
	"net/netip"
	"strings"
)

// checkServerName refuses a --server-name that no server has, as a usage
// error, before anything is dialled or started: the name is sent as the
// SNI, carried to the verifiers (ca checks it, tofu keys its pins by it)
// and, when it was a typo, tofu rejected the server for it (exit 3) while
// the others sent the name as typed. A name is an IP address, or a host
// name of at most 253 bytes: labels of at most 63 letters, digits, '-' or
// '_', separated by single dots, with an optional final dot. "" is no
// name (the command's default applies).
func checkServerName(name string) error {
	if name == "" {
		return nil
	}
	if _, err := netip.ParseAddr(name); err == nil {
		return nil
	}
	if why := hostNameFault(name); why != "" {
		return usagef("--server-name %q: %s: want a host name (letters, digits, '-' and '_' in labels separated by dots) or an IP address", name, why)
	}
	return nil
}

// hostNameFault says what makes name no host name, or "" if it is one.
func hostNameFault(name string) string {
	if len(name) > 253 {
		return fmt.Sprintf("%d bytes, more than the 253 of a host name", len(name))
	}
	for _, label := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		if label == "" {
			return "an empty label"
		}
		if len(label) > 63 {
			return fmt.Sprintf("the label %q has %d bytes, more than 63", label, len(label))
		}
		for _, r := range label {
			switch {
			case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			case r > 0x7f:
				return fmt.Sprintf("the label %q is not in ASCII (give an internationalised name in its ASCII form, xn--...)", label)
			default:
				return fmt.Sprintf("the label %q has %q", label, r)
			}
		}
	}
	return ""
}
