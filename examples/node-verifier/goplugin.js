'use strict';
// Serve a tlspin verifier from Node.js over HashiCorp go-plugin's protocol.
//
// What tlspin's host (go-plugin's Go client, gRPC) needs, and what serve()
// does about it (docs/writing-a-verifier.md, "On the wire"):
//
//   * the magic cookie TLSPIN_VERIFIER_PLUGIN=8f1c2e0b6d7a4f3e9b5c1a2d3e4f5a6b
//     in the environment, or the program was run by hand: say so, exit 1;
//   * a unix socket in a directory only our user can enter (inside
//     PLUGIN_UNIX_SOCKET_DIR); a Linux host sends no certificate: serve
//     plain gRPC, the host asks the kernel (SO_PEERCRED) that the socket is
//     ours, and other users cannot reach it;
//   * AutoMTLS, only where the host's certificate arrives as PEM in
//     PLUGIN_CLIENT_CERT (not on Linux): serve TLS with a fresh self-signed
//     certificate whose DNS SAN is "localhost" (the host checks that name),
//     and require the host's certificate from every client;
//   * one line on stdout, 1|1|unix|SOCKET|grpc|CERT (go-plugin core
//     protocol 1, verifier protocol 1, the socket, gRPC, the certificate's
//     DER in unpadded base64, empty without AutoMTLS), and nothing else on
//     stdout, ever: after it,
//     process.stdout writes go to stderr;
//   * services: tlspin.verifier.v1.Verifier, plugin.GRPCController/Shutdown
//     (exit: the host kills the plugin 0.5 s later), plugin.GRPCStdio/
//     StreamStdio (open and silent) and grpc.health.v1.Health/Check;
//   * logs: hclog JSON lines on stderr, at TLSPIN_LOG_LEVEL and above.

const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const MAGIC_COOKIE_KEY = 'TLSPIN_VERIFIER_PLUGIN';
const MAGIC_COOKIE_VALUE = '8f1c2e0b6d7a4f3e9b5c1a2d3e4f5a6b';
const VERIFIER_PROTOCOL_VERSION = 1;

const proto = grpc.loadPackageDefinition(protoLoader.loadSync(path.join(__dirname, 'verifier.proto'), {
  keepCase: true, longs: Number, enums: String, defaults: true,
})).tlspin.verifier.v1;

// OptionError is a bad option: INVALID_ARGUMENT, which tlspin shows as a
// usage error. The message names the option and quotes the value.
class OptionError extends Error {
  constructor(option, value, problem) {
    super(value ? `option ${option}="${value}": ${problem}` : `option "${option}": ${problem}`);
    this.option = option;
  }
}

// checkOptions refuses what description does not declare, a repeated value
// of an option that is not repeatable, and a missing required option.
function checkOptions(description, options) {
  const known = new Map(description.options.map((o) => [o.name, o]));
  const takes = [...known.keys()].sort().join(', ');
  for (const name of Object.keys(options).sort()) {
    const o = known.get(name);
    if (!o) throw new OptionError(name, '', `${description.name} does not take this option (it takes: ${takes})`);
    if (!o.repeated && options[name].length > 1) throw new OptionError(name, options[name].join(','), 'given more than once');
  }
  for (const o of description.options) {
    if (o.required && !(options[o.name] || []).length) throw new OptionError(o.name, '', `${description.name} requires it`);
  }
}

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error'];

function logger(name) {
  const want = LEVELS.indexOf((process.env.TLSPIN_LOG_LEVEL || 'info').toLowerCase());
  const min = want < 0 ? 2 : want;
  const log = (level, message, fields = {}) => {
    if (LEVELS.indexOf(level) < min) return;
    const entry = { '@level': level, '@message': message, '@module': name, '@timestamp': new Date().toISOString() };
    for (const [k, v] of Object.entries(fields)) entry[k] = String(v);
    // Not fs.writeSync(2, ...): once process.stderr exists, fd 2 is
    // non-blocking, and a pipe the host has not yet read empty would throw
    // EAGAIN from a log call (from a handler's catch: an unhandled
    // rejection, and the plugin dies). process.stderr writes at once when
    // it can, and otherwise keeps the line, in order, until it can.
    process.stderr.write(JSON.stringify(entry) + '\n');
  };
  return Object.fromEntries(LEVELS.map((l) => [l, (message, fields) => log(l, message, fields)]));
}

