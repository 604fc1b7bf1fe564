/**
 * Import rules of docs/architecture.md, checked by `npm run lint` (`depcruise src`):
 * no import cycles (type-only imports count), and every layer imports only the layers below it:
 *
 *   cli → config → server → ra → ca, store → scep → cms → pkix → crypto → asn1;  client → scep (and below)
 *
 * One sideways edge: src/ca/crl.ts (CRL publishing) and src/ca/ocsp-*.ts (the OCSP responder)
 * read revocations, CRL numbers and certificate status through the Store interface.
 * src/index.ts (the public API) may re-export any layer.
 */
'use strict';

/** The files of src/ca/ that may read the store (the sideways edge). */
const STORE_READERS = '^src/ca/(crl|ocsp-responder|ocsp-signer)\\.ts$';

/** Each layer and the layers it may import (besides itself). */
const LAYERS = {
  asn1: [],
  crypto: ['asn1'],
  pkix: ['crypto', 'asn1'],
  cms: ['pkix', 'crypto', 'asn1'],
  scep: ['cms', 'pkix', 'crypto', 'asn1'],
  store: ['scep', 'cms', 'pkix', 'crypto', 'asn1'],
  ca: ['scep', 'cms', 'pkix', 'crypto', 'asn1'],
  client: ['scep', 'cms', 'pkix', 'crypto', 'asn1'],
  ra: ['ca', 'store', 'scep', 'cms', 'pkix', 'crypto', 'asn1'],
  server: ['ra', 'ca', 'store', 'scep', 'cms', 'pkix', 'crypto', 'asn1'],
  config: ['server', 'ra', 'ca', 'store', 'scep', 'cms', 'pkix', 'crypto', 'asn1'],
  cli: ['config', 'server', 'ra', 'ca', 'store', 'client', 'scep', 'cms', 'pkix', 'crypto', 'asn1'],
};

const layerRules = Object.entries(LAYERS).map(([layer, allowed]) => ({
  name: `layer-${layer}`,
  comment: `src/${layer}/ may import only ${allowed.length ? allowed.join(', ') : 'nothing else in src'} (docs/architecture.md)`,
  severity: 'error',
  from: { path: `^src/${layer}/`, ...(layer === 'ca' ? { pathNot: STORE_READERS } : {}) },
  to: { path: '^src/', pathNot: `^src/(${[layer, ...allowed].join('|')})/` },
}));

/** The documented sideways edge: CRL publishing and OCSP read the store (its interface only). */
const crlRule = {
  name: 'layer-ca-crl',
  comment:
    'src/ca/crl.ts and src/ca/ocsp-*.ts may import the store, besides what src/ca/ may import (docs/architecture.md)',
  severity: 'error',
  from: { path: STORE_READERS },
  to: { path: '^src/', pathNot: `^src/(${['ca', 'store', ...LAYERS.ca].join('|')})/` },
};

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'An import cycle: move the shared piece to the module it belongs to.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    ...layerRules,
    crlRule,
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
