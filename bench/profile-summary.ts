/**
 * Summarizes a V8 CPU profile (`node --cpu-prof`, e.g. from `npm run bench -- --profile`):
 * the functions with the most self time, and the source files with the most self time.
 *
 *   node bench/profile-summary.ts FILE.cpuprofile [--top 25] [--requests N]
 *
 * With --requests (how many requests the profiled process served), each line also shows µs per
 * request.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '25' }, requests: { type: 'string' } },
});
const file = positionals[0];
if (file === undefined) {
  process.stderr.write('usage: node bench/profile-summary.ts FILE.cpuprofile [--top N]\n');
  process.exit(2);
}
const top = Number(values.top);
const requests = values.requests === undefined ? null : Number(values.requests);
const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;

/** Microseconds of self time per node id: each sample's delta goes to the node it landed in. */
const selfUs = new Map<number, number>();
for (let i = 0; i < profile.samples.length; i++) {
  const id = profile.samples[i] ?? -1;
  selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, profile.timeDeltas[i] ?? 0));
}
const idleIds = new Set(profile.nodes.filter((n) => n.callFrame.functionName === '(idle)').map((n) => n.id));
/** Busy time only: the percentages say where the CPU went while it worked. */
const totalUs = [...selfUs].filter(([id]) => !idleIds.has(id)).reduce((sum, [, us]) => sum + us, 0);

function where(frame: CallFrame): string {
  if (frame.url === '') return '(native)';
  const short = frame.url.replace(/^file:\/\//, '').replace(`${process.cwd()}/`, '');
  return `${short.includes('node_modules') ? short.slice(short.lastIndexOf('node_modules/') + 13) : short}:${frame.lineNumber + 1}`;
}

const byFunction = new Map<string, number>();
const byFile = new Map<string, number>();
for (const node of profile.nodes) {
  const us = selfUs.get(node.id) ?? 0;
  if (us === 0 || idleIds.has(node.id)) continue;
  const frame = node.callFrame;
  const name = `${frame.functionName || '(anonymous)'}  ${where(frame)}`;
  byFunction.set(name, (byFunction.get(name) ?? 0) + us);
  const fileKey = frame.url === '' ? frame.functionName || '(native)' : where(frame).replace(/:\d+$/, '');
  byFile.set(fileKey, (byFile.get(fileKey) ?? 0) + us);
}

function print(title: string, entries: Map<string, number>): void {
  process.stdout.write(`\n${title}\n`);
  const sorted = [...entries].sort((a, b) => b[1] - a[1]).slice(0, top);
  for (const [name, us] of sorted) {
    process.stdout.write(
      `${((us / totalUs) * 100).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(7)} ms  ${name}\n`,
    );
  }
}

/** Inclusive time of the project's own functions (src/, cli/): each sample counted once per frame. */
function projectInclusive(): Map<string, number> {
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const inclusive = new Map<string, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = Math.max(0, profile.timeDeltas[i] ?? 0);
    const seen = new Set<string>();
    let id: number | undefined = profile.samples[i];
    for (let depth = 0; id !== undefined && depth < 1000; depth++) {
      const frame = byId.get(id)?.callFrame;
      if (frame !== undefined && /\/(src|cli)\//.test(frame.url) && !frame.url.includes('node_modules')) {
        const name = `${frame.functionName || '(anonymous)'}  ${where(frame)}`;
        if (!seen.has(name)) inclusive.set(name, (inclusive.get(name) ?? 0) + delta);
        seen.add(name);
      }
      id = parent.get(id);
    }
  }
  return inclusive;
}

const busy = `${(totalUs / 1e6).toFixed(2)} s busy (idle excluded)`;
const per =
  requests === null ? '' : `, ${(totalUs / requests).toFixed(1)} µs per request over ${requests} requests`;
process.stdout.write(`${path.basename(file)}: ${busy}${per}\n`);
print('self time by function', byFunction);
print('self time by file', byFile);
print('inclusive time of project functions (src/, cli/)', projectInclusive());
