package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tlspin/tlspin/core/pin"
	"github.com/tlspin/tlspin/internal/files"
	"github.com/tlspin/tlspin/internal/printable"
	"github.com/tlspin/tlspin/verifiers/tofu"
)

func (a *app) knownPinsCommand() *cobra.Command {
	file := tofu.DefaultFile
	c := &cobra.Command{
		Use:   "known-pins",
		Short: "list, add and remove the pins the tofu verifier recorded",
		Long: `List, add and remove the peers recorded in the tofu verifier's pins file
(like ssh-keygen -F and -R for known_hosts). Lines are HOST:PORT for a
server and client@HOST for a client, with the peer's spki pin. The file is
edited under the same lock the tofu verifier takes and replaced atomically,
so this is safe while tlspin runs; running verifiers see the change at
their next connection. A file just emptied or cut short, as by an editor
saving it in place, is edited once it has been unchanged for half a
second. A file reached through a symbolic link is edited
where the link leads; the link stays.`,
		Example: `  tlspin known-pins list
  tlspin known-pins remove example.com            # every port
  tlspin known-pins remove example.com:443
  tlspin known-pins add example.com:443 "$(tlspin fingerprint --format curl new-cert.pem)"`,
		Args: cobra.NoArgs,
	}
	c.PersistentFlags().StringVar(&file, "file", tofu.DefaultFile, "pins file (the tofu verifier's file option)")

	asJSON := false
	list := &cobra.Command{
		Use:   "list [HOST[:PORT]]",
		Short: "print the recorded pins, of every peer or of one host (exit 1 if that host has none, or the file does not exist)",
		Example: `  tlspin known-pins list
  tlspin known-pins list example.com      # exit 1 if no port of example.com is recorded
  tlspin known-pins --file ./pins list --json`,
		Args: argSpec{min: 0, max: 1, takes: "at most one HOST[:PORT]"}.check,
		RunE: func(cmd *cobra.Command, args []string) error {
			match := func(string) bool { return true }
			if len(args) == 1 {
				m, err := matchPeer(args[0])
				if err != nil {
					return err
				}
				match = m
			}
			// A missing file records none, for the verifier; for a
			// person, a path given wrong must not look like an empty list.
			if path, err := files.ExpandHome(file); err == nil {
				if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("known-pins: %s does not exist: nothing was recorded there (tofu makes it at its first record; is --file right?)", file)
				}
			}
			es, err := tofu.ReadPins(file)
			if err != nil {
				return badInput(err)
			}
			if err := printKnown(cmd, es, match, asJSON); err != nil {
				return err
			}
			// Like ssh-keygen -F: a script can test whether a peer is known.
			if len(args) == 1 && !slices.ContainsFunc(es, func(e tofu.Entry) bool { return match(e.Key) }) {
				return fmt.Errorf("known-pins: no pin recorded for %q in %s", args[0], file)
			}
			return nil
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	remove := &cobra.Command{
		Use:   "remove HOST[:PORT]",
		Short: "forget a peer's pins (without PORT: on every port), so that the next contact records it anew",
		Example: `  tlspin known-pins remove example.com            # every port
  tlspin known-pins remove example.com:443`,
		Args: argSpec{min: 1, max: 1, takes: "one HOST[:PORT]"}.check,
		RunE: func(cmd *cobra.Command, args []string) error {
			match, err := matchPeer(args[0])
			if err != nil {
				return err
			}
			if err := checkPinsFile(file); err != nil {
				return err
			}
			removed, err := tofu.RemovePins(cmd.Context(), file, match)
			if err != nil {
				return err
			}
			if len(removed) == 0 {
				return fmt.Errorf("known-pins: %s is not in %s", args[0], file)
			}
			for _, e := range removed {
				fmt.Fprintf(cmd.ErrOrStderr(), "tlspin: removed %s (spki %s) from %s (line %d)\n", e.Key, e.Pin, file, e.Line)
			}
			return nil
		},
	}

	add := &cobra.Command{
		Use:   "add HOST:PORT PIN",
		Short: "record a peer's spki pin (any spki format: base64, sha256//..., sha256/..., pin-sha256=...)",
		Example: `  tlspin known-pins add example.com:443 "$(tlspin fingerprint --format curl new-cert.pem)"
  tlspin known-pins add client@127.0.0.1 sha256//BASE64=   # a client, as serve records it`,
		Args: argSpec{min: 2, max: 2, takes: "HOST:PORT PIN"}.check,
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := peerKey(args[0])
			if err != nil {
				return err
			}
			p, err := pin.Parse(pin.SPKI, args[1])
			if err != nil {
				return usageError{err}
			}
			if err := checkPinsFile(file); err != nil {
				return err
			}
			added, others, err := tofu.AddPin(cmd.Context(), file, key, p, "added "+time.Now().UTC().Format(time.DateOnly))
			if err != nil {
				return err
			}
			errw := cmd.ErrOrStderr()
			if !added {
				fmt.Fprintf(errw, "tlspin: %s already has pin %s in %s\n", key, p, file)
				return nil
			}
			fmt.Fprintf(errw, "tlspin: added %s (spki %s) to %s\n", key, p, file)
			for _, e := range others {
				fmt.Fprintf(errw, "tlspin: note: %s also has pin %s (line %d), which is still accepted; to accept only the new one: tlspin known-pins remove %s && tlspin known-pins add %s PIN\n", key, e.Pin, e.Line, key, key)
			}
			return nil
		},
	}
	c.AddCommand(list, remove, add)
	return c
}

