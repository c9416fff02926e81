/**
 * Every node's module as the state says it should be now, next to the version the node is meant to
 * run: which nodes differ (dirty), which have nothing yet, and whether the difference is urgent. The
 * state is read once for the whole fleet; each node's module is a view of it.
 */
import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import type { Db, Tx } from '../../adapters/pg/database.js';
import { buildPolicyModel } from '../../domain/policy/policy-model.js';
import { safetyDigest, urgentReasons, type DirtyNode, type FleetRender, type SafetyDigest } from '../../domain/policy/rollout.js';
import { renderPolicyModule } from '../../render/policy-module.js';
import { loadPolicyState } from './policy-inputs.js';

export interface RenderedNode extends DirtyNode {
  text: string;
  contentSha256: string;
  modelSha256: string;
  safety: SafetyDigest;
  /** the version the node is meant to run now: newest published, not rolled back */
  current: { id: string; version: number; contentSha256: string; safety: SafetyDigest | null } | null;
}

export const contentSha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');

type Rendering = Pick<RenderedNode, 'text' | 'contentSha256' | 'modelSha256' | 'safety'>;

/**
 * Renders of the last state seen, per node. Rendering a large fleet takes seconds, and the autopilot
 * looks every few: reading the state and hashing it is what a tick costs while nothing changes.
 */
export class FleetRenderCache {
  private stateSha: string | null = null;
  private readonly byNode = new Map<string, Rendering>();

  lookup(stateSha: string, key: string, render: () => Rendering): Rendering {
    if (stateSha !== this.stateSha) {
      this.byNode.clear();
      this.stateSha = stateSha;
    }
    let r = this.byNode.get(key);
    if (!r) {
      r = render();
      this.byNode.set(key, r);
    }
    return r;
  }
}

export async function renderFleet(db: Db | Tx, dkimKeyDir: string, nodeIds: string[] | null = null, cache: FleetRenderCache = new FleetRenderCache()): Promise<{ nodes: RenderedNode[]; render: FleetRender }> {
  const state = await loadPolicyState(db, dkimKeyDir);
  const stateSha = createHash('sha256').update(JSON.stringify(state)).digest('hex');
  const { rows } = await sql<{ id: string; name: string; canary: boolean; current_id: string | null; version: number | null; content_sha256: string | null; safety: SafetyDigest | null }>`
    SELECT n.id, n.name, n.canary, c.id AS current_id, c.version, c.content_sha256, c.safety
    FROM nodes n
    LEFT JOIN LATERAL (
      SELECT v.id, v.version, v.content_sha256, v.safety FROM policy_versions v
      WHERE v.node_id = n.id AND v.published_at IS NOT NULL AND v.rolled_back_at IS NULL
      ORDER BY v.version DESC LIMIT 1
    ) c ON true
    ${nodeIds ? sql`WHERE n.id = ANY(${nodeIds}::uuid[])` : sql``}
    ORDER BY n.name`.execute(db);
  const nodes: RenderedNode[] = rows.map((r) => {
    const rendering = cache.lookup(stateSha, `${r.id} ${r.name}`, () => {
      const model = buildPolicyModel({ ...state, node: { id: r.id, name: r.name } });
      const { text, modelSha256 } = renderPolicyModule(model);
      return { text, contentSha256: contentSha256(text), modelSha256, safety: safetyDigest(model) };
    });
    return {
      nodeId: r.id,
      name: r.name,
      canary: r.canary,
      ...rendering,
      current: r.current_id === null ? null : { id: String(r.current_id), version: r.version!, contentSha256: r.content_sha256!, safety: r.safety },
    };
  });
  const fleetSha = createHash('sha256');
  for (const n of nodes) fleetSha.update(`${n.nodeId}:${n.contentSha256}\n`);
  const dirty = nodes.filter((n) => n.current !== null && n.current.contentSha256 !== n.contentSha256);
  return {
    nodes,
    render: {
      sha: fleetSha.digest('hex'),
      dirty: dirty.map(({ nodeId, name, canary }) => ({ nodeId, name, canary })),
      bootstrap: nodes.filter((n) => n.current === null).map(({ nodeId, name, canary }) => ({ nodeId, name, canary })),
      // a version published before digests were kept has none: its change is judged not urgent
      urgent: dirty.flatMap((n) => urgentReasons(n.name, n.current!.safety, n.safety)),
    },
  };
}
