/** Shared start-up step of every entry point: validate the environment or exit listing every problem. */
import { loadConfig, type Config } from '../config/config.js';

export function loadConfigOrExit(env: NodeJS.ProcessEnv = process.env): Config {
  const result = loadConfig(env);
  if (!result.ok) {
    process.stderr.write(`configuration has ${result.error.length} problem(s):\n${result.error.map((p) => `  - ${p}`).join('\n')}\n`);
    process.exit(2);
  }
  return result.value;
}
