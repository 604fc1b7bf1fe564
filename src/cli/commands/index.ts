import type { Command } from '../command.js';
import { caCommand } from './ca.js';
import { inspectCommand } from './inspect.js';
import { serveCommand } from './serve.js';
import { configCommand } from './config.js';
import { clientCommands } from './client.js';
import { agentCommand } from './agent.js';
import { certsCommand } from './certs.js';
import { pendingCommand } from './pending.js';
import { challengeCommand } from './challenge.js';
import { revokeCommand } from './revoke.js';
import { auditCommand } from './audit.js';
import { mobileconfigCommand } from './mobileconfig.js';

/** Every CLI command, in the order `scepter --help` lists them. Add one line per command. */
export const commands: Command[] = [
  serveCommand,
  configCommand,
  caCommand,
  pendingCommand,
  challengeCommand,
  revokeCommand,
  auditCommand,
  certsCommand,
  inspectCommand,
  ...clientCommands,
  agentCommand,
  mobileconfigCommand,
];
