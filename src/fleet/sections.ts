/**
 * The shared configuration a KV key holds: YAML or JSON with the parts of a config file that a
 * SIGHUP reload takes without a restart — `sites`, `origins` and `geo`. They replace the same
 * sections of each node's own file, and the result is validated exactly as a reload would.
 */
import { loadYaml } from '../config/yaml.ts';

export const SHARED_SECTIONS = ['sites', 'origins', 'geo'] as const;
export type SharedSection = (typeof SHARED_SECTIONS)[number];
export type FleetSections = Partial<Record<SharedSection, unknown>>;

export function parseSections(
  text: string,
): { ok: true; sections: FleetSections } | { ok: false; reason: string } {
  let parsed: unknown;
  try {
    parsed = loadYaml().parse(text);
  } catch (error) {
    return { ok: false, reason: `cannot parse: ${(error as Error).message.split('\n')[0]}` };
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
    return { ok: false, reason: 'must hold a mapping with sites, origins or geo' };
  const sections: FleetSections = {};
  for (const [key, value] of Object.entries(parsed)) {
    if (!(SHARED_SECTIONS as readonly string[]).includes(key))
      return {
        ok: false,
        reason: `${key}: not a shared section (only ${SHARED_SECTIONS.join(', ')}; the rest of a node's config stays in its file)`,
      };
    const wrong = shapeProblem(key as SharedSection, value);
    if (wrong !== undefined) return { ok: false, reason: `${key}: ${wrong}` };
    sections[key as SharedSection] = value;
  }
  if (Object.keys(sections).length === 0) return { ok: false, reason: 'empty: give sites, origins or geo' };
  return { ok: true, sections };
}

const isMapping = (value: unknown): boolean =>
  value !== null && typeof value === 'object' && !Array.isArray(value);

/** The section's shape as a config file has it: sites and origins lists of mappings, geo a mapping. */
function shapeProblem(key: SharedSection, value: unknown): string | undefined {
  if (key === 'geo') return isMapping(value) ? undefined : 'expected a mapping';
  if (!Array.isArray(value)) return 'expected a list';
  const at = value.findIndex((entry) => !isMapping(entry));
  return at === -1 ? undefined : `[${at}]: expected a mapping`;
}
