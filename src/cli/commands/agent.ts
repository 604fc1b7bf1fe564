/**
 * `scepter agent --config FILE [--once]`: keeps the configured certificates enrolled and
 * renews each when its share of lifetime has passed (see src/client/agent.ts and
 * docs/client.md for the config format and the on-disk layout).
 */
import { Agent, AgentConfigError, loadAgentConfig, type AgentOutcome } from '../../client/agent.js';
import { flag, parseOptions, req, UsageError, type Command } from '../command.js';
import { EXIT, say, warn } from './client-common.js';
import { escapeJsonText } from '../../pkix/text.js';

/** One line per outcome; `once`: no next check is announced, since the agent exits after the pass. */
function line(o: AgentOutcome, once: boolean): string {
  const next = once
    ? o.action === 'error'
      ? 'not retried (--once)'
      : 'done (--once)'
    : `next check ${o.nextCheck.toISOString()}`;
  switch (o.action) {
    case 'error':
      return `${o.name}: error (${o.errorKind ?? 'Error'}): ${o.error ?? ''}; ${next}`;
    case 'valid':
      return `${o.name}: certificate ${o.serial ?? '?'} is valid until ${o.notAfter?.toISOString() ?? '?'}; ${next}`;
    default:
      return `${o.name}: ${o.action} certificate ${o.serial ?? '?'}, valid until ${o.notAfter?.toISOString() ?? '?'}${
        o.insecureCipher ? ' (server answered in single DES: insecure)' : ''
      }${o.hookExitCode !== undefined ? `; hook exit ${o.hookExitCode ?? 'signal'}` : ''}; ${next}`;
  }
}

export const agentCommand: Command = {
  name: 'agent',
  summary: 'keep certificates enrolled and renewed (certmonger-style), from a JSON config',
  usage: `Usage: scepter agent --config FILE [--once] [--json]

Keeps every certificate in the config enrolled and renews it when its share of lifetime
(renewAt, default 0.66) has passed. Key and certificate go live together (a new generation
directory and one atomic symlink swap); an optional hook runs after each new certificate.

  --config FILE           JSON config (see docs/client.md)
  --once                  one pass over all certificates, then exit (cron, tests):
                          exit 0 when all are valid, 1 when any failed
  --json                  one JSON object per event line

Runs until SIGINT/SIGTERM otherwise.`,
  async run(argv) {
    const p = parseOptions(argv, {
      config: { type: 'string' },
      once: { type: 'boolean' },
      json: { type: 'boolean' },
    });
    const json = flag(p, 'json');
    let cfg;
    try {
      cfg = loadAgentConfig(req(p, 'config'));
    } catch (e) {
      if (e instanceof AgentConfigError) throw new UsageError(e.message);
      throw e;
    }
    const once = flag(p, 'once');
    const agent = new Agent(cfg, {
      log: (l) => (json ? printJsonLine({ event: 'log', message: l }) : warn(l)),
      // --json keeps nextCheck (when a running agent would look again); the text of --once
      // does not announce it, since the process exits after the pass.
      outcome: (o) => (json ? printJsonLine({ event: 'outcome', ...o }) : say(line(o, once))),
    });
    if (once) {
      const outcomes = await agent.runOnce();
      return outcomes.some((o) => o.action === 'error') ? EXIT.other : EXIT.ok;
    }
    const ac = new AbortController();
    const stop = () => ac.abort();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    try {
      await agent.run(ac.signal);
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }
    return EXIT.ok;
  },
};

function printJsonLine(v: Record<string, unknown>): void {
  process.stdout.write(
    escapeJsonText(JSON.stringify(v, (_k, val: unknown) => (val instanceof Date ? val.toISOString() : val))) +
      '\n',
  );
}
