// Differential test: os-update's TUF client against tuf-js, the reference client for
// JavaScript. Repositories are generated here with @tufjs/models, served from 127.0.0.1, and
// both clients judge each one (accept or refuse) from the same trusted root and the same
// history. They must agree, except in the cases listed with `spec`: there tuf-js departs from
// the TUF specification (or os-update refuses on purpose) and the section named decides.
//
// Usage: node differential.mjs OS_UPDATE_BUNDLE_BINARY WORKDIR
import { Metadata, Root, Timestamp, Snapshot, Targets, Key, MetaFile, TargetFile, Signature } from '@tufjs/models';
import { canonicalize } from '@tufjs/canonical-json';
import { Updater } from 'tuf-js';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { execFile, execFileSync } from 'node:child_process';

const [bundleBin, workDir] = process.argv.slice(2);
if (!bundleBin || !workDir) { console.error('usage: differential.mjs OS_UPDATE_BUNDLE WORKDIR'); process.exit(1); }

// ---- keys -----------------------------------------------------------------------------
function makeKey(type = 'ed25519') {
  let pair;
  if (type === 'ed25519') pair = crypto.generateKeyPairSync('ed25519');
  else if (type === 'ecdsa') pair = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  else pair = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pub = type === 'ed25519'
    ? pair.publicKey.export({ type: 'spki', format: 'der' }).subarray(-32).toString('hex')
    : pair.publicKey.export({ type: 'spki', format: 'pem' });
  const keyJson = {
    keytype: type === 'ed25519' ? 'ed25519' : type === 'ecdsa' ? 'ecdsa' : 'rsa',
    scheme: type === 'ed25519' ? 'ed25519' : type === 'ecdsa' ? 'ecdsa-sha2-nistp256' : 'rsassa-pss-sha256',
    keyval: { public: pub },
  };
  const keyID = crypto.createHash('sha256').update(canonicalize(keyJson)).digest('hex');
  return { type, keyID, keyJson, priv: pair.privateKey };
}
function signBytes(k, data) {
  if (k.type === 'ed25519') return crypto.sign(null, data, k.priv);
  if (k.type === 'ecdsa') return crypto.sign('sha256', data, k.priv);
  return crypto.sign('sha256', data, { key: k.priv, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 });
}
function tufKey(k, id = k.keyID, json = k.keyJson) {
  return new Key({ keyID: id, keyType: json.keytype, scheme: json.scheme, keyVal: json.keyval });
}

// ---- repositories -----------------------------------------------------------------------
const DAY = 86400e3;
const iso = (ms) => new Date(Math.floor((Date.now() + ms) / 1000) * 1000).toISOString().replace('.000Z', 'Z');
const SPEC = '1.0.31';

// A repository description; build() turns it into files. Every field can be overridden.
function baseRepo(keyType = 'ed25519') {
  const k = { root: makeKey(keyType), timestamp: makeKey(keyType), snapshot: makeKey(keyType), targets: makeKey(keyType) };
  return {
    keys: k,
    roots: [], // history of root Metadata objects (1.root.json, 2.root.json, ...)
    bundle: Buffer.from('bundle bytes of release 2\n'.repeat(20)),
    version: { timestamp: 1, snapshot: 1, targets: 1 },
    expires: { root: iso(365 * DAY), timestamp: iso(1 * DAY), snapshot: iso(7 * DAY), targets: iso(30 * DAY) },
    consistent: false,
    signers: {}, // role -> [key] overriding the role's own keys
  };
}
function rootSigned(r, { version = 1, keys = r.keys, thresholds = {}, extraKeys = [], expires = r.expires.root, spec = SPEC }) {
  const root = new Root({ version, specVersion: spec, expires, consistentSnapshot: r.consistent });
  for (const role of ['root', 'timestamp', 'snapshot', 'targets']) {
    const list = Array.isArray(keys[role]) ? keys[role] : [keys[role]];
    for (const key of list) root.addKey(tufKey(key), role);
    if (thresholds[role]) root.roles[role].threshold = thresholds[role];
  }
  for (const [role, key, id, json] of extraKeys) root.addKey(tufKey(key, id, json), role);
  return root;
}
function signWith(md, keys) {
  for (const key of keys) md.sign((data) => new Signature({ keyID: key.keyID, sig: signBytes(key, data).toString('hex') }), true);
  return md;
}
// Edits "signed" as the models would refuse to, then signs it again (canonical JSON).
function resign(text, keys, edit) {
  const j = JSON.parse(text);
  edit(j.signed);
  j.signatures = keys.map((k) => ({ keyid: k.keyID, sig: signBytes(k, Buffer.from(canonicalize(j.signed))).toString('hex') }));
  return JSON.stringify(j, null, 1);
}
const json = (md) => JSON.stringify(md.toJSON(), null, 1);

