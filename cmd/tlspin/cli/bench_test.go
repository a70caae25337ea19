package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/tlspin/tlspin/cmd/tlspin/cli"
	"github.com/tlspin/tlspin/internal/bench"
	"github.com/tlspin/tlspin/internal/e2e"
)

// TestBenchJSON checks the structure of bench --json on a tiny run; the
// figures themselves are measured, never asserted. openssl's one-shot is
// there when openssl is on the PATH, and said to be missing when not.
func TestBenchJSON(t *testing.T) {
	tests := []struct {
		name    string
		openssl bool
		fake    string // a script on an otherwise empty PATH, as openssl
		why     string // what no_openssl says, when openssl is not measured
	}{
		{"openssl on the PATH", true, "", ""},
		{"no openssl on the PATH", false, "", "openssl"},
		{"an openssl that fails", false, "#!/bin/sh\necho 's_client: unknown option -servername' >&2\nexit 1\n", "unknown option -servername"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var env []string
			if tt.openssl {
				e2e.NeedOpenSSL(t)
			} else {
				dir := t.TempDir()
				if tt.fake != "" {
					if err := os.WriteFile(filepath.Join(dir, "openssl"), []byte(tt.fake), 0o755); err != nil {
						t.Fatal(err)
					}
				}
				env = []string{"PATH=" + dir}
			}
			stdout, stderr, code := runEnv(t, env, "bench", "--json", "--verifier", "md5pin", "--duration", "200ms", "--launches", "1", "--samples", "20", "--oneshots", "1")
			if code != cli.ExitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			var doc map[string]any
			if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
				t.Fatalf("JSON: %v\n%s", err, stdout)
			}
			if strings.Contains(stderr, "\r") || strings.Contains(stderr, "[1/") {
				t.Errorf("progress shown on a stderr that is not a terminal: %q", stderr)
			}
			positive := []string{
				"inprocess_hs_per_s", "plugin_hs_per_s", "cached_hs_per_s", "plugin_ratio", "cached_ratio",
				"inprocess_p50_us", "inprocess_p99_us", "plugin_p50_us", "plugin_p99_us", "cached_p50_us", "cached_p99_us",
				"plugin_launch_ms", "inprocess_verify_us", "plugin_verify_us", "cached_verify_us",
				"send_oneshot_ms", "fingerprint_oneshot_ms", "oneshot_ratio",
			}
			if runtime.GOOS == "linux" { // CPU time is read from /proc and getrusage
				positive = append(positive, "inprocess_cpu_us_per_hs", "plugin_cpu_us_per_hs", "plugin_peer_cpu_us_per_hs", "cached_cpu_us_per_hs")
			}
			// Figures measured only with a program on the PATH: openssl's
			// one-shot, and the floor, which needs cat (on the PATH exactly
			// when openssl is here: the real PATH, or an empty one). Without
			// it they are 0, and no_X says why.
			for _, opt := range []struct {
				keys    []string
				no, why string
			}{
				{[]string{"openssl_oneshot_ms", "send_openssl_ratio"}, "no_openssl", tt.why},
				{[]string{"floor_hs_per_s", "floor_ratio", "floor_p50_us", "floor_p99_us", "floor_verify_us"}, "no_floor", `"cat"`},
			} {
				if opt.no == "no_floor" && tt.openssl && runtime.GOOS == "linux" {
					positive = append(positive, "floor_cpu_us_per_hs", "floor_peer_cpu_us_per_hs")
				}
				if tt.openssl {
					positive = append(positive, opt.keys...)
					if v, ok := doc[opt.no]; ok {
						t.Errorf("%s = %v with the program on the PATH", opt.no, v)
					}
					continue
				}
				for _, k := range opt.keys {
					if doc[k] != float64(0) {
						t.Errorf("%s = %v without the program, want 0", k, doc[k])
					}
				}
				if v, _ := doc[opt.no].(string); !strings.Contains(v, opt.why) {
					t.Errorf("%s = %q, want why it was not measured (%q)", opt.no, v, opt.why)
				}
			}
			for _, k := range positive {
				v, ok := doc[k].(float64)
				if !ok || v <= 0 {
					t.Errorf("%s = %v, want a positive number", k, doc[k])
				}
			}
			rounds := []string{"plugin_ratio_rounds"}
			if tt.openssl { // and so cat: the floor was measured
				rounds = append(rounds, "floor_ratio_rounds")
			} else if v, ok := doc["floor_ratio_rounds"]; ok {
				t.Errorf("floor_ratio_rounds = %v without a floor", v)
			}
			for _, k := range rounds {
				if rs, ok := doc[k].([]any); !ok || len(rs) == 0 {
					t.Errorf("%s = %v, want a ratio per round", k, doc[k])
				}
			}
			if la, ok := doc["load_average"].([]any); runtime.GOOS == "linux" && (!ok || len(la) != 3) {
				t.Errorf("load_average = %v, want the three load averages", doc["load_average"])
			}
			if _, ok := doc["cache_hit_ratio"].(float64); !ok {
				t.Errorf("cache_hit_ratio = %v", doc["cache_hit_ratio"])
			}
			if doc["schema"] != float64(bench.Schema) {
				t.Errorf("schema = %v, want %d", doc["schema"], bench.Schema)
			}
			if doc["verifier"] != "md5pin" || doc["key"] != "ECDSA P-256" {
				t.Errorf("verifier %v, key %v", doc["verifier"], doc["key"])
			}
		})
	}
}

func TestBenchUsage(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"bench", "--key", "dsa"}, "--key"},
		{[]string{"bench", "--duration", "0s"}, "--duration"},
		{[]string{"bench", "--verifier", "nosuch"}, "nosuch"},
	}
	for _, tt := range tests {
		_, stderr, code := run(t, tt.args...)
		if code != cli.ExitUsage || !strings.Contains(stderr, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want usage error mentioning %q", tt.args, code, stderr, tt.want)
		}
	}
}
