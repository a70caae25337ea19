package proxy

import (
	"context"
	"net"
	"path/filepath"
	"testing"
)

// TestUnixListenerConnsArePlain: a connection of ListenUnix is a plain
// socket to the copy loop, which then waits on it without a buffer and
// batches large reads, as it does a TCP or unix socket's.
func TestUnixListenerConnsArePlain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "proxy.sock")
	ln, err := ListenUnix(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	accepted, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer accepted.Close()
	if plainSocket(accepted) == nil {
		t.Errorf("plainSocket(%T) = nil, want its socket", accepted)
	}
}
