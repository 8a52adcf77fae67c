/**
 * A site's `backup` list names origins, or other sites whose origins it borrows: the origins
 * used only when none of the site's own is usable (docs/origins.md). A name is an origin's if
 * an origin has it, else a site's.
 */

interface Named {
  name: string;
}

interface SiteLike extends Named {
  origins: readonly string[];
  backup: readonly string[];
}

/** The origin names a site's backup list stands for, in order, each once, none of its own origins. */
export function backupOrigins(
  config: { origins: readonly Named[]; sites: readonly SiteLike[] },
  site: SiteLike,
): string[] {
  const origins = new Set(config.origins.map((origin) => origin.name));
  const out: string[] = [];
  for (const name of site.backup) {
    const names = origins.has(name)
      ? [name]
      : (config.sites.find((other) => other.name === name && other !== site)?.origins ?? []);
    for (const origin of names) if (!site.origins.includes(origin) && !out.includes(origin)) out.push(origin);
  }
  return out;
}

/** Why a backup name is wrong (not an origin nor another site), or undefined. */
export function backupProblem(
  config: { origins: readonly Named[]; sites: readonly Named[] },
  site: Named,
  name: string,
): string | undefined {
  if (config.origins.some((origin) => origin.name === name)) return undefined;
  if (name === site.name) return `site "${site.name}" cannot be its own backup`;
  if (config.sites.some((other) => other.name === name)) return undefined;
  return `no origin or site named "${name}"`;
}
