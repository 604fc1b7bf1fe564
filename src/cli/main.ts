#!/usr/bin/env node
/**
 * `scepter` command-line entry point. Each command lives in `src/cli/commands/<name>.ts` and
 * exports a `Command`; this file only dispatches. Commands return an exit code and print
 * one-line reasons on failure (never a stack trace for a user error).
 */
import { commands } from './commands/index.js';
import { UsageError } from './command.js';

function help(): string {
  const lines = [
    'scepter — SCEP (RFC 8894) server, CA, client and operator tools',
    '',
    'Usage: scepter <command> [options]',
    '',
    'Commands:',
  ];
  for (const c of commands) lines.push(`  ${c.name.padEnd(12)} ${c.summary}`);
  lines.push('', 'Run `scepter <command> --help` for the options of one command.');
  return lines.join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(help() + '\n');
    return 0;
  }
  if (name === '--version' || name === '-v') {
    const { readFileSync } = await import('node:fs');
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    process.stdout.write(pkg.version + '\n');
    return 0;
  }
  const cmd = commands.find((c) => c.name === name);
  if (!cmd) {
    process.stderr.write(`scepter: unknown command '${name}'\n\n${help()}\n`);
    return 2;
  }
  // `scepter cmd --help` is answered here; `scepter cmd sub --help` goes to the command,
  // which knows its subcommands.
  const wantsHelp = rest.includes('--help') || rest.includes('-h');
  if (wantsHelp && (rest.length === 0 || rest[0]!.startsWith('-'))) {
    process.stdout.write(cmd.usage + '\n');
    return 0;
  }
  try {
    return await cmd.run(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`scepter ${name}: ${e.message}\n\n${cmd.usage}\n`);
      return 2;
    }
    const msg = e instanceof Error ? e.message : String(e);
    process.stderr.write(`scepter ${name}: ${msg}\n`);
    if (process.env.SCEPTER_DEBUG) console.error(e);
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`scepter: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  },
);
