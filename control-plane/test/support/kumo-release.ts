/**
 * The KumoMTA release the node-side tests run against: the kumod binary named by KUMOD_BIN
 * (scripts/test.sh points it at ../shared/kumomta/<newest release>/sbin/kumod when that is there)
 * and the release's share directory (policy-extras, shaping.toml, the bounce classifier's rules),
 * beside it as in the official package, or KUMO_SHARE_DIR. Without them the tests that need them
 * say so loudly and skip.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

export interface KumoRelease {
  /** the kumod binary, or null */
  kumod: string | null;
  /** the release's share directory (policy-extras/, community/, bounce_classifier/), or null */
  shareDir: string | null;
  /** the release date of kumod, e.g. '2025.03.19', or null */
  version: string | null;
}

let cached: KumoRelease | undefined;

export function kumoRelease(): KumoRelease {
  if (cached) return cached;
  const kumod = process.env.KUMOD_BIN ? path.resolve(process.env.KUMOD_BIN) : null;
  const beside = kumod ? path.resolve(path.dirname(kumod), '..', 'share') : null;
  const shareDir = [process.env.KUMO_SHARE_DIR, beside, '/opt/kumomta/share'].find((d): d is string => !!d && existsSync(path.join(d, 'policy-extras', 'typing.lua'))) ?? null;
  let version: string | null = null;
  if (kumod) {
    const r = spawnSync(kumod, ['--version'], { encoding: 'utf8' });
    version = /(\d{4}\.\d{2}\.\d{2})/.exec(`${r.stdout}${r.stderr}`)?.[1] ?? null;
    if (!version) throw new Error(`KUMOD_BIN=${kumod} does not answer --version like kumod: ${r.error?.message ?? r.stderr}`);
  }
  cached = { kumod, shareDir, version };
  return cached;
}

/** Whether the release under test is this one or newer ('2025.05.06' style dates compare as strings). */
export const releaseAtLeast = (release: KumoRelease, date: string): boolean => (release.version ?? '0000') >= date;

/** Print, once per file, why a suite did not run. */
export function sayWhySkipped(what: string, needs: string): void {
  process.stderr.write(`\n[kumo] SKIPPED: ${what} did not run: ${needs}\n\n`);
}
