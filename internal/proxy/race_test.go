//go:build race

package proxy_test

// gigabyte is the size of TestGigabyte's transfer: the race detector
// slows the copy loops about tenfold, so under it the transfer is a
// quarter of a gigabyte (the full one runs without -race).
const gigabyte = 256 << 20
