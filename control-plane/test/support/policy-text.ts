/** One tenant's entry in a generated module, as text: from its key to the end of its table. */
export function tenantEntry(moduleText: string, tenantId: string): string {
  const start = moduleText.indexOf(`['${tenantId}'] = {`);
  if (start < 0) return '';
  const end = moduleText.indexOf('\n    },', start);
  return moduleText.slice(start, end < 0 ? undefined : end);
}
