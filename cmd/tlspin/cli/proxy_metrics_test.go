package cli_test

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/tlspin/tlspin/internal/testbin"
)

// TestProxyMetricsAddressIsLogged: the address --metrics serves on is
// logged, as --listen's is, so that --metrics 127.0.0.1:0 (a free port)
// can be scraped, and an operator sees where it is.
func TestProxyMetricsAddressIsLogged(t *testing.T) {
	dir := t.TempDir()
	srvFile, _ := identityFile(t, dir, "server")
	_, addr := startBG(t, regexp.MustCompile(`listening: addr=\S+ .*metrics=http://(\S+)/metrics`), testbin.Tlspin(t),
		"--log-level", "info", "proxy", "server", "--listen", "127.0.0.1:0", "--target", "127.0.0.1:1", "--cert", srvFile, "--metrics", "127.0.0.1:0")
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || !strings.Contains(string(b), "tlspin_proxy_accepted_total") {
		t.Errorf("scrape of %s: %v\n%s", addr, err, b)
	}
}