// Builds { files: {name: string|Buffer}, root1: string } for one repository state.
function build(r, opt = {}) {
  const files = {};
  if (r.roots.length === 0) r.roots.push({ md: signWith(new Metadata(rootSigned(r, {})), [].concat(r.keys.root)) });
  r.roots.forEach((entry, i) => { files[`${i + 1}.root.json`] = entry.raw ?? json(entry.md); });
  files['root.json'] = files[`${r.roots.length}.root.json`];
  const tg = new Targets({ version: r.version.targets, specVersion: SPEC, expires: r.expires.targets });
  const bundleName = 'eos.osu';
  if (!opt.unlisted) {
    tg.targets[bundleName] = new TargetFile({ path: bundleName, length: r.bundle.length,
      hashes: { sha256: crypto.createHash('sha256').update(r.bundle).digest('hex') },
      unrecognizedFields: { custom: { version: '2.0.0', compatible: 'eos-x86_64-kvm' } } });
  }
  if (opt.targetsExtra) Object.assign(tg.unrecognizedFields, opt.targetsExtra);
  const tgMd = signWith(new Metadata(tg), r.signers.targets ?? [].concat(r.keys.targets));
  let tgText = opt.targetsRaw ?? json(tgMd);
  if (opt.targetsJsonMangle) tgText = opt.targetsJsonMangle(tgText, tgMd);
  const snap = new Snapshot({ version: r.version.snapshot, specVersion: SPEC, expires: r.expires.snapshot,
    meta: { 'targets.json': new MetaFile({ version: opt.snapshotNamesTargets ?? r.version.targets }) } });
  const snapMd = signWith(new Metadata(snap), r.signers.snapshot ?? [].concat(r.keys.snapshot));
  let snapText = json(snapMd);
  const snapHash = crypto.createHash('sha256').update(snapText).digest('hex');
  const ts = new Timestamp({ version: r.version.timestamp, specVersion: SPEC, expires: r.expires.timestamp,
    snapshotMeta: new MetaFile({ version: opt.timestampNamesSnapshot ?? r.version.snapshot,
      length: opt.snapshotLength ?? snapText.length, hashes: { sha256: opt.snapshotHash ?? snapHash } }) });
  if (opt.timestampPad) ts.unrecognizedFields.pad = 'x'.repeat(opt.timestampPad);
  const tsMd = signWith(new Metadata(ts), r.signers.timestamp ?? [].concat(r.keys.timestamp));
  let tsText = opt.timestampRaw ?? json(tsMd);
  if (r.consistent) {
    files[`${r.version.snapshot}.snapshot.json`] = snapText;
    files[`${r.version.targets}.targets.json`] = tgText;
    files[`${crypto.createHash('sha256').update(r.bundle).digest('hex')}.${bundleName}`] = opt.servedBundle ?? r.bundle;
  } else {
    files['snapshot.json'] = snapText;
    files['targets.json'] = tgText;
    files[bundleName] = opt.servedBundle ?? r.bundle;
  }
  files['timestamp.json'] = tsText;
  if (opt.files) Object.assign(files, opt.files);
  return files;
}
function rotate(r, newKeys, { signBy, expires, version, thresholds, raw } = {}) {
  const v = r.roots.length + 1;
  const md = new Metadata(rootSigned(r, { version: version ?? v, keys: newKeys, thresholds, expires }));
  const oldRootKeys = [].concat(r.keys.root);
  const newRootKeys = [].concat(newKeys.root);
  const by = signBy ?? [...new Set([...oldRootKeys, ...newRootKeys])];
  signWith(md, by);
  r.roots.push({ md, raw: raw ? raw(json(md)) : undefined });
  r.keys = newKeys;
}
const clone = (k) => ({ ...k });

