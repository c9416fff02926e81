/** Apply pending migrations and exit. Needs only DATABASE_URL. */
import { migrate } from '../adapters/pg/migrator.js';

const url = process.env.DATABASE_URL;
if (!url) {
  process.stderr.write('DATABASE_URL is required\n');
  process.exit(2);
}
const report = await migrate(url);
process.stdout.write(`migrations applied: ${report.applied.join(', ') || 'none'}; already applied: ${report.alreadyApplied.length}\n`);
