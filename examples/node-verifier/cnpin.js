'use strict';
// cnpin: accept a peer whose leaf certificate's subject common name is one
// of the pinned names, and, if issuer-cn is given, whose issuer's common
// name is one of those too. A name pin, not a key pin: use it where the
// names are what you manage (an internal CA, a test bed), with a CA verifier
// (--verifier ca:... --require all) when the signature must be checked too.

const { X509Certificate } = require('node:crypto');
const { OptionError } = require('./goplugin');

const NAME = 'cnpin';

// commonNames returns the CN values of a distinguished name as Node prints
// it: one RDN a line, "CN=value", the value escaped as in RFC 2253 (a
// backslash before , + " \ < > ; and a leading # or space, \XX for a
// control character); none for an empty name. The values come back as the
// certificate holds them: "CN=Acme\, Inc" is the name Acme, Inc.
function commonNames(dn) {
  return (dn || '').split('\n').filter((l) => l.startsWith('CN=')).map((l) => unescapeDN(l.slice(3)));
}

function unescapeDN(v) {
  return v.replace(/\\([0-9A-Fa-f]{2}|[\s\S])/g, (_, e) => (e.length === 2 ? String.fromCharCode(parseInt(e, 16)) : e));
}

// trustHint is the --verifier argument that pins cn: a comma and a
// backslash escaped for the spec, the whole quoted for the shell when needed.
function trustHint(cn) {
  const spec = `${NAME}:cn=${cn.replace(/[\\,]/g, (c) => '\\' + c)}`;
  return /^[\w.@%+:=\/-]+$/.test(spec) ? spec : `'${spec.replace(/'/g, "'\\''")}'`;
}

class CNPin {
  describe() {
    return {
      name: NAME,
      version: '1',
      summary: "accept a leaf whose subject CN is pinned, optionally also its issuer's CN (written in Node.js)",
      options: [
        { name: 'cn', required: true, repeated: true, description: "a subject common name to accept, exactly (case-sensitive)" },
        { name: 'issuer-cn', repeated: true, description: "if given, the leaf's issuer common name must be one of these too" },
      ],
    };
  }

  configure(options) {
    // Unknown, missing and repeated options were refused by goplugin.js.
    for (const opt of ['cn', 'issuer-cn']) {
      for (const v of options[opt] || []) {
        if (v === '' || v.trim() !== v || /[\n=]/.test(v)) {
          throw new OptionError(opt, v, 'want a common name: not empty, no surrounding spaces, no "=" or newline');
        }
      }
    }
    this.cns = new Set(options.cn);
    this.issuers = new Set(options['issuer-cn'] || []);
    return {};
  }

  verify(req) {
    const der = req.peer_chain[0];
    if (!der) return { allow: false, reason: 'peer sent no certificate' };
    let cert;
    try {
      cert = new X509Certificate(der);
    } catch (e) {
      return { allow: false, reason: `peer certificate (${der.length} bytes) does not parse: ${e.message}` };
    }
    const subject = commonNames(cert.subject);
    const matched = subject.find((cn) => this.cns.has(cn));
    if (matched === undefined) {
      const shown = subject.length ? subject.map((cn) => JSON.stringify(cn)).join(', ') : 'no common name';
      const hint = subject.length === 1 ? `; to trust it: --verifier ${trustHint(subject[0])}` : '';
      return { allow: false, reason: `leaf subject has ${shown}, not a pinned one${hint}` };
    }
    if (this.issuers.size) {
      const issuer = commonNames(cert.issuer);
      if (!issuer.some((cn) => this.issuers.has(cn))) {
        return { allow: false, reason: `leaf ${JSON.stringify(matched)} was issued by ${issuer.map((cn) => JSON.stringify(cn)).join(', ') || 'no common name'}, not a pinned issuer` };
      }
    }
    return { allow: true, reason: `leaf subject CN ${JSON.stringify(matched)} is pinned`, matched: `cn=${matched}`, cache_for_millis: 60000 };
  }
}

module.exports = { CNPin, NAME, commonNames };