// ---- the cases ---------------------------------------------------------------------------
// Each: name, steps (repository states served one after the other to the same client state),
// the expected verdict of the last step, and `spec` when the clients are expected to differ.
const cases = [];
const add = (name, steps, expect, extra = {}) => cases.push({ name, steps, expect, ...extra });

add('valid repository (ed25519)', [() => build(baseRepo())], 'accept');
add('valid repository (ecdsa-sha2-nistp256)', [() => build(baseRepo('ecdsa'))], 'accept');
add('valid repository (rsassa-pss-sha256)', [() => build(baseRepo('rsa'))], 'accept');
add('consistent snapshots', [() => { const r = baseRepo(); r.consistent = true; return build(r); }], 'accept');
for (const role of ['root', 'timestamp', 'snapshot', 'targets']) {
  add(`expired ${role}`, [() => { const r = baseRepo(); r.expires[role] = iso(-DAY); return build(r); }], 'refuse');
}
{
  let r;
  add('timestamp version rolled back', [() => { r = baseRepo(); r.version.timestamp = 5; return build(r); },
    () => { r.version.timestamp = 4; return build(r); }], 'refuse');
}
{
  let r;
  add('snapshot version rolled back', [() => { r = baseRepo(); r.version.snapshot = 5; r.version.timestamp = 5; return build(r); },
    () => { r.version.snapshot = 4; r.version.timestamp = 6; return build(r); }], 'refuse');
}
{
  let r;
  add('targets version rolled back', [() => { r = baseRepo(); r.version.targets = 5; r.version.snapshot = 2; r.version.timestamp = 2; return build(r); },
    () => { r.version.targets = 4; r.version.snapshot = 3; r.version.timestamp = 3; return build(r); }], 'refuse');
}
{
  let r;
  add('root version rolled back (2.root.json says version 1)', [() => { r = baseRepo(); build(r); rotate(r, clone(r.keys), { version: 1 }); return build(r); }], 'refuse');
}
{
  let r, old;
  add('mix-and-match: new timestamp, old snapshot', [() => { r = baseRepo(); old = build(r); return old; },
    () => { r.version.snapshot = 2; r.version.timestamp = 2; const now = build(r); now['snapshot.json'] = old['snapshot.json']; return now; }], 'refuse');
}
{
  let r, old;
  add('mix-and-match: snapshot names targets v2, server has v1', [() => { r = baseRepo(); old = build(r); return old; },
    () => { r.version.targets = 2; r.version.snapshot = 2; r.version.timestamp = 2; const now = build(r); now['targets.json'] = old['targets.json']; return now; }], 'refuse');
}
add('threshold one signature short', [() => { const r = baseRepo(); const k2 = makeKey();
  r.keys.targets = [r.keys.targets, k2]; r.roots.push({ md: signWith(new Metadata(rootSigned(r, { thresholds: { targets: 2 } })), [].concat(r.keys.root)) });
  r.signers.targets = [r.keys.targets[0]]; return build(r); }], 'refuse');
add('threshold of two met by two keys', [() => { const r = baseRepo(); const k2 = makeKey();
  r.keys.targets = [r.keys.targets, k2]; r.roots.push({ md: signWith(new Metadata(rootSigned(r, { thresholds: { targets: 2 } })), [].concat(r.keys.root)) });
  r.signers.targets = r.keys.targets; return build(r); }], 'accept');
add('the same signature listed twice toward a threshold of two', [() => { const r = baseRepo(); const k2 = makeKey();
  r.keys.targets = [r.keys.targets, k2]; r.roots.push({ md: signWith(new Metadata(rootSigned(r, { thresholds: { targets: 2 } })), [].concat(r.keys.root)) });
  r.signers.targets = [r.keys.targets[0]];
  return build(r, { targetsJsonMangle: (t) => { const j = JSON.parse(t); j.signatures.push(j.signatures[0]); return JSON.stringify(j); } }); }], 'refuse');
