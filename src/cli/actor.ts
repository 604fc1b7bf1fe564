/**
 * The audit trail's actor for operator commands run from the CLI: `cli:<os user>` (the user
 * name as the operating system reports it, anything but printable ASCII replaced by `?`).
 */
import { userInfo } from 'node:os';

export function cliActor(): string {
  let user: string;
  try {
    user = userInfo().username;
  } catch {
    const uid = typeof process.getuid === 'function' ? process.getuid() : undefined;
    user = process.env.USER ?? (uid !== undefined ? `uid ${uid}` : 'unknown');
  }
  return `cli:${user.replace(/[^\x21-\x7e]/g, '?').slice(0, 64) || 'unknown'}`;
}
