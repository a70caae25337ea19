package compare

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"strings"
	"text/tabwriter"
)

// Colours of the HTML matrix cells.
const (
	AcceptColour = "#1a7f37"
	RejectColour = "#cf222e"
	// FailedColour marks a verifier that decided nothing (it crashed,
	// hung or erred), so the peer was rejected to fail closed.
	FailedColour = "#9a6700"
)

// compared returns the verifiers that ran, in order.
func (r *Report) compared() []VerifierInfo {
	var out []VerifierInfo
	for _, v := range r.Verifiers {
		if !v.Skipped {
			out = append(out, v)
		}
	}
	return out
}

// word is what a cell says: accept, reject, or failed when the verifier
// decided nothing (a rejection by failing closed, not a verdict).
func (r *Report) word(verifier, scenario string) string {
	x, _ := r.result(verifier, scenario)
	switch {
	case x.Accepted:
		return "accept"
	case x.Failed:
		return "failed"
	}
	return "reject"
}

// Schema is the version of the JSON document WriteJSON writes; it changes
// when a field changes meaning or goes away, not when one is added.
const Schema = 1

// WriteJSON writes the report as {"schema": 1, "results": [...],
// "verifiers": [...], "skipped_scenarios": [...]}.
func (r *Report) WriteJSON(w io.Writer) error {
	doc := struct {
		Schema    int            `json:"schema"`
		Results   []Result       `json:"results"`
		Verifiers []VerifierInfo `json:"verifiers"`
		// Why each scenario that could not be made was left out.
		SkippedScenarios []string `json:"skipped_scenarios"`
	}{Schema, r.Results, r.Verifiers, r.Skipped}
	if doc.Results == nil {
		doc.Results = []Result{}
	}
	if doc.Verifiers == nil {
		doc.Verifiers = []VerifierInfo{}
	}
	if doc.SkippedScenarios == nil {
		doc.SkippedScenarios = []string{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// WriteTable writes the matrix (scenarios down, verifiers across), then
// the costs and notes, for a terminal.
func (r *Report) WriteTable(w io.Writer) error {
	vs := r.compared()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "scenario")
	for _, v := range vs {
		fmt.Fprintf(tw, "\t%s", v.Name)
	}
	fmt.Fprintf(tw, "\twhat changed\n")
	for _, s := range r.Scenarios {
		fmt.Fprintf(tw, "%s", s.Name)
		for _, v := range vs {
			fmt.Fprintf(tw, "\t%s", r.word(v.Name, s.Name))
		}
		fmt.Fprintf(tw, "\t%s\n", s.What)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "verifier\tin-process µs\tplugin µs\tpin bytes\tprotects against\n")
	for _, v := range r.Verifiers {
		if v.Skipped {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t%s\n", v.Name, v.Note)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", v.Name, v.InProcessCost(), v.PluginCost(), v.PinSize(), v.Note)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range r.Skipped {
		fmt.Fprintf(w, "\nscenario skipped: %s\n", s)
	}
	return nil
}

// MarshalJSON writes null where nothing was measured, as the tables
// write n/a or -: every cost and the pin size of a skipped verifier, the
// in-process cost of one that is not built in, the costs of one that
// failed, and the pin size of one configured with the options given. A 0
// would read as free. skipped says a verifier was not compared at all,
// which a program should not have to read from the note's words.
func (v VerifierInfo) MarshalJSON() ([]byte, error) {
	doc := struct {
		Name        string   `json:"name"`
		InProcessUs *float64 `json:"inprocess_us"`
		PluginUs    *float64 `json:"plugin_us"`
		PinBytes    *int     `json:"pin_bytes"`
		Note        string   `json:"note"`
		Failed      bool     `json:"failed"`
		Skipped     bool     `json:"skipped"`
	}{Name: v.Name, Note: v.Note, Failed: v.Failed, Skipped: v.Skipped}
	if !v.Skipped {
		if !v.Failed {
			doc.PluginUs = &v.PluginUs
			if !v.NoInProcess {
				doc.InProcessUs = &v.InProcessUs
			}
		}
		if !v.NoPinBytes {
			doc.PinBytes = &v.PinBytes
		}
	}
	return json.Marshal(doc)
}

// InProcessCost is InProcessUs as the tables show it: "n/a" for a
// verifier that is not built in, which has no in-process cost.
func (v VerifierInfo) InProcessCost() string {
	switch {
	case v.NoInProcess:
		return "n/a"
	case v.Failed:
		return "-"
	}
	return fmt.Sprintf("%.2f", v.InProcessUs)
}

// PluginCost is PluginUs as the tables show it: "-" for a verifier that
// failed, whose cost was not measured.
func (v VerifierInfo) PluginCost() string {
	if v.Failed {
		return "-"
	}
	return fmt.Sprintf("%.2f", v.PluginUs)
}

// PinSize is PinBytes as the tables show it: "-" when it is not known.
func (v VerifierInfo) PinSize() string {
	if v.NoPinBytes {
		return "-"
	}
	return fmt.Sprintf("%d", v.PinBytes)
}

// WriteMarkdown writes the matrix and the costs as Markdown tables.
func (r *Report) WriteMarkdown(w io.Writer) error {
	vs := r.compared()
	var b strings.Builder
	b.WriteString("| scenario |")
	for _, v := range vs {
		fmt.Fprintf(&b, " %s |", mdEscape(v.Name))
	}
	b.WriteString("\n|---|")
	for range vs {
		b.WriteString(":---:|")
	}
	b.WriteString("\n")
	for _, s := range r.Scenarios {
		fmt.Fprintf(&b, "| `%s` |", s.Name)
		for _, v := range vs {
			switch r.word(v.Name, s.Name) {
			case "accept":
				b.WriteString(" ✅ accept |")
			case "failed":
				b.WriteString(" ⚠️ failed |")
			default:
				b.WriteString(" ❌ reject |")
			}
		}
		b.WriteString("\n")
	}
	b.WriteString("\n| verifier | in-process µs | plugin µs | pin bytes | protects against |\n|---|---:|---:|---:|---|\n")
	for _, v := range r.Verifiers {
		if v.Skipped {
			fmt.Fprintf(&b, "| %s | – | – | – | %s |\n", mdEscape(v.Name), mdEscape(v.Note))
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", mdEscape(v.Name), v.InProcessCost(), v.PluginCost(), v.PinSize(), mdEscape(v.Note))
	}
	b.WriteString("\nScenarios:\n\n")
	for _, s := range r.Scenarios {
		fmt.Fprintf(&b, "- `%s`: %s\n", s.Name, mdEscape(s.What))
	}
	for _, s := range r.Skipped {
		fmt.Fprintf(&b, "- skipped: %s\n", mdEscape(s))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// mdEscape keeps s in its table cell or list item: a pipe would end the
// cell, a line break the row.
var mdEscape = strings.NewReplacer("|", `\|`, "\r\n", " ", "\n", " ", "\r", " ").Replace

// htmlPage is well-formed XML as well as HTML, so that it can be checked
// with an XML parser; it needs nothing but itself to display.
var htmlPage = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html xmlns="http://www.w3.org/1999/xhtml" lang="en">
<head>
<meta charset="utf-8" />
<title>tlspin compare</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em; color: #1f2328; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #d0d7de; padding: 0.4em 0.8em; text-align: left; vertical-align: top; }
td.accept, td.reject, td.failed { color: #ffffff; font-weight: bold; text-align: center; }
td.accept { background: {{.Accept}}; }
td.reject { background: {{.Reject}}; }
td.failed { background: {{.Failed}}; }
td.num { text-align: right; }
caption { text-align: left; font-weight: bold; margin-bottom: 0.4em; }
</style>
</head>
<body>
<h1>tlspin compare</h1>
<p>Every cell is a real TLS handshake on loopback with server name <code>{{.R.ServerName}}</code>, decided by the verifier running as a plugin. Hover a cell for the verifier's reason.</p>
<table id="matrix">
<caption>accept / reject per scenario and verifier</caption>
<thead><tr><th>scenario</th>{{range .Vs}}<th>{{.Name}}</th>{{end}}<th>what changed</th></tr></thead>
<tbody>
{{range .Rows}}<tr><th>{{.Name}}</th>{{range .Cells}}<td class="{{.Word}}" style="background: {{.Colour}}" data-verifier="{{.Verifier}}" data-scenario="{{.Scenario}}" title="{{.Reason}}">{{.Word}}</td>{{end}}<td>{{.What}}</td></tr>
{{end}}</tbody>
</table>
<table id="verifiers">
<caption>cost and protection per verifier</caption>
<thead><tr><th>verifier</th><th>in-process µs</th><th>plugin µs</th><th>pin bytes</th><th>protects against</th></tr></thead>
<tbody>
{{range .R.Verifiers}}<tr><th>{{.Name}}</th>{{if .Skipped}}<td>–</td><td>–</td><td>–</td>{{else}}<td class="num">{{.InProcessCost}}</td><td class="num">{{.PluginCost}}</td><td class="num">{{.PinSize}}</td>{{end}}<td>{{.Note}}</td></tr>
{{end}}</tbody>
</table>
{{range .R.Skipped}}<p>Scenario skipped: {{.}}</p>
{{end}}</body>
</html>
`))

type htmlCell struct {
	Verifier, Scenario, Word, Reason string
	Colour                           template.CSS
}

type htmlRow struct {
	Name, What string
	Cells      []htmlCell
}

// WriteHTML writes a self-contained page with the matrix coloured green
// (accept), red (reject) and amber (failed).
func (r *Report) WriteHTML(w io.Writer) error {
	vs := r.compared()
	var rows []htmlRow
	for _, s := range r.Scenarios {
		row := htmlRow{Name: s.Name, What: s.What}
		for _, v := range vs {
			x, _ := r.result(v.Name, s.Name)
			c := htmlCell{Verifier: v.Name, Scenario: s.Name, Word: r.word(v.Name, s.Name), Reason: x.Reason}
			switch c.Word {
			case "accept":
				c.Colour = AcceptColour
			case "failed":
				c.Colour = FailedColour
			default:
				c.Colour = RejectColour
			}
			row.Cells = append(row.Cells, c)
		}
		rows = append(rows, row)
	}
	return htmlPage.Execute(w, struct {
		R                      *Report
		Vs                     []VerifierInfo
		Rows                   []htmlRow
		Accept, Reject, Failed template.CSS
	}{r, vs, rows, AcceptColour, RejectColour, FailedColour})
}