add('the same key under two keyids toward a threshold of two', [() => { const r = baseRepo(); const k = r.keys.targets;
  const alias = { ...k, keyID: crypto.createHash('sha256').update('alias').digest('hex') };
  r.keys.targets = [k, alias]; r.roots.push({ md: signWith(new Metadata(rootSigned(r, { thresholds: { targets: 2 } })), [].concat(r.keys.root)) });
  r.signers.targets = [k, alias]; return build(r); }], 'refuse',
  { spec: 'section 4.3 (root.json): a role\'s threshold counts signatures of distinct keys; tuf-js counts keyids, so one key listed under two keyids makes two' });
{
  let r, removed;
  add('root rotation removes the targets key; targets then signed by it only', [() => { r = baseRepo(); return build(r); },
    () => { removed = r.keys.targets; const k = clone(r.keys); k.targets = makeKey(); rotate(r, k); r.signers.targets = [removed];
      r.version.targets = 2; r.version.snapshot = 2; r.version.timestamp = 2; return build(r); }], 'refuse');
}
{
  let r;
  add('root rotation to a new targets key, targets signed by it', [() => { r = baseRepo(); return build(r); },
    () => { const k = clone(r.keys); k.targets = makeKey(); k.root = makeKey(); rotate(r, k);
      r.version.targets = 2; r.version.snapshot = 2; r.version.timestamp = 2; return build(r); }], 'accept');
}
{
  let r;
  add('root rotation chain with a gap (2.root.json missing)', [() => { r = baseRepo(); return build(r); },
    () => { const k = clone(r.keys); k.root = makeKey(); k.timestamp = makeKey(); rotate(r, k); const k3 = clone(r.keys); k3.root = makeKey(); rotate(r, k3);
      r.version.timestamp = 2; const f = build(r); delete f['2.root.json']; return f; }], 'refuse');
}
{
  let r;
  add('new root signed by the new root keys only', [() => { r = baseRepo(); return build(r); },
    () => { const k = clone(r.keys); k.root = makeKey(); rotate(r, k, { signBy: [k.root] }); return build(r); }], 'refuse');
}
{
  let r;
  add('new root signed by the old root keys only', [() => { r = baseRepo(); return build(r); },
    () => { const old = r.keys.root; const k = clone(r.keys); k.root = makeKey(); rotate(r, k, { signBy: [old] }); return build(r); }], 'refuse');
}
{
  let r;
  add('expired intermediate root in a valid chain', [() => { r = baseRepo(); build(r); rotate(r, clone(r.keys), { expires: iso(-DAY) }); rotate(r, clone(r.keys)); return build(r); }], 'accept');
}
{
  let r;
  add('fast-forward attack: timestamp v1000 accepted, then the real v3', [() => { r = baseRepo(); r.version.timestamp = 1000; return build(r); },
    () => { r.version.timestamp = 3; return build(r); }], 'refuse');
}
{
  let r;
  add('fast-forward recovery: timestamp key rotated in root v2, timestamp v3', [() => { r = baseRepo(); r.version.timestamp = 1000; return build(r); },
    () => { r.version.timestamp = 3; return build(r); },
    () => { const k = clone(r.keys); k.timestamp = makeKey(); rotate(r, k); r.version.timestamp = 4; return build(r); }], 'accept', { judge: [undefined, 'refuse', 'accept'] });
}
add('oversized timestamp (20 KB)', [() => build(baseRepo(), { timestampPad: 20000 })], 'refuse');
add('oversized root (2.root.json of 600 KB)', [() => { const r = baseRepo(); build(r); rotate(r, clone(r.keys), { raw: (t) => t.replace(/\n}$/, `,"pad":"${'x'.repeat(600000)}"}`) }); return build(r); }], 'refuse');
add('snapshot length differs from the timestamp\'s', [() => build(baseRepo(), { snapshotLength: 100 })], 'refuse');
add('snapshot hash differs from the timestamp\'s', [() => build(baseRepo(), { snapshotHash: '0'.repeat(64) })], 'refuse');
add('target length does not match', [() => { const r = baseRepo(); return build(r, { servedBundle: Buffer.concat([r.bundle, Buffer.from('x')]) }); }], 'refuse');
add('target hash does not match', [() => { const r = baseRepo(); const b = Buffer.from(r.bundle); b[0] ^= 1; return build(r, { servedBundle: b }); }], 'refuse');
add('bundle not listed', [() => build(baseRepo(), { unlisted: true })], 'refuse');
add('malformed JSON (timestamp cut short)', [() => { const f = build(baseRepo()); f['timestamp.json'] = f['timestamp.json'].slice(0, 100); return f; }], 'refuse');
add('non-canonical JSON (other key order and spacing), valid signatures', [() => { const f = build(baseRepo());
  const j = JSON.parse(f['targets.json']); const s = j.signed; j.signed = Object.fromEntries(Object.entries(s).reverse());
  f['targets.json'] = JSON.stringify({ signed: j.signed, signatures: j.signatures }, null, 7); return f; }], 'accept',
  { note: 'targets.json\'s length and hash are not in snapshot here, so its bytes may change' });
