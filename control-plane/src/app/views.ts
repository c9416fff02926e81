/** Small helpers shared by the resource modules' API views. */
export const iso = (d: Date): string => d.toISOString();
export const isoOrNull = (d: Date | null): string | null => (d ? d.toISOString() : null);
export const numOrNull = (v: string | null): number | null => (v === null ? null : Number(v));
