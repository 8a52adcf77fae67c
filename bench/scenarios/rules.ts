/**
 * hit-rules: what a site's cache rules cost a hit. The same warmed 1k key is served by a site
 * without rules and by one with 50 (a session-cookie pass rule, 47 path rules of every kind
 * that miss the key, a header rewrite for every response and a TTL rule that matches), in the
 * same run, targets alternating; the CPU per request of the two rows is the figure.
 */
import type { TargetKind, TargetOptions } from '../lib/targets.ts';

const ORIGINS = ['origin'];

/** Fifty rules as a site might have them; the bench key (/1k) matches three. */
export function fiftyRules(): Record<string, unknown>[] {
  const rules: Record<string, unknown>[] = [
    { name: 'session', match: { cookie: ['session', 'wordpress_logged_in'] }, action: 'pass' },
    { name: 'hide', headers: { response: { remove: ['x-powered-by', 'server'] } } },
  ];
  for (let i = 0; i < 47; i++) {
    const section = `/section-${i}`;
    switch (i % 6) {
      case 0:
        rules.push({ match: { path: `${section}/` }, ttl: '10m', statusTtl: { 404: '1m', '5xx': 0 } });
        break;
      case 1:
        rules.push({ match: { path: `${section}/*.jpg` }, ttl: '7d', browserTtl: '1d' });
        break;
      case 2:
        rules.push({ match: { path: `~^${section}/v[0-9]+/` }, cacheKey: { query: { exclude: ['utm_*'] } } });
        break;
      case 3:
        rules.push({ match: { path: `${section}/`, method: 'POST' }, action: 'pass' });
        break;
      case 4:
        rules.push({ match: { path: `${section}/`, header: { 'x-preview': '1' } }, action: 'bypass' });
        break;
      default:
        rules.push({
          match: { path: `${section}/` },
          headers: { request: { set: { 'x-section': String(i) } } },
          ignore: ['set-cookie'],
        });
    }
  }
  rules.push({ name: 'sized', match: { path: ['/1k', '/100k', '/1m'] }, minTtl: '1h', browserTtl: 60 });
  return rules;
}

function siteWith(rules: Record<string, unknown>[]): Partial<TargetOptions> {
  return { strataConfig: { sites: [{ name: 'bench', hosts: ['*'], origins: ORIGINS, rules }] } };
}

export const RULE_KINDS: { kind: TargetKind; label: string; options?: Partial<TargetOptions> }[] = [
  { kind: 'strata', label: 'strata', options: siteWith([]) },
  { kind: 'strata', label: 'strata+50rules', options: siteWith(fiftyRules()) },
];
