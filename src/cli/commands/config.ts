/**
 * `scepter config check|print|reload`: validate a configuration file without serving, show the
 * effective configuration with secrets masked, and make a running `serve --config` reload its
 * file (SIGHUP to the pid in DIR/scepter.pid).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { DEFAULT_PROFILE, profilePath } from '../../config/checks.js';
import { ConfigError, loadConfigFile, maskSecrets } from '../../config/load.js';
import type { ScepterConfig } from '../../config/schema.js';
import { escapeText } from '../../pkix/text.js';
import { parseOptions, req, UsageError, type Command } from '../command.js';
import { PID_FILE, reportConfigError } from './serve-config.js';

const USAGE = `Usage: scepter config <subcommand>

  check FILE                validate FILE (YAML or JSON) without serving: exit 0 when it is
                            valid, else 1 with one line per problem (FILE:LINE key a.b.c: …)
  print --config FILE       the effective configuration (defaults of paths, CAs and the
                            default profile filled in) as YAML, every secret masked
  reload --data DIR         make the server running on DIR (\`scepter serve --config\`) reload
                            its file: sends SIGHUP to the pid in DIR/${PID_FILE}. A file that
                            fails validation is refused (logged) and the old one keeps serving;
                            /readyz and the metric scepter_config_info show the version loaded

Secrets in the file may be written \${ENV_NAME} or file:/path (docs/configuration.md).`;

/** Loads FILE, printing its problems; undefined when it is not valid. */
function loadOrReport(file: string): ReturnType<typeof loadConfigFile> | undefined {
  try {
    return loadConfigFile(file);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    reportConfigError(e, (s) => process.stderr.write(s + '\n'));
    return undefined;
  }
}

/** The configuration with the defaults `serve` applies to profiles made explicit. */
function effective(c: ScepterConfig): ScepterConfig {
  const out = structuredClone(c);
  for (const [name, p] of Object.entries(out.profiles ?? {})) {
    p.path = profilePath(name, p);
    p.ca ??= 'default';
    p.challenge = { mode: 'static', ...p.challenge };
    p.approval = { mode: 'auto', ...p.approval };
  }
  if (out.defaultProfile === undefined && out.profiles?.[DEFAULT_PROFILE])
    out.defaultProfile = DEFAULT_PROFILE;
  return out;
}

export const configCommand: Command = {
  name: 'config',
  summary: 'check, print or reload a configuration file',
  usage: USAGE,
  async run(argv) {
    const [sub, ...rest] = argv;
    const out = (s: string) => process.stdout.write(s + '\n');
    switch (sub) {
      case 'check': {
        const p = parseOptions(rest, {}, true);
        const file = p.positionals[0];
        if (file === undefined || p.positionals.length > 1) throw new UsageError('give one FILE');
        const loaded = loadOrReport(file);
        if (!loaded) return 1;
        const names = Object.entries(loaded.config.profiles ?? {}).map(
          ([n, pr]) => `${n} (${profilePath(n, pr)})`,
        );
        out(`${escapeText(file)}: valid; version ${loaded.hash}; profiles: ${names.join(', ') || 'none'}`);
        return 0;
      }
      case 'print': {
        const p = parseOptions(rest, { config: { type: 'string' } });
        const loaded = loadOrReport(req(p, 'config'));
        if (!loaded) return 1;
        out(`# ${escapeText(loaded.file)} version ${loaded.hash} (secrets masked)`);
        process.stdout.write(stringify(maskSecrets(effective(loaded.config))));
        return 0;
      }
      case 'reload': {
        const p = parseOptions(rest, { data: { type: 'string' } });
        const file = join(req(p, 'data'), PID_FILE);
        let pid: number;
        try {
          pid = Number(readFileSync(file, 'utf8').trim());
        } catch {
          throw new Error(`no ${file}: is \`scepter serve --config\` running on this data directory?`);
        }
        if (!Number.isSafeInteger(pid) || pid <= 1) throw new Error(`${file} does not hold a process id`);
        try {
          process.kill(pid, 'SIGHUP');
        } catch (e) {
          throw new Error(
            `cannot signal process ${pid} (${(e as NodeJS.ErrnoException).code ?? 'error'}): is the server still running?`,
          );
        }
        out(
          `sent SIGHUP to the server (pid ${pid}); the server log says whether the reload was accepted, /readyz shows the version`,
        );
        return 0;
      }
      default:
        throw new UsageError(sub === undefined ? 'give a subcommand' : `unknown subcommand '${sub}'`);
    }
  },
};
