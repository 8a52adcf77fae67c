/**
 * Surrogate-Control (W3C Edge Architecture Specification 1.0, §2.2–2.3): the older
 * targeted cache-control field, read after CDN-Cache-Control in our RFC 9213 §2.1
 * target list. Pure: no I/O.
 *
 *   Surrogate-Control = 1#( control-directive [ ";" device-token ] )
 *   control-directive = "no-store" | "no-store-remote"
 *                     | "max-age" "=" delta-seconds [ "+" delta-seconds ]
 *                     | "content" "=" quoted-string | extension-directive
 *
 * Parsing is lenient, member by member: a member that does not parse is skipped, the
 * others still count; whitespace between two directives separates them as a comma would. A
 * directive with a device token applies only to the surrogate of that name (ours is the Via /
 * Cache-Status pseudonym, announced to origins in Surrogate-Capability); one targeted at us wins
 * over the same directive untargeted.
 */
import type { Directives } from './cache-control.ts';
import { splitMembers } from './cache-control.ts';

/** One member: directive name, optional `=value` (token or quoted-string), optional `;target`. */
const MEMBER =
  /^\s*([!#$%&'*+\-.^_`|~0-9A-Za-z]+)(?:=(?:"((?:[^"\\]|\\.)*)"|([^\s,;"]+)))?\s*(?:;\s*([!#$%&'*+\-.^_`|~0-9A-Za-z]+)\s*)?$/;

/** §2.2.3: `max-age=<freshness>[+<extension>]`. */
const MAX_AGE = /^(\d+)(?:\+(\d+))?$/;

/**
 * The directives of a Surrogate-Control value that apply to the surrogate `name`, or
 * undefined when none does (the field then counts as empty for us: RFC 9213 §2.1 moves
 * on to the next field of the target list, and finally to Cache-Control).
 */
export function parseSurrogateControl(value: string | undefined, name: string): Directives | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const us = name.toLowerCase();
  const directives = new Map<string, string>();
  /** Directives set by a member targeted at us: untargeted members no longer replace them. */
  const targeted = new Set<string>();
  for (const match of splitMembers(value).flatMap(readMember)) {
    const target = match[4]?.toLowerCase();
    if (target !== undefined && target !== us) continue;
    const directive = match[1]!.toLowerCase();
    const argument = match[2] !== undefined ? match[2].replace(/\\(.)/g, '$1') : (match[3] ?? '');
    for (const [key, setting] of expand(directive, argument)) {
      if (targeted.has(key) || (target === undefined && directives.has(key))) continue;
      directives.set(key, setting);
      if (target !== undefined) targeted.add(key);
    }
  }
  return directives.size > 0 ? directives : undefined;
}

/** Pieces of a member between whitespace outside quoted strings. */
const PIECE = /(?:[^\s"]|"(?:[^"\\]|\\.)*")+/g;

/**
 * One member's match, or the matches of its pieces when whitespace stands for a missing comma
 * (`no-store max-age=60`): each piece must then be a member of its own, or the member is skipped
 * as before. Read as junk, such a member lost its no-store, and Cache-Control's max-age stored
 * the response.
 */
function readMember(member: string): RegExpExecArray[] {
  const match = MEMBER.exec(member);
  if (match !== null) return [match];
  const pieces = member.match(PIECE) ?? [];
  if (pieces.length < 2) return [];
  const matches: RegExpExecArray[] = [];
  for (const piece of pieces) {
    const one = MEMBER.exec(piece);
    if (one === null) return [];
    matches.push(one);
  }
  return matches;
}

/** What one directive means in Cache-Control terms; a value of the wrong form is ignored. */
function expand(directive: string, argument: string): [string, string][] {
  switch (directive) {
    case 'max-age': {
      // §2.2.3: the "+" extension is how long the surrogate may go on serving the object
      // once stale when the origin cannot be reached: stale-if-error (RFC 5861 §4).
      const match = MAX_AGE.exec(argument);
      if (match === null) return [];
      return match[2] === undefined
        ? [['max-age', match[1]!]]
        : [
            ['max-age', match[1]!],
            ['stale-if-error', match[2]],
          ];
    }
    // §2.2.2: "no-store-remote" binds surrogates far from the origin; an edge node cannot
    // tell how near it is, so it honours the directive as no-store.
    case 'no-store-remote':
      return [['no-store', '']];
    default:
      return [[directive, argument]];
  }
}