add('unknown key type as the only targets key', [() => { const r = baseRepo(); const k = r.keys.targets;
  k.keyJson = { ...k.keyJson, keytype: 'foo', scheme: 'bar' }; return build(r); }], 'refuse');
add('unknown key type beside a valid one (threshold 1)', [() => { const r = baseRepo(); const odd = makeKey(); odd.keyJson = { ...odd.keyJson, keytype: 'foo', scheme: 'bar' };
  r.keys.targets = [r.keys.targets, odd]; return build(r); }], 'accept');
add('spec_version 2.0.0 in targets', [() => { const r = baseRepo();
  return build(r, { targetsJsonMangle: (t) => resign(t, [r.keys.targets], (s) => { s.spec_version = '2.0.0'; }) }); }], 'refuse');
add('timestamp signed by the snapshot key', [() => { const r = baseRepo(); r.signers.timestamp = [r.keys.snapshot]; return build(r); }], 'refuse');
add('wrong _type (snapshot served as timestamp.json)', [() => { const f = build(baseRepo()); f['timestamp.json'] = f['snapshot.json']; return f; }], 'refuse');
add('delegations in targets (one delegated role, no keys)', [() => build(baseRepo(), { targetsExtra: { delegations: { keys: {},
  roles: [{ name: 'apps', keyids: [], threshold: 1, paths: ['apps/*'], terminating: false }] } } })], 'refuse',
  { spec: 'not tuf-js: os-update refuses delegations in this first version (issue 15); section 5.6.7 would walk them' });
