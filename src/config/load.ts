/**
 * Loading a configuration file: YAML or JSON (the `yaml` parser reads both and keeps line
 * positions), validated against the one schema (src/config/schema.ts) by ajv, then the checks a
 * schema cannot express (src/config/checks.ts), then secrets resolved (`${ENV_NAME}`,
 * `file:/path`). Every problem names the file, the line and the key: `FILE:LINE key a.b.c: …`.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Ajv, type ErrorObject } from 'ajv';
import { isMap, isScalar, LineCounter, parseDocument, type Document } from 'yaml';
import { escapeText } from '../pkix/text.js';
import { semanticProblems } from './checks.js';
import { ConfigSchema, type ScepterConfig } from './schema.js';

/** One problem in a configuration. */
export interface ConfigProblem {
  /** The key path, dotted (`profiles.laptops.validity`); '' for the whole file. */
  key: string;
  message: string;
  /** 1-based line, when known. */
  line?: number;
}

/** A configuration that cannot be used; `message` lists every problem, one per line. */
export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: readonly ConfigProblem[],
  ) {
    super(problems.map((p) => formatProblem(file, p)).join('\n'));
    this.name = 'ConfigError';
  }
}

/** `FILE:LINE key a.b.c: message`. */
export function formatProblem(file: string, p: ConfigProblem): string {
  return `${file}${p.line !== undefined ? `:${p.line}` : ''}${p.key ? ` key ${p.key}` : ''}: ${p.message}`;
}

/** A loaded configuration and its version. */
export interface LoadedConfig {
  file: string;
  /** With secrets resolved. */
  config: ScepterConfig;
  /** SHA-256 (hex, first 16 digits) of the file's bytes: the configuration's version. */
  hash: string;
}

/** Where secrets come from (tests inject their own). */
export interface SecretSources {
  env?: NodeJS.ProcessEnv;
  readFile?: (path: string) => string;
}

/** Largest configuration file read, bytes. */
export const MAX_CONFIG_BYTES = 1024 * 1024;

const ajv = new Ajv({ allErrors: true, strict: false });
const validate = ajv.compile<ScepterConfig>(ConfigSchema);

/** The line of the node at `path` (or, for a missing key, of its parent), when the document has it. */
function lineOf(doc: Document, lc: LineCounter, path: readonly string[], key?: string): number | undefined {
  let node: unknown = doc.contents;
  let line: number | undefined;
  const lineAt = (n: unknown) => {
    const range = (n as { range?: [number, number, number] } | null)?.range;
    return range ? lc.linePos(range[0]).line : undefined;
  };
  line = lineAt(node);
  for (const seg of key !== undefined ? [...path, key] : path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === seg);
      if (!pair) break;
      line = lineAt(pair.key) ?? line;
      node = pair.value;
    } else if (node && typeof node === 'object' && 'items' in node && /^\d+$/.test(seg)) {
      node = (node as { items: unknown[] }).items[Number(seg)];
      line = lineAt(node) ?? line;
    } else break;
  }
  return line;
}

function ajvProblem(e: ErrorObject): { path: string[]; key?: string; message: string } {
  const path =
    e.instancePath === ''
      ? []
      : e.instancePath
          .slice(1)
          .split('/')
          .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (e.keyword === 'additionalProperties') {
    const extra = String((e.params as { additionalProperty: string }).additionalProperty);
    return { path, key: extra, message: 'unknown key' };
  }
  if (e.keyword === 'enum') {
    const allowed = (e.params as { allowedValues: unknown[] }).allowedValues;
    return { path, message: `must be one of ${allowed.map((v) => JSON.stringify(v)).join(', ')}` };
  }
  return { path, message: e.message ?? 'is not valid' };
}

/** Parses and validates a configuration text; throws ConfigError. */
export function parseConfig(text: string, file: string, sources: SecretSources = {}): LoadedConfig {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.slice(0, 20).map((e) => ({
        key: '',
        message: e.message.split('\n')[0]!,
        ...(e.linePos?.[0] ? { line: e.linePos[0].line } : {}),
      })),
    );
  }
  const value: unknown = doc.toJS({ maxAliasCount: 100 }) ?? {};
  const where = (path: readonly string[], message: string, key?: string): ConfigProblem => {
    const line = lineOf(doc, lc, path, key);
    return {
      key: [...path, ...(key !== undefined ? [key] : [])].join('.'),
      message,
      ...(line !== undefined ? { line } : {}),
    };
  };
  if (!validate(value)) {
    const problems = (validate.errors ?? []).slice(0, 20).map((e) => {
      const p = ajvProblem(e);
      return where(p.path, p.message, p.key);
    });
    throw new ConfigError(file, problems);
  }
  const config = value;
  const semantic = semanticProblems(config);
  if (semantic.length > 0)
    throw new ConfigError(
      file,
      semantic.map((p) => where(p.path, p.message)),
    );
  const secretProblems: ConfigProblem[] = [];
  const resolved = resolveSecrets(config, sources, (path, message) =>
    secretProblems.push(where(path, message)),
  );
  if (secretProblems.length > 0) throw new ConfigError(file, secretProblems);
  return {
    file,
    config: resolved,
    hash: createHash('sha256').update(text).digest('hex').slice(0, 16),
  };
}

