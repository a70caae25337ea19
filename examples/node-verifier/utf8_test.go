package nodeverifier_test

import (
	"bufio"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "github.com/tlspin/tlspin/proto/verifier/v1"
)

// surrogateScript serves goplugin.js's verifierHandlers on loopback with a
// verify() that quotes a name cut in the middle of a character outside
// the BMP, as a verifier might shorten a peer's name for its reason: in
// JavaScript, a lone surrogate. It prints its port.
const surrogateScript = `
const grpc = require('@grpc/grpc-js');
const g = require('./goplugin');
const cut = '\u{1F600}'.slice(0, 1); // a lone surrogate
const server = new grpc.Server();
server.addService(g.proto.Verifier.service, g.verifierHandlers({
  describe: () => ({ name: 't', version: '1', summary: 's', options: [] }),
  configure: () => ({}),
  verify: (req) => {
    if (req.server_name === 'throw') throw new Error('bad name ' + cut);
    return { allow: false, reason: 'leaf CN ' + cut + ' is not pinned', matched: cut };
  },
}, { error: () => {} }));
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  console.log(port);
});
`

// TestLoneSurrogates: a proto3 string is UTF-8, and a JavaScript string
// may hold a lone surrogate. In a verdict's reason it went out as bytes
// that are not UTF-8, which the host cannot unmarshal: a malformed
// answer, and a restart of the plugin. In an error's text grpc-js threw
// from encodeURI, outside any handler: the plugin died. Both for a
// peer's name cut short. The SDK writes a lone surrogate as U+FFFD.
func TestLoneSurrogates(t *testing.T) {
	needNode(t)
	cmd := exec.Command("node", "-e", surrogateScript)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	port, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("no port: %v", err)
	}
	conn, err := grpc.NewClient("127.0.0.1:"+strings.TrimSpace(port), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := pb.NewVerifierClient(conn)
	for _, name := range []string{"reason", "throw", "reason"} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		v, err := c.Verify(ctx, &pb.VerifyRequest{ServerName: name})
		cancel()
		switch {
		case name == "throw" && err != nil && status.Code(err) == 2:
			if msg := status.Convert(err).Message(); !utf8.ValidString(msg) || !strings.Contains(msg, "bad name \uFFFD") {
				t.Errorf("%s: error %q", name, msg)
			}
		case name == "reason" && err == nil:
			if v.Reason != "leaf CN \uFFFD is not pinned" || v.Matched != "\uFFFD" {
				t.Errorf("%s: reason %q, matched %q", name, v.Reason, v.Matched)
			}
		default:
			t.Fatalf("%s: verdict %v, error %v", name, v, err)
		}
	}
}
