/**
 * docs/configuration.md documents every key of the configuration schema (src/config/schema.ts)
 * and nothing else: the schema is walked (records as NAME, list items as []) and compared with
 * the first column of the key tables.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ConfigSchema } from '../../src/config/schema.js';

interface SchemaNode {
  properties?: Record<string, SchemaNode>;
  patternProperties?: Record<string, SchemaNode>;
  items?: SchemaNode;
}

function schemaKeys(s: SchemaNode, path = '', out = new Set<string>()): Set<string> {
  if (path) out.add(path);
  for (const [k, v] of Object.entries(s.properties ?? {})) schemaKeys(v, path ? `${path}.${k}` : k, out);
  for (const v of Object.values(s.patternProperties ?? {})) schemaKeys(v, `${path}.NAME`, out);
  if (s.items?.properties) schemaKeys(s.items, `${path}[]`, out);
  return out;
}

function documentedKeys(md: string): Set<string> {
  const out = new Set<string>();
  for (const m of md.matchAll(/^\| `([^`]+)` \|/gm)) out.add(m[1]!);
  return out;
}

test('docs/configuration.md documents every configuration key, and only those', () => {
  const schema = schemaKeys(ConfigSchema as unknown as SchemaNode);
  const docs = documentedKeys(readFileSync('docs/configuration.md', 'utf8'));
  assert.ok(schema.size > 80, `the walk found ${schema.size} keys`);
  const undocumented = [...schema].filter((k) => !docs.has(k));
  const unknown = [...docs].filter((k) => !schema.has(k));
  assert.deepEqual(undocumented, [], 'keys in the schema but not in docs/configuration.md');
  assert.deepEqual(unknown, [], 'keys in docs/configuration.md that the schema does not have');
});