// checkPinsFile reads the pins file before an edit, so that one that
// cannot be read, or does not parse, is a usage error (exit 2), as for
// every file named on the command line: a script tells it from a failed
// edit (a lock not got, a write that failed), and list's exit 1 for a
// peer not recorded from a file that says nothing.
func checkPinsFile(file string) error {
	if _, err := tofu.ReadPins(file); err != nil {
		return badInput(err)
	}
	return nil
}

// knownJSON is one entry of `known-pins list --json`.
type knownJSON struct {
	Key     string `json:"key"`
	Pin     string `json:"pin"`
	Line    int    `json:"line"`
	Comment string `json:"comment,omitempty"`
}

func printKnown(cmd *cobra.Command, es []tofu.Entry, match func(string) bool, asJSON bool) error {
	out := cmd.OutOrStdout()
	docs := []knownJSON{}
	for _, e := range es {
		if match(e.Key) {
			// As the file has it, whatever form a line written by hand
			// gave it in: "spki:sha256//..." is no pin.
			p := pin.Pin{Algo: pin.SPKI, Digest: e.Pin.Digest}
			docs = append(docs, knownJSON{Key: e.Key, Pin: string(pin.SPKI) + ":" + p.String(), Line: e.Line, Comment: e.Comment})
		}
	}
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(docs)
	}
	for _, d := range docs {
		fmt.Fprintf(out, "%s %s", d.Key, d.Pin)
		if d.Comment != "" {
			fmt.Fprintf(out, " # %s", printable.Escape(d.Comment))
		}
		fmt.Fprintln(out)
	}
	return nil
}

// peerKey checks and normalises HOST:PORT (or client@HOST) as the tofu
// verifier writes it (tofu.CanonicalKey).
func peerKey(s string) (string, error) {
	if h, ok := strings.CutPrefix(strings.ToLower(s), "client@"); ok {
		if h == "" || strings.ContainsAny(h, " \t#") {
			return "", usagef("%q: want client@HOST", s)
		}
		key := tofu.CanonicalKey("client@" + h)
		// A client is recorded without its port: client@HOST:PORT (its
		// address as serve logs it) would record a pin that applies to
		// no client.
		if err := tofu.ValidKey(key); err != nil {
			return "", usagef("%q: the key %q %v: want client@HOST", s, key, err)
		}
		return key, nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" || port == "" {
		return "", usagef("%q: want HOST:PORT (or client@HOST)", s)
	}
	if strings.ContainsAny(host, " \t#") {
		return "", usagef("%q: want HOST:PORT", s)
	}
	key := tofu.CanonicalKey(net.JoinHostPort(host, port))
	// A port tofu's key never has (https://example.com reads as the host
	// "https") would record a pin that applies to no peer.
	if err := tofu.ValidKey(key); err != nil {
		return "", usagef("%q: the key %q %v: want HOST:PORT (a port number or a service name)", s, key, err)
	}
	return key, nil
}

// matchPeer matches the keys of HOST:PORT, or of HOST on any port (and
// client@HOST) when no port is given.
func matchPeer(s string) (func(string) bool, error) {
	if key, err := peerKey(s); err == nil {
		return func(k string) bool { return k == key }, nil
	}
	host := tofu.CanonicalKey(strings.Trim(s, "[]"))
	if host == "" || strings.ContainsAny(host, " \t#") {
		return nil, usagef("%q: want HOST or HOST:PORT", s)
	}
	return func(k string) bool {
		if h, _, err := net.SplitHostPort(k); err == nil {
			return h == host
		}
		return k == host || k == "client@"+host
	}, nil
}
