/**
 * How much of an enrollment V8 promotes to the old generation: what fills it between full
 * (Mark-Compact) collections, whose pauses are the tail of `npm run bench` (docs/benchmarks.md,
 * issue #15, third and fourth rounds). Enrollments run through the enrollment service (no
 * HTTP: RSA-2048 CA, challenge, in-memory SQLite) in a closed loop of C at a time, on requests
 * prepared before the measured window; every reply must be a SUCCESS. The loop runs in a child
 * node with `--trace-gc-nvp`, and this process sums the collections inside the window.
 *
 * `--decode` runs only decodePkiRequest (signature check included) on the same requests.
 *
 *   node --import tsx bench/promotion.ts [-n 3000] [-c 1,16] [--keys 512] [--decode]
 *
 * "Native handles promoted": node objects backed by native memory (KeyObjects, ciphers, …)
 * whose wrappers reached the old generation; each costs a weak callback in a Mark-Compact's pause.
 *
 * Bytes promoted per enrollment are a count, not a time: they do not depend on the machine's
 * speed, so two checkouts can be compared run against run.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    n: { type: 'string', short: 'n', default: '3000' },
    c: { type: 'string', short: 'c', default: '1,16' },
    decode: { type: 'boolean', default: false },
    /** Distinct device keys (a fleet: every enrollment a new key; the pool has 64, more are generated). */
    keys: { type: 'string', default: '512' },
    child: { type: 'boolean', default: false },
  },
});
const N = Number(args.n);

if (args.child) await child();
else parent();

function parent(): void {
  const what = args.decode ? 'decodePkiRequest' : 'enrollment (pkiOperation)';
  console.log(`${what}, n=${N}, ${args.keys} device keys, node ${process.version}`);
  console.log('');
  console.log(
    '| C | scavenges | Mark-Compacts | promoted per request | native handles promoted per request | allocated per request | survivors per scavenge |',
  );
  console.log('|---:|---:|---:|---:|---:|---:|---:|');
  for (const c of String(args.c).split(',').map(Number)) {
    const r = spawnSync(
      process.execPath,
      [
        '--expose-gc',
        '--trace-gc-nvp',
        '--import',
        'tsx',
        fileURLToPath(import.meta.url),
        '--child',
        '-n',
        String(N),
        '-c',
        String(c),
        '--keys',
        String(args.keys),
        ...(args.decode ? ['--decode'] : []),
      ],
      { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 },
    );
    if (r.status !== 0) throw new Error(`child failed (${r.status}):\n${r.stderr}`);
    const s = summarize(r.stdout);
    console.log(
      `| ${c} | ${s.scavenges} | ${s.markCompacts} | ${s.promotedPerRequest} B | ${s.handlesPerRequest} | ${s.allocatedPerRequest} B | ${s.survivorsPerScavenge} KB |`,
    );
  }
}

/** The collections between the child's START and END lines (nvp lines: `key=value` pairs). */
function summarize(out: string): Record<string, number> {
  let inside = false;
  let requests = 0;
  let scavenges = 0;
  let markCompacts = 0;
  let promoted = 0;
  let allocated = 0;
  let survived = 0;
  let handles = 0;
  for (const line of out.split('\n')) {
    if (line.startsWith('START')) inside = true;
    else if (line.startsWith('END ')) {
      inside = false;
      requests = Number(line.slice(4));
    } else if (inside && line.includes(' gc=')) {
      const kv = new Map([...line.matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1]!, m[2]!]));
      if (kv.get('gc') === 's') {
        scavenges++;
        promoted += Number(kv.get('promoted') ?? 0);
        allocated += Number(kv.get('allocated') ?? 0);
        survived += Number(kv.get('new_space_survived') ?? 0);
        handles += Number(kv.get('nodes_promoted') ?? 0);
      } else markCompacts++;
    }
  }
  if (requests !== N) throw new Error(`the child finished ${requests} of ${N} requests`);
  return {
    scavenges,
    markCompacts,
    promotedPerRequest: Math.round(promoted / N),
    allocatedPerRequest: Math.round(allocated / N),
    survivorsPerScavenge: Math.round(survived / Math.max(1, scavenges) / 1000),
    handlesPerRequest: Math.round((handles / N) * 100) / 100,
  };
}

async function child(): Promise<void> {
  const { parseCertificate } = await import('../src/pkix/certificate.js');
  const { buildRootCertificate } = await import('../src/ca/keystore.js');
  const { CertificateAuthority } = await import('../src/ca/issuer.js');
  const { composeEnrollment } = await import('../src/server/compose.js');
  const { openStore } = await import('../src/store/index.js');
  const { decodePkiRequest } = await import('../src/scep/request.js');
  const { makeEnrollment } = await import('../test/helpers/enrollment.js');
  const { pooledRsaKey } = await import('../test/helpers/pki.js');
  const C = Number(args.c);
  const caKey = pooledRsaKey(40);
  const caDer = buildRootCertificate(caKey, 'CN=bench promotion CA', 30);
  const caCert = parseCertificate(caDer);
  const store = await openStore(':memory:');
  const ca = new CertificateAuthority({ cert: parseCertificate(caDer), key: caKey, chain: [] });
  const service = composeEnrollment({ ca, store, config: { challenges: ['bench'] } });
  const keys = Array.from({ length: 64 }, (_, i) => pooledRsaKey(i));
  const requests: Array<Buffer | undefined> = [];
  for (let i = 0; i < N; i++)
    requests.push(
      makeEnrollment({ key: keys[i % 64]!, recipient: caCert, challenge: 'bench', cn: `p-${i}` }).der,
    );
  // What was prepared goes to the old generation now, not during the window.
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
  const ctx = { remoteAddress: '192.0.2.1' };
  let done = 0;
  let next = 0;
  console.log('START');
  const loop = async (): Promise<void> => {
    while (next < N) {
      const i = next++;
      const der = requests[i]!;
      requests[i] = undefined;
      if (args.decode) {
        if (decodePkiRequest(der).transactionId) done++;
        if (i % 16 === 0) await new Promise<void>((r) => setImmediate(r));
      } else if ((await service.pkiOperation(der, ctx)).log.outcome === 'SUCCESS') done++;
    }
  };
  await Promise.all(Array.from({ length: args.decode ? 1 : C }, loop));
  console.log(`END ${done}`);
  await store.close();
}