// Repositories made only by os-update's own tooling (os-update-bundle tuf init|add|sign|
// rotate|timestamp), keys as separate PEM files as on separate machines: a real bundle, root
// threshold 2, consistent snapshots; then a rotation of the targets key and of a root key.
function toolingRepo() {
  const dir = fs.mkdtempSync(path.join(workDir, 'tooling-'));
  const run = (...args) => execFileSync(bundleBin, args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  fs.writeFileSync(path.join(dir, 'rootfs.img'), crypto.randomBytes(256 * 1024));
  run('create', '--image', 'rootfs.img', '--compression', 'zstd', '--level', '1', '--compatible', 'eos-x86_64-kvm',
    '--version', '2.0.0', '--unsigned', '--output', 'eos.osu');
  for (const k of ['alice', 'bob', 'carol', 'release', 'release2', 'online']) run('keygen', '--private', `${k}.pem`, '--public', `${k}.pub`);
  const files = () => Object.fromEntries(fs.readdirSync(path.join(dir, 'repo')).map((n) => [n, fs.readFileSync(path.join(dir, 'repo', n))]));
  return {
    first() {
      run('tuf', 'init', 'repo', '--root-key', 'alice.pub', '--root-key', 'bob.pub', '--root-threshold', '2',
        '--targets-key', 'release.pub', '--snapshot-key', 'online.pub', '--timestamp-key', 'online.pub');
      run('tuf', 'sign', 'repo/1.root.json', '--key', 'alice.pem');
      run('tuf', 'sign', 'repo/1.root.json', '--key', 'bob.pem');
      run('tuf', 'add', 'repo', 'eos.osu');
      run('tuf', 'sign', 'repo/targets.json', '--key', 'release.pem');
      run('tuf', 'timestamp', 'repo', '--key', 'online.pem');
      return files();
    },
    rotated() {
      run('tuf', 'rotate', 'repo', '--targets-key', 'release2.pub');
      for (const k of ['alice', 'bob']) run('tuf', 'sign', 'repo/2.root.json', '--key', `${k}.pem`);
      run('tuf', 'rotate', 'repo', '--root-key', 'bob.pub', '--root-key', 'carol.pub', '--root-threshold', '2');
      for (const k of ['alice', 'bob', 'carol']) run('tuf', 'sign', 'repo/3.root.json', '--key', `${k}.pem`);
      run('tuf', 'add', 'repo');
      run('tuf', 'sign', 'repo/targets.json', '--key', 'release2.pem');
      run('tuf', 'timestamp', 'repo', '--key', 'online.pem');
      return files();
    },
    // targets re-signed by the retired key only, snapshot and timestamp by the online key (a
    // thief with both): written here, as the tooling refuses to publish it.
    retiredKey() {
      const out = files();
      const root = JSON.parse(out['3.root.json']);
      const sign = (pem, text) => { const j = JSON.parse(text);
        const key = crypto.createPrivateKey(fs.readFileSync(path.join(dir, pem)));
        const pub = crypto.createPublicKey(key).export({ type: 'spki', format: 'der' }).subarray(-32).toString('hex');
        const id = crypto.createHash('sha256').update(canonicalize({ keytype: 'ed25519', keyval: { public: pub }, scheme: 'ed25519' })).digest('hex');
        j.signatures = [{ keyid: id, sig: crypto.sign(null, Buffer.from(canonicalize(j.signed)), key).toString('hex') }];
        return JSON.stringify(j); };
      const tg = JSON.parse(out['targets.json']); tg.signed.version += 1;
      const tgText = sign('release.pem', JSON.stringify(tg));
      const sn = JSON.parse(out['snapshot.json']); sn.signed.version += 1;
      sn.signed.meta['targets.json'] = { version: tg.signed.version, length: tgText.length,
        hashes: { sha256: crypto.createHash('sha256').update(tgText).digest('hex') } };
      const snText = sign('online.pem', JSON.stringify(sn));
      const ts = JSON.parse(out['timestamp.json']); ts.signed.version += 1;
      ts.signed.meta['snapshot.json'] = { version: sn.signed.version, length: snText.length,
        hashes: { sha256: crypto.createHash('sha256').update(snText).digest('hex') } };
      out[`${tg.signed.version}.targets.json`] = tgText;
      out[`${sn.signed.version}.snapshot.json`] = snText;
      out['timestamp.json'] = sign('online.pem', JSON.stringify(ts));
      if (!root.signed.consistent_snapshot) throw new Error('the tooling wrote no consistent snapshots');
      return out;
    },
  };
}
{
  let t;
  add('repository made by os-update-bundle\'s tooling (threshold 2, consistent snapshots)', [() => { t = toolingRepo(); return t.first(); }], 'accept');
}
{
  let t;
  add('tooling: targets key and a root key rotated (root v3), new targets', [() => { t = toolingRepo(); return t.first(); }, () => t.rotated()], 'accept');
}
{
  let t;
  add('tooling: after the rotation, targets signed by the retired key only', [() => { t = toolingRepo(); return t.first(); },
    () => t.rotated(), () => t.retiredKey()], 'refuse', { judge: [undefined, 'accept', 'refuse'] });
}
add('no timestamp.json on the server', [() => { const f = build(baseRepo()); delete f['timestamp.json']; return f; }], 'refuse');

// ---- serving and judging -------------------------------------------------------------------
let served = {};
const server = http.createServer((req, res) => {
  const name = decodeURIComponent(req.url.split('?')[0]).replace(/^\/+/, '');
  const body = served[name];
  if (body === undefined) { res.writeHead(404); res.end(); return; }
  const buf = Buffer.from(body);
  const range = /bytes=(\d+)-(\d*)/.exec(req.headers.range ?? '');
  if (range) {
    const start = Number(range[1]);
    const end = Math.min(range[2] ? Number(range[2]) : buf.length - 1, buf.length - 1);
    if (start >= buf.length) { res.writeHead(416, { 'Content-Range': `bytes */${buf.length}` }); res.end(); return; }
    res.writeHead(206, { 'Content-Range': `bytes ${start}-${end}/${buf.length}`, 'Content-Length': end - start + 1 });
    res.end(buf.subarray(start, end + 1));
    return;
  }
  res.writeHead(200, { 'Content-Length': buf.length });
  res.end(buf);
});
await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
const base = `http://127.0.0.1:${server.address().port}`;

async function tufJs(dir) {
  try {
    const u = new Updater({ metadataDir: dir, metadataBaseUrl: base, targetBaseUrl: base, targetDir: path.join(dir, 'targets'),
      config: { fetchRetries: 0 } });
    await u.refresh();
    const info = await u.getTargetInfo('eos.osu');
    if (!info) return { verdict: 'refuse', why: 'eos.osu not listed' };
    fs.mkdirSync(path.join(dir, 'targets'), { recursive: true });
    await u.downloadTarget(info, path.join(dir, 'targets', 'eos.osu'));
    return { verdict: 'accept' };
  } catch (e) { return { verdict: 'refuse', why: String(e.message ?? e).split('\n')[0] }; }
}
// Asynchronous: the server above runs in this same event loop.
function osUpdate(rootFile, stateDir) {
  return new Promise((done) => {
    execFile(bundleBin, ['tuf', 'verify', '--root', rootFile, '--state', stateDir, '--base', base,
      '--target', 'eos.osu', '--fetch-target'], { encoding: 'utf8' }, (err, stdout, stderr) => {
      if (!err) done({ verdict: 'accept', out: stdout.trim() });
      else done({ verdict: err.code === 2 || err.code === 3 ? 'refuse' : `error ${err.code}`, why: (stderr || String(err)).trim() });
    });
  });
}

fs.rmSync(workDir, { recursive: true, force: true });
let failures = 0, judged = 0, differ = 0;
const rows = [];
for (const [i, c] of cases.entries()) {
  if (c.skip) continue;
  const dir = path.join(workDir, String(i).padStart(2, '0'));
  const tjDir = path.join(dir, 'tuf-js'), ouState = path.join(dir, 'os-update-state');
  fs.mkdirSync(tjDir, { recursive: true });
  let last;
  for (const [s, step] of c.steps.entries()) {
    served = step();
    if (s === 0) {
      // Both start from the first root the repository ever had, as shipped in an image.
      fs.writeFileSync(path.join(tjDir, 'root.json'), served['1.root.json']);
      fs.writeFileSync(path.join(dir, 'anchor-root.json'), served['1.root.json']);
    }
    const tj = await tufJs(tjDir);
    const ou = await osUpdate(path.join(dir, 'anchor-root.json'), ouState);
    const want = c.judge?.[s];
    if (want && (tj.verdict !== want || ou.verdict !== want)) {
      failures++;
      rows.push(`FAIL ${c.name}: step ${s + 1} expected ${want}, tuf-js ${tj.verdict}, os-update ${ou.verdict} (${ou.why ?? ''} | ${tj.why ?? ''})`);
    }
    last = { tj, ou };
  }
  judged++;
  const { tj, ou } = last;
  const agree = tj.verdict === ou.verdict;
  if (!agree) differ++;
  let status = 'ok';
  if (ou.verdict !== c.expect) status = 'FAIL';
  else if (!agree && !c.spec) status = 'FAIL';
  if (status === 'FAIL') failures++;
  rows.push(`${status.padEnd(4)} ${c.name}: os-update ${ou.verdict}, tuf-js ${tj.verdict}` +
    (c.spec && !agree ? ` (differ; the spec decides: ${c.spec})` : '') +
    (status === 'FAIL' ? `\n     os-update: ${ou.why ?? ou.out}\n     tuf-js: ${tj.why ?? ''}` : ''));
}
// What a check costs over HTTP (metadata only; one key per role): a first refresh, then one
// with nothing new on the server.
{
  served = build(baseRepo());
  const dir = path.join(workDir, 'figures');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'root.json'), served['1.root.json']);
  const figure = async () => {
    const r = await new Promise((done) => execFile(bundleBin, ['tuf', 'verify', '--root', path.join(dir, 'root.json'),
      '--state', path.join(dir, 'state'), '--base', base, '--target', 'eos.osu'], { encoding: 'utf8' },
      (err, stdout) => done(err ? null : JSON.parse(stdout))));
    return r ? `${r.bytes} bytes in ${r.requests} requests` : 'refused';
  };
  rows.push(`figures: os-update's refresh costs ${await figure()} (first), ${await figure()} (nothing new)`);
}
server.close();
for (const r of rows) console.log(r);
console.log(`differential: ${judged} repositories judged by both clients, ${differ} verdicts differ (each such case names the spec section that decides), ${failures} failures`);
process.exit(failures ? 1 : 0);
