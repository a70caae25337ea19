//go:build !race

package proxy_test

// gigabyte is the size of TestGigabyte's transfer.
const gigabyte = 1 << 30
