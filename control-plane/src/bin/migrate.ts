/** Apply pending migrations and exit, as the schema's owner: CP_MIGRATION_DATABASE_URL, else DATABASE_URL. */
import { migrate } from '../adapters/pg/migrator.js';

const url = process.env.CP_MIGRATION_DATABASE_URL || process.env.DATABASE_URL;
if (!url) {
  process.stderr.write('CP_MIGRATION_DATABASE_URL or DATABASE_URL is required\n');
  process.exit(2);
}
const report = await migrate(url);
process.stdout.write(`migrations applied: ${report.applied.join(', ') || 'none'}; already applied: ${report.alreadyApplied.length}\n`);
