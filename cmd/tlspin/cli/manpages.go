package cli

//go:generate go run github.com/tlspin/tlspin/cmd/tlspin __man ../../../docs/man

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// manCmd is the hidden command that writes the man pages; docs/man holds
// its output, and a test fails when that output is stale.
const manCmd = "__man"

func (a *app) manCommand() *cobra.Command {
	return &cobra.Command{
		Use:    manCmd + " DIR",
		Short:  "write a man page for every command into DIR (go generate ./cmd/tlspin/cli)",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return writeManPages(cmd.Root(), args[0])
		},
	}
}

// manDate stands in for the page date, which is then left empty: the pages
// must not change from one day to the next while the commands do not.
var manDate = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// writeManPages writes tlspin.1, tlspin-cert.1, ... for every visible
// command into dir, and removes pages of commands that no longer exist.
func writeManPages(root *cobra.Command, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("man: %w", err)
	}
	want := map[string][]byte{}
	var walk func(c *cobra.Command) error
	walk = func(c *cobra.Command) error {
		if !c.IsAvailableCommand() && c != root {
			return nil
		}
		c.DisableAutoGenTag = true // no generation date in the page
		var b bytes.Buffer
		h := &doc.GenManHeader{Section: "1", Date: &manDate, Source: "tlspin", Manual: "tlspin manual"}
		if err := doc.GenMan(c, h, &b); err != nil {
			return fmt.Errorf("man: %s: %w", c.CommandPath(), err)
		}
		page := bytes.Replace(b.Bytes(), []byte(`"`+manDate.Format("Jan 2006")+`"`), []byte(`""`), 1)
		want[strings.ReplaceAll(c.CommandPath(), " ", "-")+".1"] = page
		for _, sub := range c.Commands() {
			if err := walk(sub); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(root); err != nil {
		return err
	}
	old, _ := filepath.Glob(filepath.Join(dir, "*.1"))
	for _, p := range old {
		if _, keep := want[filepath.Base(p)]; !keep {
			if err := os.Remove(p); err != nil {
				return fmt.Errorf("man: %w", err)
			}
		}
	}
	for name, page := range want {
		if err := os.WriteFile(filepath.Join(dir, name), page, 0o644); err != nil {
			return fmt.Errorf("man: %w", err)
		}
	}
	return nil
}
