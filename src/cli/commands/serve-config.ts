/**
 * `scepter serve --config FILE`: the server from a configuration file (docs/configuration.md),
 * reloaded on SIGHUP (`scepter config reload --data DIR` sends it, finding the process through
 * the pid file DIR/scepter.pid). A reload that fails validation, or that changes what only a
 * restart applies, is refused with a logged error and the running configuration keeps serving.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, loadConfigFile, type LoadedConfig } from '../../config/load.js';
import { restartOnly, serverOptions, profileSet } from '../../config/runtime.js';
import { recordConfigReload } from '../../ra/audit.js';
import { startServer, type RunningServer } from '../../server/index.js';
import { escapeText } from '../../pkix/text.js';
import { UsageError } from '../command.js';
import { recordStoreUrl, STORE_FILE } from './data-store.js';

/** The pid file of a running server inside its data directory. */
export const PID_FILE = 'scepter.pid';

/** Flags `serve --config` accepts besides --config and --data; they override the file. */
export const CONFIG_OVERRIDES = ['host', 'port', 'log-level', 'log-format'] as const;

/** Prints a ConfigError one problem per line (each escaped), for `serve` and `config check`. */
export function reportConfigError(e: ConfigError, write: (s: string) => void): void {
  for (const line of e.message.split('\n')) write(escapeText(line));
}

/** Loads FILE or throws a ConfigError. */
function load(file: string): LoadedConfig {
  return loadConfigFile(file);
}

export interface ConfigServeOptions {
  file: string;
  dataDir: string;
  overrides: { host?: string; port?: number; logLevel?: string; logFormat?: string };
}

/** Writes DIR/scepter.pid (mode 0644: the pid is no secret); returns a remover. */
function writePidFile(dataDir: string): () => void {
  const file = join(dataDir, PID_FILE);
  writeFileSync(file, `${process.pid}\n`);
  return () => rmSync(file, { force: true });
}

/** Reloads `file` into `server` (SIGHUP). Never throws: the outcome is logged. */
export async function reloadFromFile(
  server: RunningServer,
  file: string,
  running: { config: unknown },
): Promise<void> {
  const log = server.app.log;
  let next: LoadedConfig;
  try {
    next = load(file);
  } catch (e) {
    server.reloadFailed();
    log.error(
      { problems: e instanceof ConfigError ? e.message.split('\n') : [(e as Error).message] },
      'configuration reload refused: the file is not valid; the running configuration keeps serving',
    );
    return;
  }
  if (JSON.stringify(restartOnly(next.config)) !== JSON.stringify(running.config)) {
    server.reloadFailed();
    log.error(
      { file },
      'configuration reload refused: server, store, caPassphrase, cas or throttle changed, which only a restart applies; the running configuration keeps serving',
    );
    return;
  }
  try {
    const set = profileSet(next.config);
    const v = await server.reload(set, next.hash);
    log.info({ version: v.id, loads: v.loads }, 'configuration reloaded');
    // The audit trail: who (a signal: `system`) and what runs now (names, never secret values).
    const store = server.enrollment?.store;
    if (store)
      await recordConfigReload(store, 'system', {
        version: v.id,
        loads: v.loads,
        profiles: set.profiles.map((p) => p.name).join(','),
      }).catch((e: unknown) =>
        log.error({ err: e }, 'recording the configuration reload in the audit trail failed'),
      );
  } catch (e) {
    log.error({ err: e }, 'configuration reload failed; the running configuration keeps serving');
  }
}

/** Runs the server from a configuration file until SIGINT/SIGTERM. */
export async function serveFromConfig(
  o: ConfigServeOptions,
  stopped: Promise<NodeJS.Signals>,
): Promise<number> {
  // The banner goes to stderr: stdout carries the log lines only (JSON or text).
  const out = (s: string) => process.stderr.write(s + '\n');
  let loaded: LoadedConfig;
  try {
    loaded = load(o.file);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    reportConfigError(e, (s) => process.stderr.write(s + '\n'));
    return 1;
  }
  const so = serverOptions(loaded.config, o.dataDir, loaded.hash);
  if (o.overrides.host !== undefined) so.host = o.overrides.host;
  if (o.overrides.port !== undefined) so.port = o.overrides.port;
  if (o.overrides.logLevel !== undefined)
    so.logLevel = o.overrides.logLevel as NonNullable<typeof so.logLevel>;
  if (o.overrides.logFormat !== undefined)
    so.logFormat = o.overrides.logFormat as NonNullable<typeof so.logFormat>;
  const server = await startServer(so);
  const removePid = writePidFile(o.dataDir);
  const d = server.dataDir!;
  try {
    recordStoreUrl(o.dataDir, d.storeUrl);
  } catch (e) {
    out(`warning: cannot record the store URL in ${o.dataDir}/${STORE_FILE}: ${(e as Error).message}`);
  }
  const running = { config: restartOnly(loaded.config) };
  out(`${d.createdCa ? 'created a new CA in' : 'CA loaded from'} ${d.loaded.paths.dir}`);
  for (const name of server.createdCas ?? []) out(`created CA ${name} in ${join(o.dataDir, 'cas', name)}`);
  if (d.challenge.source === 'created') {
    out(`generated challenge password (shown only now; kept in ${d.challenge.file}):`);
    out(`  ${d.challenge.value}`);
  }
  const set = so.profiles!;
  for (const p of set.profiles)
    out(
      `profile ${p.name}: ${server.origin}${p.path} (CA ${p.ca ?? 'default'}, challenge ${p.challenge?.mode ?? 'static'}, approval ${p.lifecycle?.approval?.mode ?? 'auto'})`,
    );
  out(
    set.defaultProfile !== undefined
      ? `every other path: profile ${set.defaultProfile}`
      : 'every other path: 404 (no default profile)',
  );
  out(
    `configuration ${o.file} version ${loaded.hash}; reload: kill -HUP ${process.pid} or \`scepter config reload --data ${o.dataDir}\``,
  );
  out(`SCEP server listening on ${server.url}`);

  // Reloads run one after another; a signal during one queues the next.
  let chain = Promise.resolve();
  const onHup = () => {
    chain = chain.then(() => reloadFromFile(server, o.file, running));
  };
  process.on('SIGHUP', onHup);
  const signal = await stopped;
  process.off('SIGHUP', onHup);
  out(`${signal}: finishing in-flight requests and shutting down`);
  await chain;
  await server.close();
  removePid();
  out('stopped');
  return 0;
}

/** Refuses flags that the configuration file sets (one source of truth per value). */
export function refuseMixedFlags(given: readonly string[]): void {
  const allowed = new Set<string>(['config', 'data', ...CONFIG_OVERRIDES]);
  const extra = given.filter((g) => !allowed.has(g));
  if (extra.length > 0)
    throw new UsageError(
      `with --config only --data, --host, --port, --log-level and --log-format may be given (set the others in the file): --${extra.join(', --')}`,
    );
}