/** Reads and validates a configuration file; throws ConfigError (an unreadable file included). */
export function loadConfigFile(file: string, sources: SecretSources = {}): LoadedConfig {
  let text: string;
  try {
    const buf = readFileSync(file);
    if (buf.length > MAX_CONFIG_BYTES) throw new Error(`larger than ${MAX_CONFIG_BYTES} bytes`);
    text = buf.toString('utf8');
  } catch (e) {
    throw new ConfigError(file, [
      { key: '', message: `cannot read the file: ${escapeText((e as Error).message)}` },
    ]);
  }
  return parseConfig(text, file, sources);
}

/** The key paths of the schema's secret fields (`*` for a record key or an array item). */
function secretPaths(): string[][] {
  const out: string[][] = [];
  const walk = (s: Record<string, unknown>, path: string[]) => {
    if (s.secret === true) out.push(path);
    const props = s.properties as Record<string, Record<string, unknown>> | undefined;
    if (props) for (const [k, v] of Object.entries(props)) walk(v, [...path, k]);
    const pattern = s.patternProperties as Record<string, Record<string, unknown>> | undefined;
    if (pattern) for (const v of Object.values(pattern)) walk(v, [...path, '*']);
    const items = s.items as Record<string, unknown> | undefined;
    if (items && !Array.isArray(items)) walk(items, [...path, '*']);
  };
  walk(ConfigSchema as unknown as Record<string, unknown>, []);
  return out;
}

export const SECRET_PATHS: readonly (readonly string[])[] = secretPaths();

/** Calls `fn` on every value at a path with `*` wildcards; `fn` returns the replacement. */
function mapAt(
  root: unknown,
  path: readonly string[],
  fn: (v: string, at: string[]) => string,
  at: string[] = [],
): void {
  if (root === null || typeof root !== 'object') return;
  const [head, ...rest] = path;
  if (head === undefined) return;
  const rec = root as Record<string, unknown>;
  const keys = head === '*' ? Object.keys(rec) : head in rec ? [head] : [];
  for (const k of keys) {
    if (rest.length === 0) {
      if (typeof rec[k] === 'string') rec[k] = fn(rec[k], [...at, k]);
    } else mapAt(rec[k], rest, fn, [...at, k]);
  }
}

/** Resolves `${ENV_NAME}` and `file:/path` in secret fields (a copy); problems → ConfigError. */
function resolveSecrets(
  config: ScepterConfig,
  sources: SecretSources,
  problem: (path: string[], message: string) => void,
): ScepterConfig {
  const env = sources.env ?? process.env;
  const read = sources.readFile ?? ((p: string) => readFileSync(p, 'utf8'));
  const copy = structuredClone(config);
  for (const path of SECRET_PATHS) {
    mapAt(copy, path, (v, at) => {
      const envRef = /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(v);
      if (envRef) {
        const got = env[envRef[1]!];
        if (got === undefined || got === '') {
          problem(at, `the environment variable ${envRef[1]} is not set`);
          return v;
        }
        return got;
      }
      if (v.startsWith('file:')) {
        try {
          const text = read(v.slice(5)).split(/\r?\n/)[0]!.trim();
          if (text === '') throw new Error('the file is empty');
          return text;
        } catch (e) {
          problem(
            at,
            `cannot read the secret file ${escapeText(v.slice(5))}: ${escapeText((e as Error).message)}`,
          );
          return v;
        }
      }
      return v;
    });
  }
  return copy;
}

/** A copy with every secret field replaced by `********` (`scepter config print`). */
export function maskSecrets(config: ScepterConfig): ScepterConfig {
  const copy = structuredClone(config);
  for (const path of SECRET_PATHS) mapAt(copy, path, () => '********');
  return copy;
}

/**
 * Validates a configuration object built in code (the `serve` flags: src/config/flags.ts) with
 * the same schema and checks as a file; throws ConfigError naming `source` and the key paths.
 */
export function validateConfig(value: unknown, source: string): ScepterConfig {
  if (!validate(value)) {
    throw new ConfigError(
      source,
      (validate.errors ?? []).slice(0, 20).map((e) => {
        const p = ajvProblem(e);
        return { key: [...p.path, ...(p.key !== undefined ? [p.key] : [])].join('.'), message: p.message };
      }),
    );
  }
  const semantic = semanticProblems(value);
  if (semantic.length > 0)
    throw new ConfigError(
      source,
      semantic.map((p) => ({ key: p.path.join('.'), message: p.message })),
    );
  return value;
}