// DER, just enough for a self-signed certificate.
function tlv(tag, ...parts) {
  const body = Buffer.concat(parts);
  let len;
  if (body.length < 0x80) len = Buffer.from([body.length]);
  else {
    const hex = body.length.toString(16);
    const raw = Buffer.from(hex.length % 2 ? '0' + hex : hex, 'hex');
    len = Buffer.concat([Buffer.from([0x80 | raw.length]), raw]);
  }
  return Buffer.concat([Buffer.from([tag]), len, body]);
}
const seq = (...p) => tlv(0x30, ...p);
function oid(dotted) {
  const n = dotted.split('.').map(Number);
  const out = [40 * n[0] + n[1]];
  for (let v of n.slice(2)) {
    const chunk = [v & 0x7f];
    while ((v >>= 7)) chunk.unshift(0x80 | (v & 0x7f));
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}
const utcTime = (d) => tlv(0x17, Buffer.from(d.toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z'));
const ext = (id, value, critical) => seq(oid(id), critical ? tlv(0x01, Buffer.from([0xff])) : Buffer.alloc(0), tlv(0x04, value));

// localhostCertificate makes a fresh P-256 key and a self-signed CA
// certificate for DNS name localhost, as go-plugin's own plugins do.
function localhostCertificate() {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const ecdsaSHA256 = seq(oid('1.2.840.10045.4.3.2'));
  const name = seq(tlv(0x31, seq(oid('2.5.4.3'), tlv(0x0c, Buffer.from('localhost')))));
  const now = Date.now();
  const serial = crypto.randomBytes(16);
  serial[0] &= 0x7f;
  const tbs = seq(
    tlv(0xa0, tlv(0x02, Buffer.from([2]))),
    tlv(0x02, serial),
    ecdsaSHA256,
    name,
    seq(utcTime(new Date(now - 60e3)), utcTime(new Date(now + 365 * 86400e3))),
    name,
    publicKey.export({ type: 'spki', format: 'der' }),
    tlv(0xa3, seq(
      ext('2.5.29.15', tlv(0x03, Buffer.from([2, 0x84])), true), // digitalSignature, keyCertSign
      ext('2.5.29.37', seq(oid('1.3.6.1.5.5.7.3.1'), oid('1.3.6.1.5.5.7.3.2'))),
      ext('2.5.29.19', seq(tlv(0x01, Buffer.from([0xff]))), true),
      ext('2.5.29.17', seq(tlv(0x82, Buffer.from('localhost')))),
    )),
  );
  const der = seq(tbs, ecdsaSHA256, tlv(0x03, Buffer.from([0]), crypto.sign('sha256', tbs, privateKey)));
  const pem = `-----BEGIN CERTIFICATE-----\n${der.toString('base64').match(/.{1,64}/g).join('\n')}\n-----END CERTIFICATE-----\n`;
  return { der, pem: Buffer.from(pem), key: Buffer.from(privateKey.export({ type: 'pkcs8', format: 'pem' })) };
}

const raw = (pathName, responseStream = false) => ({
  path: pathName, requestStream: false, responseStream,
  requestSerialize: (b) => b, requestDeserialize: (b) => b, responseSerialize: (b) => b, responseDeserialize: (b) => b,
});

// MAX_TEXT_LEN is the most of a text the host keeps (verify.MaxTextLen).
const MAX_TEXT_LEN = 4096;

// truncate cuts s so that, with a note of its length, it fits MAX_TEXT_LEN
// bytes of UTF-8, as the host would cut it. An error's text travels in a
// gRPC header, and one over the host's header limit (an error quoting a
// peer's names, say) breaks the call, which the host takes for a broken
// plugin. A lone surrogate (a name cut in the middle of an emoji) comes
// back as U+FFFD: sent as it is, it is not UTF-8, and the host cannot read
// the verdict; in an error, grpc-js throws on it and the plugin dies.
function truncate(s) {
  const b = Buffer.from(String(s));
  if (b.length <= MAX_TEXT_LEN) return b.toString('utf8');
  const note = `\u2026 [truncated: ${b.length} bytes in all]`;
  // A character cut in two decodes as U+FFFD: drop it.
  return b.subarray(0, MAX_TEXT_LEN - Buffer.byteLength(note)).toString('utf8').replace(/\uFFFD$/, '') + note;
}

// printable is String(get()), or a note of its type when even that throws
// (an object without a prototype, a throwing toString or stack getter):
// the catch that reports an exception must not throw in turn, or the
// rejection is unhandled and the plugin dies.
function printable(get) {
  let v;
  try {
    v = get();
    return String(v);
  } catch {
    return `(unprintable ${typeof v})`;
  }
}

// verifierHandlers adapts verifier (describe(), configure(options),
// verify(request), possibly async) to the gRPC service: options are checked
// against describe() first, an OptionError is INVALID_ARGUMENT, and any
// other exception an error status (for verify, a rejection), never a crash.
//
// A verifier may also have commit(request): the host calls it once the
// handshake succeeded, for a verify() that allowed with commit: true, with
// the same request. Record the peer there, never in verify() (the host
// asks before the peer has proved it holds its key), and decide again.
// Without it, Commit answers UNIMPLEMENTED (grpc-js does so for a method
// left out), which the host reads as nothing to commit; but once verify()
// has allowed with commit: true, the host takes it for a record that
// cannot be made, and rejects the connection.
function verifierHandlers(verifier, log) {
  const wrap = (what, fn) => async (call, callback) => {
    try {
      callback(null, await fn(call.request));
    } catch (e) {
      if (e instanceof OptionError) return callback({ code: grpc.status.INVALID_ARGUMENT, details: truncate(e.message) });
      const text = printable(() => e);
      log.error(`${what} failed`, { error: truncate(text), stack: printable(() => e && e.stack) });
      callback({ code: grpc.status.UNKNOWN, details: truncate(`${what}: ${text}`) });
    }
  };
  const handlers = {
    Describe: wrap('describe', () => verifier.describe()),
    Configure: wrap('configure', async (req) => {
      const options = Object.fromEntries(Object.entries(req.options).map(([k, v]) => [k, v.values]));
      checkOptions(await verifier.describe(), options);
      return (await verifier.configure(options)) || {};
    }),
    Verify: wrap('verify', async (req) => {
      const v = await verifier.verify(req);
      if (!v || typeof v.allow !== 'boolean') throw new TypeError(`verify returned ${JSON.stringify(v)}, not a verdict`);
      // The host takes a negative cache time for a malformed answer and
      // restarts the plugin; as the verifier's error it is a rejection.
      if (v.cache_for_millis < 0) throw new RangeError(`cache_for_millis ${v.cache_for_millis} is negative (0: do not cache)`);
      // Cut as the host would: over its 1 MiB message cap (a reason
      // quoting a peer's names), the answer is garbage to the host, which
      // restarts the plugin.
      return { ...v, reason: truncate(v.reason ?? ''), matched: truncate(v.matched ?? '') };
    }),
    // WatchPolicy is left out: UNIMPLEMENTED, which the contract allows for
    // a verifier whose policy never changes.
  };
  if (typeof verifier.commit === 'function') {
    handlers.Commit = wrap('commit', async (req) => (await verifier.commit(req.request)) || {});
  }
  return handlers;
}

// serve serves verifier as a tlspin verifier plugin until the host stops it.
async function serve(verifier) {
  const name = (await verifier.describe()).name;
  if (process.env[MAGIC_COOKIE_KEY] !== MAGIC_COOKIE_VALUE) {
    process.stderr.write(`This is a tlspin verifier plugin; tlspin runs it: tlspin send --verifier ${name} ...\n`);
    process.exit(1);
  }
  const log = logger(name);
  const clientPEM = process.env.PLUGIN_CLIENT_CERT;
  const versions = (process.env.PLUGIN_PROTOCOL_VERSIONS || '').split(',');
  if (!versions.includes(String(VERIFIER_PROTOCOL_VERSION))) {
    log.warn("host does not speak this plugin's protocol version", { host: versions.join(','), plugin: VERIFIER_PROTOCOL_VERSION });
  }

  const server = new grpc.Server();
  const dir = fs.mkdtempSync(path.join(process.env.PLUGIN_UNIX_SOCKET_DIR || process.env.TMPDIR || os.tmpdir(), 'tlspin-plugin-'));
  const sock = path.join(dir, 'plugin.sock');
  const stdioCalls = new Set();
  const exit = (code) => {
    for (const c of stdioCalls) c.end();
    server.forceShutdown();
    fs.rmSync(dir, { recursive: true, force: true });
    process.exit(code);
  };
  server.addService(proto.Verifier.service, verifierHandlers(verifier, log));
  server.addService({ Shutdown: raw('/plugin.GRPCController/Shutdown') }, {
    Shutdown: (call, callback) => {
      log.debug('host asked the plugin to shut down');
      callback(null, Buffer.alloc(0));
      setImmediate(() => exit(0));
    },
  });
  server.addService({ StreamStdio: raw('/plugin.GRPCStdio/StreamStdio', true) }, {
    StreamStdio: (call) => {
      stdioCalls.add(call);
      call.on('cancelled', () => stdioCalls.delete(call));
    },
  });
  server.addService({ Check: raw('/grpc.health.v1.Health/Check') }, {
    Check: (call, callback) => callback(null, Buffer.from([0x08, 0x01])), // status: SERVING
  });

  let creds = grpc.ServerCredentials.createInsecure();
  let announced = '';
  if (clientPEM) {
    const cert = localhostCertificate();
    creds = grpc.ServerCredentials.createSsl(Buffer.from(clientPEM), [{ private_key: cert.key, cert_chain: cert.pem }], true);
    announced = cert.der.toString('base64').replace(/=+$/, '');
  }
  await new Promise((resolve, reject) => server.bindAsync('unix:' + sock, creds, (err) => (err ? reject(err) : resolve())));

  fs.writeSync(1, `1|${VERIFIER_PROTOCOL_VERSION}|unix|${sock}|grpc|${announced}\n`);
  // From now on nothing may reach stdout: console.log and friends go to stderr.
  process.stdout.write = process.stderr.write.bind(process.stderr);
  log.debug('plugin serving', { socket: sock });

  for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => exit(0));
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) {
      log.warn('host went away; exiting');
      exit(0);
    }
  }, 250).unref();
}

module.exports = { serve, OptionError, checkOptions, logger, localhostCertificate, verifierHandlers, proto };
