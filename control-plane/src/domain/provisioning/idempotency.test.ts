import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decideCreate, INTENT_LABEL, intentLabels, isValidLabelKey, isValidLabelValue, labelSelector, labelsForCreate, MANAGED_BY_LABEL } from './idempotency.js';

describe('idempotent creates', () => {
  it('adds our labels, and ours win over the caller’s', () => {
    const r = labelsForCreate('node-7', { role: 'mta', [INTENT_LABEL]: 'other' });
    expect(r).toEqual({ ok: true, value: { role: 'mta', [MANAGED_BY_LABEL]: 'kumo-control-plane', [INTENT_LABEL]: 'node-7' } });
  });

  it('reports every invalid label at once', () => {
    const r = labelsForCreate('has space', { 'bad key!': 'x', ok: '-leading' });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toHaveLength(3);
  });

  it.each([
    ['role', true], ['kcp.intent', true], ['example.com/role', true], ['-x', false], ['a/b/c', false], ['', false], ['x'.repeat(63), true], ['x'.repeat(64), false],
  ])('label key %j valid: %s', (k, v) => expect(isValidLabelKey(k)).toBe(v));
  it.each([['', true], ['node-1', true], ['a_b.c', true], ['bad value', false], ['x-', false]])('label value %j valid: %s', (k, v) => expect(isValidLabelValue(k)).toBe(v));

  it('builds a stable selector', () => {
    expect(labelSelector({ b: '2', a: '1' })).toBe('a=1,b=2');
  });

  it.each([
    ['nothing found: create', [], 'create'],
    ['one found: adopt', [{ id: '1', labels: intentLabels('k') }], 'adopt'],
    ['a stranger the provider returned anyway is ignored', [{ id: '9', labels: { [INTENT_LABEL]: 'k' } }], 'create'],
    ['two found: a human must look', [{ id: '1', labels: intentLabels('k') }, { id: '2', labels: intentLabels('k') }], 'ambiguous'],
  ])('%s', (_n, found, kind) => expect(decideCreate(found, 'k').kind).toBe(kind));

  it('property: adopt only ever returns a resource carrying the intent’s labels', () => {
    const labels = fc.dictionary(fc.constantFrom(MANAGED_BY_LABEL, INTENT_LABEL, 'role'), fc.constantFrom('kumo-control-plane', 'k', 'j', 'mta'));
    fc.assert(
      fc.property(fc.array(fc.record({ id: fc.string(), labels })), (found) => {
        const d = decideCreate(found, 'k');
        const mine = found.filter((r) => r.labels[INTENT_LABEL] === 'k' && r.labels[MANAGED_BY_LABEL] === 'kumo-control-plane');
        expect(d.kind).toBe(mine.length === 0 ? 'create' : mine.length === 1 ? 'adopt' : 'ambiguous');
        if (d.kind === 'adopt') expect(mine).toContain(d.resource);
      }),
    );
  });

  it('property: every valid key and value passes labelsForCreate', () => {
    const name = fc.stringMatching(/^[a-zA-Z0-9](?:[a-zA-Z0-9._-]{0,20}[a-zA-Z0-9])?$/);
    fc.assert(fc.property(name, fc.dictionary(name, name), (key, labels) => {
      expect(labelsForCreate(key, labels).ok).toBe(true);
    }));
  });
});
