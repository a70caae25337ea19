package bench

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"time"
)

// OneShot runs each command (argv) n times, the commands in turns so that
// drift hits them alike, and returns the median wall time of each, from
// exec to exit. A command that fails is an error quoting its stderr.
func OneShot(ctx context.Context, n int, argvs ...[]string) ([]time.Duration, error) {
	times := make([][]time.Duration, len(argvs))
	for range n {
		for i, argv := range argvs {
			cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			t0 := time.Now()
			err := cmd.Run()
			d := time.Since(t0)
			if err != nil {
				return nil, fmt.Errorf("bench: one-shot %q: %w: %s", strings.Join(argv[1:], " "), err, strings.TrimSpace(stderr.String()))
			}
			times[i] = append(times[i], d)
		}
	}
	med := make([]time.Duration, len(argvs))
	for i, ts := range times {
		slices.Sort(ts)
		med[i] = Quantile(ts, 0.5)
	}
	return med, nil
}

// SetOneShot records the median one-shot times of send, fingerprint and
// openssl s_client; openssl is 0 when it was not run.
func (rep *Report) SetOneShot(send, fingerprint, openssl time.Duration, n int) {
	rep.SendOneShotMs = millis(send)
	rep.FingerprintOneShotMs = millis(fingerprint)
	rep.OneShotRatio = ratio(send, fingerprint)
	rep.OpenSSLOneShotMs = millis(openssl)
	rep.SendOpenSSLRatio = ratio(send, openssl)
	rep.OneShots = n
}

// ratio is a over b to three decimals, 0 when b is.
func ratio(a, b time.Duration) float64 {
	if b <= 0 {
		return 0
	}
	return round3(float64(a) / float64(b))
}
