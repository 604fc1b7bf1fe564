import type { Command } from '../command.js';
import { caCommand } from './ca.js';
import { inspectCommand } from './inspect.js';

/** Every CLI command, in the order `scepter --help` lists them. Add one line per command. */
export const commands: Command[] = [caCommand, inspectCommand];
