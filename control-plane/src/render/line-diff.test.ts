import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { unifiedDiff } from './line-diff.js';

/** Apply a unified diff produced here back to the old text. */
function apply(old: string, diff: string): string {
  if (diff === '') return old;
  const a = old.split('\n');
  const out: string[] = [];
  let at = 0;
  const lines = diff.split('\n').slice(2, -1);
  for (const line of lines) {
    const m = /^@@ -(\d+),\d+ \+\d+,\d+ @@$/.exec(line);
    if (m) {
      const start = Number(m[1]) - 1;
      while (at < start) out.push(a[at++]!);
      continue;
    }
    if (line.startsWith(' ')) out.push(a[at++]!);
    else if (line.startsWith('-')) at++;
    else out.push(line.slice(1));
  }
  while (at < a.length) out.push(a[at++]!);
  return out.join('\n');
}

describe('unifiedDiff', () => {
  it('is empty for equal texts and shows a one-line change with context', () => {
    expect(unifiedDiff('a\nb', 'a\nb', { from: 'v1', to: 'v2' })).toBe('');
    const d = unifiedDiff('1\n2\n3\n4\n5\n6\n7\n8', '1\n2\n3\n4\nFIVE\n6\n7\n8', { from: 'v1', to: 'v2' });
    expect(d).toBe('--- v1\n+++ v2\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+FIVE\n 6\n 7\n 8\n');
  });

  it('splits distant changes into hunks', () => {
    const old = Array.from({ length: 40 }, (_, i) => `line ${i}`).join('\n');
    const neu = old.replace('line 3\n', 'line three\n').replace('line 35\n', 'line thirty-five\n');
    expect(unifiedDiff(old, neu, { from: 'a', to: 'b' }).match(/^@@/gm)).toHaveLength(2);
  });

  it('property: applying the diff to the old text gives the new text', () => {
    const text = fc.array(fc.constantFrom('a', 'b', 'c', 'd', '{', '}', ''), { maxLength: 30 }).map((l) => l.join('\n'));
    fc.assert(fc.property(text, text, (a, b) => {
      expect(apply(a, unifiedDiff(a, b, { from: 'a', to: 'b' }))).toBe(b);
    }), { numRuns: 500 });
  });
});
