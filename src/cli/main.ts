#!/usr/bin/env node
/**
 * `scepter` command-line entry point. Each command lives in `src/cli/commands/<name>.ts` and
 * exports a `Command`; this file only dispatches. Commands return an exit code and print
 * one-line reasons on failure (never a stack trace for a user error).
 *
 * Exit codes: 0 success, 1 failure (not found, wrong state, I/O, server trouble), 2 usage error.
 * `--help`/`-h` anywhere (before `--`), `scepter help CMD` and `scepter CMD SUB --help` print the
 * command's help; a usage error prints one line and a hint to run `--help`.
 */
import { commands } from './commands/index.js';
import { UsageError } from './command.js';
import { escapeText } from '../pkix/text.js';

function help(): string {
  const lines = [
    'scepter — SCEP (RFC 8894) server, CA, client and operator tools',
    '',
    'Usage: scepter <command> [options]',
    '',
    'Commands:',
  ];
  for (const c of commands) lines.push(`  ${c.name.padEnd(12)} ${c.summary}`);
  lines.push(
    '',
    'Run `scepter <command> --help` (or `scepter help <command>`) for the options of one command.',
  );
  return lines.join('\n');
}

/** True when `--help` or `-h` appears as an option (not after `--`). */
function wantsHelp(args: readonly string[]): boolean {
  for (const a of args) {
    if (a === '--') return false;
    if (a === '--help' || a === '-h') return true;
  }
  return false;
}

async function main(argv: string[]): Promise<number> {
  const [first, ...after] = argv;
  if (!first || first === '--help' || first === '-h') {
    process.stdout.write(help() + '\n');
    return 0;
  }
  if (first === '--version' || first === '-v') {
    const { readFileSync } = await import('node:fs');
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    process.stdout.write(pkg.version + '\n');
    return 0;
  }
  let name = first;
  let rest = after;
  let helpOnly = false;
  if (first === 'help') {
    if (after.length === 0) {
      process.stdout.write(help() + '\n');
      return 0;
    }
    name = after[0]!;
    rest = after.slice(1);
    helpOnly = true;
  }
  const cmd = commands.find((c) => c.name === name);
  if (!cmd) {
    process.stderr.write(
      `scepter: unknown command '${escapeText(name)}'\nrun 'scepter --help' for the list\n`,
    );
    return 2;
  }
  if (helpOnly || wantsHelp(rest)) {
    const sub = rest[0] !== undefined && !rest[0].startsWith('-') ? cmd.helpFor?.(rest[0]) : undefined;
    process.stdout.write((sub ?? cmd.usage) + '\n');
    return 0;
  }
  try {
    return await cmd.run(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(
        `scepter ${name}: ${escapeText(e.message)}\nrun 'scepter ${name} --help' for usage\n`,
      );
      return 2;
    }
    const msg = e instanceof Error ? e.message : String(e);
    process.stderr.write(`scepter ${name}: ${escapeText(msg)}\n`);
    if (process.env.SCEPTER_DEBUG) console.error(e);
    return 1;
  }
}

// A reader that stops early (`scepter getca … | head -1`) closes the pipe: that is not an error
// of ours, so exit quietly instead of dying on an unhandled EPIPE with a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`scepter: ${escapeText(e instanceof Error ? e.message : String(e))}\n`);
    process.exitCode = 1;
  },
);
