/**
 * A unified diff of two texts, for reviewing what a policy version changes. The common head and tail
 * are trimmed first, so the usual small policy change costs almost nothing even in a large module;
 * the changed middle is aligned by longest common subsequence. Changes further apart than twice the
 * context become separate hunks, as `diff -u` prints them. Pure.
 */
type Op = readonly ['-' | '+' | ' ', string];

export function unifiedDiff(a: string, b: string, labels: { from: string; to: string }, context = 3): string {
  const x = a.split('\n');
  const y = b.split('\n');
  let head = 0;
  while (head < x.length && head < y.length && x[head] === y[head]) head++;
  let tail = 0;
  while (tail < x.length - head && tail < y.length - head && x[x.length - 1 - tail] === y[y.length - 1 - tail]) tail++;
  const xm = x.slice(head, x.length - tail);
  const ym = y.slice(head, y.length - tail);
  if (xm.length === 0 && ym.length === 0) return '';

  const ops: Op[] = x.slice(0, head).map((l) => [' ', l] as const);
  if (xm.length * ym.length > 25_000_000) {
    // too large a middle to align: show it as one replacement
    ops.push(...xm.map((l) => ['-', l] as const), ...ym.map((l) => ['+', l] as const));
  } else {
    const n = xm.length;
    const m = ym.length;
    const lcs = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
    for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) lcs[i]![j] = xm[i] === ym[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
    let i = 0;
    let j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && xm[i] === ym[j]) {
        ops.push([' ', xm[i]!]);
        i++;
        j++;
      } else if (i < n && (j === m || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) ops.push(['-', xm[i++]!]);
      else ops.push(['+', ym[j++]!]);
    }
  }
  ops.push(...x.slice(x.length - tail).map((l) => [' ', l] as const));

  // hunks: runs of changes with up to `context` unchanged lines around and between them
  const out = [`--- ${labels.from}`, `+++ ${labels.to}`];
  const changed = ops.map((o, k) => (o[0] !== ' ' ? k : -1)).filter((k) => k >= 0);
  let k = 0;
  while (k < changed.length) {
    let end = k;
    while (end + 1 < changed.length && changed[end + 1]! - changed[end]! <= 2 * context + 1) end++;
    const from = Math.max(0, changed[k]! - context);
    const to = Math.min(ops.length, changed[end]! + context + 1);
    const before = ops.slice(0, from);
    const oldStart = before.filter((o) => o[0] !== '+').length + 1;
    const newStart = before.filter((o) => o[0] !== '-').length + 1;
    const hunk = ops.slice(from, to);
    out.push(`@@ -${oldStart},${hunk.filter((o) => o[0] !== '+').length} +${newStart},${hunk.filter((o) => o[0] !== '-').length} @@`);
    out.push(...hunk.map(([op, l]) => `${op}${l}`));
    k = end + 1;
  }
  return `${out.join('\n')}\n`;
}
