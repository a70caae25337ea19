package nodeverifier_test

import (
	"os/exec"
	"strings"
	"testing"
)

// handlersScript serves goplugin.js's verifierHandlers on loopback with a
// verify() that answers as the server name says, and prints each answer.
const handlersScript = `
const grpc = require('@grpc/grpc-js');
const g = require('./goplugin');
const answers = {
  nocache: () => ({ allow: true, reason: 'fine', cache_for_millis: -1 }),
  allow: () => ({ allow: true, reason: 'fine', cache_for_millis: 1000 }),
  long: () => ({ allow: true, reason: 'n.example,'.repeat(200 << 10), matched: 'm'.repeat(2 << 20) }),
};
const texts = (r) => [r.reason, r.matched].filter((s) => s.length > 100)
  .map((s) => ' ' + Buffer.byteLength(s) + ' bytes ending ' + JSON.stringify(s.slice(-32))).join('');
const server = new grpc.Server();
server.addService(g.proto.Verifier.service, g.verifierHandlers({
  describe: () => ({ name: 't', version: '1', summary: 's', options: [] }),
  configure: () => ({}),
  verify: (req) => answers[req.server_name](),
}, { error: () => {} }));
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), async (err, port) => {
  if (err) throw err;
  const c = new g.proto.Verifier('127.0.0.1:' + port, grpc.credentials.createInsecure());
  for (const name of Object.keys(answers)) {
    await new Promise((resolve) => c.Verify({ server_name: name }, { deadline: Date.now() + 5000 }, (e, r) => {
      console.log(name + ': ' + (e ? 'error ' + e.code + ' ' + e.details : 'allow=' + r.allow + ' cache=' + r.cache_for_millis + texts(r)));
      resolve();
    }));
  }
  process.exit(0);
});
`

// TestVerdictsTheHostTakes: a verify() that answers a negative
// cache_for_millis (meaning "do not cache") gets the verifier's own
// error, a rejection that says why; one whose reason and matched rule
// are megabytes long (quoting a peer's names) has them cut to the 4 KiB
// the host keeps. Either went out as it was, and the host took it for a
// malformed answer (over its 1 MiB message cap) and restarted the
// plugin, on every call.
func TestVerdictsTheHostTakes(t *testing.T) {
	needNode(t)
	out, err := exec.Command("node", "-e", handlersScript).CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	got := strings.TrimSpace(string(out))
	want := "nocache: error 2 verify: RangeError: cache_for_millis -1 is negative (0: do not cache)\nallow: allow=true cache=1000\n" +
		`long: allow=true cache=0 4096 bytes ending "truncated: 2048000 bytes in all]" 4096 bytes ending "truncated: 2097152 bytes in all]"`
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}
