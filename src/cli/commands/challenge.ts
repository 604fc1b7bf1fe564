/**
 * `scepter challenge new`: mints one-time challenge passwords (src/ra/one-time-challenge.ts)
 * for devices or an MDM. Only a keyed hash of each is stored (with its expiry); the values are
 * printed once. Works while the server runs (same data directory and store).
 */
import { cliActor } from '../actor.js';
import {
  MAX_ONE_TIME_TTL_SECONDS,
  MIN_ONE_TIME_TTL_SECONDS,
  OneTimeChallenges,
} from '../../ra/one-time-challenge.js';
import { loadOrCreateChallengeKey } from '../../server/data-dir.js';
import {
  durationOpt,
  flag,
  formatDuration,
  intOpt,
  noExtra,
  parseOptions,
  UsageError,
  type Command,
} from '../command.js';
import { OPERATOR_OPTIONS, OPERATOR_USAGE, storeOptions, storeUrlOf, withStore } from './data-store.js';

const USAGE = `Usage: scepter challenge new --data DIR [options]

Mints one-time challenge passwords: each enrolls exactly one device (the certificate request's
challengePassword), until it expires. A resend of that device's request gets the same
certificate again; any other use is refused and logged as a possible compromise.

  --ttl DURATION    lifetime: 30s, 10m, 1h, 7d ... (default 1h; ${MIN_ONE_TIME_TTL_SECONDS}s to ${formatDuration(MAX_ONE_TIME_TTL_SECONDS)})
  --count N         how many (default 1, at most 10000)
  --json            {"expiresAt": "...", "challenges": ["...", ...]}

The data directory holds DIR/challenge-key (the server's key for one-time challenges).

${OPERATOR_USAGE}`;

export const challengeCommand: Command = {
  name: 'challenge',
  summary: 'mint one-time challenge passwords',
  usage: USAGE,
  async run(argv) {
    const p = parseOptions(
      argv,
      {
        ...OPERATOR_OPTIONS,
        ttl: { type: 'string' },
        count: { type: 'string' },
      },
      true,
    );
    const [sub, ...extra] = p.positionals;
    if (sub !== 'new')
      throw new UsageError(sub === undefined ? 'missing subcommand (new)' : `unknown subcommand '${sub}'`);
    noExtra(extra);
    const { data, db } = storeOptions(p);
    const ttlSeconds = durationOpt(p, 'ttl', 3600, MIN_ONE_TIME_TTL_SECONDS, MAX_ONE_TIME_TTL_SECONDS);
    const count = intOpt(p, 'count', 1, 1, 10_000);
    // Resolve the store first: a missing data directory or store fails before a key is created.
    const url = storeUrlOf(data, db);
    const { key, created, file } = loadOrCreateChallengeKey(data);
    if (created) {
      process.stderr.write(
        `created ${file}; a server already running on ${data} must be restarted to accept these challenges\n`,
      );
    }
    const minted = await withStore(data, url, (store) =>
      new OneTimeChallenges(key).mint(store, {
        ttlSeconds,
        count,
        meta: { source: 'cli' },
        actor: cliActor(),
      }),
    );
    const expiresAt = minted[0]!.expiresAt.toISOString();
    if (flag(p, 'json')) {
      process.stdout.write(JSON.stringify({ expiresAt, challenges: minted.map((c) => c.value) }) + '\n');
    } else {
      for (const c of minted) process.stdout.write(c.value + '\n');
      process.stderr.write(`${minted.length} one-time challenge(s), valid until ${expiresAt}\n`);
    }
    return 0;
  },
};
