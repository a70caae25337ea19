package nodeverifier_test

import (
	"os"
	"os/exec"
	"runtime"
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

// fullStderrScript fills its stderr, a pipe nobody reads, as a host busy
// elsewhere leaves it, then serves a verify() that throws, with the
// logger serve() uses, and prints each answer.
const fullStderrScript = `
const fs = require('fs');
const grpc = require('@grpc/grpc-js');
const g = require('./goplugin');
process.stderr; // serve() touches it, and libuv makes fd 2 non-blocking
const flags = fs.readFileSync('/proc/self/fdinfo/2', 'utf8').match(/flags:\s*([0-7]+)/)[1];
if (!(parseInt(flags, 8) & 0o4000)) { console.log('blocking'); process.exit(0); } // a fill would hang
try { for (;;) fs.writeSync(2, 'x'.repeat(1024)); } catch (e) { if (e.code !== 'EAGAIN') throw e; }
const server = new grpc.Server();
server.addService(g.proto.Verifier.service, g.verifierHandlers({
  describe: () => ({ name: 't', version: '1', summary: 's', options: [] }),
  configure: () => ({}),
  verify: () => { throw new Error('bug'); },
}, g.logger('t')));
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), async (err, port) => {
  if (err) throw err;
  const c = new g.proto.Verifier('127.0.0.1:' + port, grpc.credentials.createInsecure());
  for (let i = 0; i < 2; i++) {
    await new Promise((resolve) => c.Verify({}, { deadline: Date.now() + 5000 }, (e) => {
      fs.writeSync(1, (e ? 'error ' + e.code + ' ' + e.details : 'answered') + '\n');
      resolve();
    }));
  }
  process.exit(0);
});
`

// TestLogOnAFullStderr: once process.stderr exists, fd 2 is non-blocking,
// and a log line written while the host has not yet read the pipe empty
// threw EAGAIN from the logger. In a handler's catch that was an
// unhandled rejection: the plugin died, failing every call in flight,
// for one verify() that threw. The line waits instead, and the call is
// answered.
func TestLogOnAFullStderr(t *testing.T) {
	needNode(t)
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/self/fdinfo")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command("node", "-e", fullStderrScript)
	cmd.Stderr = w // never read
	out, err := cmd.Output()
	w.Close()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	if strings.TrimSpace(string(out)) == "blocking" {
		t.Skip("this node writes to a stderr pipe in blocking mode: a full pipe waits")
	}
	want := "error 2 verify: Error: bug\nerror 2 verify: Error: bug"
	if got := strings.TrimSpace(string(out)); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

// oddThrowsScript serves a verify() that throws what String() or a
// template literal cannot print, and prints each answer.
const oddThrowsScript = `
const grpc = require('@grpc/grpc-js');
const g = require('./goplugin');
const badStack = () => { const e = new Error('x'); Object.defineProperty(e, 'stack', { get() { throw e; } }); return e; };
const throws = {
  'no prototype': () => { throw Object.create(null); },
  'a symbol': () => { throw Symbol('s'); },
  'a throwing toString': () => { throw { toString() { throw new Error('no'); } }; },
  'a throwing stack': () => { throw badStack(); },
};
const server = new grpc.Server();
server.addService(g.proto.Verifier.service, g.verifierHandlers({
  describe: () => ({ name: 't', version: '1', summary: 's', options: [] }),
  configure: () => ({}),
  verify: (req) => throws[req.server_name](),
}, g.logger('t')));
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), async (err, port) => {
  if (err) throw err;
  const c = new g.proto.Verifier('127.0.0.1:' + port, grpc.credentials.createInsecure());
  for (const name of Object.keys(throws)) {
    await new Promise((resolve) => c.Verify({ server_name: name }, { deadline: Date.now() + 5000 }, (e, r) => {
      console.log(name + ': ' + (e ? 'error ' + e.code + ' ' + e.details : 'allow=' + r.allow));
      resolve();
    }));
  }
  process.exit(0);
});
`

// TestOddThrows: whatever a verify() throws is an error answer, and the
// plugin goes on serving. A value String() cannot print (an object
// without a prototype, a throwing toString or stack getter), or a Symbol
// in a template literal, threw again in the handler's catch: an
// unhandled rejection, and the plugin died with every call in flight.
func TestOddThrows(t *testing.T) {
	needNode(t)
	out, err := exec.Command("node", "-e", oddThrowsScript).Output()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	want := "no prototype: error 2 verify: (unprintable object)\n" +
		"a symbol: error 2 verify: Symbol(s)\n" +
		"a throwing toString: error 2 verify: (unprintable object)\n" +
		"a throwing stack: error 2 verify: Error: x"
	if got := strings.TrimSpace(string(out)); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}
