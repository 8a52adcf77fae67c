/**
 * Globs of the site rules (`/static/*`, `utm_*`): `*` stands for any run of characters,
 * everything else for itself. Compiled once, when a site's rules are built.
 */

/** A predicate for one glob: a plain string is compared, a glob is a compiled regex. */
export function compileGlob(glob: string, flags = ''): (value: string) => boolean {
  if (!glob.includes('*'))
    return flags === 'i' ? (v) => v.toLowerCase() === glob.toLowerCase() : (v) => v === glob;
  const source = glob
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\/]/g, '\\$&'))
    .join('.*');
  const regex = new RegExp(`^${source}$`, `s${flags}`);
  return (value) => regex.test(value);
}

/** One predicate for a list of globs: true when any matches. */
export function compileGlobs(globs: readonly string[]): (value: string) => boolean {
  const exact = new Set(globs.filter((glob) => !glob.includes('*')));
  const patterns = globs.filter((glob) => glob.includes('*')).map((glob) => compileGlob(glob));
  if (patterns.length === 0) return (value) => exact.has(value);
  return (value) => exact.has(value) || patterns.some((test) => test(value));
}
