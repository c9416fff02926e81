/** kumod's HTTP admin API, as the control plane uses it (undici, with a hard timeout). */
import { request } from 'undici';

export interface AdminCallResult {
  ok: boolean;
  status: number | null;
  error: string | null;
  ms: number;
}

/** POST /api/admin/bump-config-epoch: the node drops its Lua states and re-reads its policy now. */
export async function bumpConfigEpoch(adminUrl: string, timeoutMs: number): Promise<AdminCallResult> {
  const started = performance.now();
  try {
    const res = await request(new URL('/api/admin/bump-config-epoch', adminUrl), {
      method: 'POST',
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      signal: AbortSignal.timeout(timeoutMs),
    });
    await res.body.dump();
    const ok = res.statusCode >= 200 && res.statusCode < 300;
    return { ok, status: res.statusCode, error: ok ? null : `kumod answered ${res.statusCode}`, ms: Math.round(performance.now() - started) };
  } catch (e) {
    return { ok: false, status: null, error: (e as Error).message, ms: Math.round(performance.now() - started) };
  }
}
