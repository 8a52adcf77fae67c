/** Small statistics the scenarios share. */

/** The p-th percentile (nearest rank, p in 0–100) of `values`, in any order; null when empty. */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
