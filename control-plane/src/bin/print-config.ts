/** Print the effective configuration with every secret redacted, and whether it is valid. */
import { loadConfig, redactedConfig } from '../config/config.js';

const result = loadConfig(process.env);
const width = Math.max(...Object.keys(redactedConfig(process.env)).map((k) => k.length));
for (const [name, value] of Object.entries(redactedConfig(process.env))) {
  process.stdout.write(`${name.padEnd(width)}  ${value}\n`);
}
if (!result.ok) {
  process.stdout.write(`\nINVALID (${result.error.length} problem(s)):\n${result.error.map((p) => `  - ${p}`).join('\n')}\n`);
  process.exit(2);
}
process.stdout.write('\nvalid\n');
