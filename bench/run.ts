/**
 * The benchmark runner: `npm run bench` runs every scenario; `npm run bench -- --scenario hit-1k
 * --duration 2` runs one. Each scenario starts its own processes on loopback, measures, and
 * stops them by PID; the tables are printed and written (JSON and Markdown) under bench/results/.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { repoRoot } from './lib/generator.ts';
import { describeMachine, renderMachine } from './lib/machine.ts';
import { killAllNow, stopAll } from './lib/processes.ts';
import { setQuietWait } from './lib/quiet.ts';
import { emptyReport, renderReport, type ScenarioReport } from './lib/report.ts';
import { type BenchContext, type Scenario, setTargetFilter } from './lib/scenario.ts';
import { SCENARIOS } from './scenarios/index.ts';

const USAGE = `usage: npm run bench -- [--scenario NAME[,NAME]] [--duration S] [--connections 50,256] [--rounds N]
                      [--herd N] [--objects N] [--warmup-requests N] [--targets strata,ceiling] [--wait-quiet S] [--profile] [--keep-tmp] [--list]
  --wait-quiet S  before each measured run, wait up to S seconds for the machine to be 80% idle
  --warmup-requests N  requests of each target's warm-up in the miss and pass scenarios (default 25000)
  --rounds    repeat the hit scenarios N times, targets alternating, and report medians
  --targets   run only the targets whose label starts with one of these (ceiling, strata,
              nginx, varnish, trafficserver, origin)
  --profile   run Strata, the ceiling and the forward under node --cpu-prof; profiles land in bench/results/profiles/,
              summarize one with: node bench/profile-summary.ts FILE.cpuprofile
scenarios: ${SCENARIOS.map((s) => s.name).join(', ')}`;

interface Options {
  scenarios: Scenario[];
  durationS: number;
  connections: number[];
  herdSize: number;
  /** Stored misses of the memory scenario. */
  objects: number;
  warmupRequests: number;
  rounds: number;
  waitQuietS: number;
  keepTmp: boolean;
  profile: boolean;
}

function fail(message: string): never {
  process.stderr.write(`${message}\n${USAGE}\n`);
  process.exit(2);
}

function positive(value: string, flag: string, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > max) fail(`${flag} must be an integer from 1 to ${max}`);
  return n;
}

function parseOptions(): Options | null {
  const { values } = parseArgs({
    options: {
      scenario: { type: 'string', multiple: true },
      duration: { type: 'string', default: '5' },
      connections: { type: 'string', default: '50,256' },
      herd: { type: 'string', default: '1000' },
      objects: { type: 'string', default: '100000' },
      'warmup-requests': { type: 'string', default: '25000' },
      rounds: { type: 'string', default: '1' },
      'wait-quiet': { type: 'string', default: '0' },
      'keep-tmp': { type: 'boolean', default: false },
      profile: { type: 'boolean', default: false },
      targets: { type: 'string' },
      list: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return null;
  }
  if (values.list) {
    for (const s of SCENARIOS) process.stdout.write(`${s.name.padEnd(18)} ${s.title}\n`);
    return null;
  }
  if (values.targets !== undefined) setTargetFilter(values.targets.split(',').filter((t) => t !== ''));
  const names = (values.scenario ?? []).flatMap((v) => v.split(',')).filter((v) => v !== '');
  const scenarios = names.length === 0 ? [...SCENARIOS] : names.map(findScenario);
  return {
    scenarios,
    durationS: positive(values.duration, '--duration', 600),
    connections: values.connections.split(',').map((c) => positive(c, '--connections', 4000)),
    herdSize: positive(values.herd, '--herd', 4000),
    objects: positive(values.objects, '--objects', 10_000_000),
    warmupRequests: positive(values['warmup-requests'], '--warmup-requests', 1_000_000),
    rounds: positive(values.rounds, '--rounds', 20),
    waitQuietS: values['wait-quiet'] === '0' ? 0 : positive(values['wait-quiet'], '--wait-quiet', 3600),
    keepTmp: values['keep-tmp'],
    profile: values.profile,
  };
}

function findScenario(name: string): Scenario {
  return SCENARIOS.find((s) => s.name === name) ?? fail(`unknown scenario: ${name}`);
}

/** Runs one scenario within its time budget; stops every process it started, whatever happens. */
async function runScenario(scenario: Scenario, ctx: BenchContext): Promise<ScenarioReport> {
  // Up to ten measured runs per round may each wait for a quiet machine first.
  const budgetMs = (scenario.budgetS(ctx) + 10 * ctx.rounds * ctx.waitQuietS) * 1000;
  let timer: NodeJS.Timeout | undefined;
  const overtime = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`over its ${budgetMs / 1000} s budget`)), budgetMs);
  });
  try {
    return await Promise.race([scenario.run(ctx), overtime]);
  } catch (error) {
    const report = emptyReport(scenario.name, scenario.title, []);
    report.error = error instanceof Error ? error.message : String(error);
    return report;
  } finally {
    clearTimeout(timer);
    await stopAll();
  }
}

async function main(): Promise<number> {
  const options = parseOptions();
  if (options === null) return 0;
  const machine = await describeMachine();
  const runId = Date.now().toString(36);
  const tmpRoot = mkdtempSync(path.join(tmpdir(), 'strata-bench-'));
  if (!options.keepTmp) tmpRoots.push(tmpRoot);
  // Varnish's child runs as its own user and must reach its work folder.
  chmodSync(tmpRoot, 0o755);
  const log = (message: string): void => {
    process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
  };
  setQuietWait(options.waitQuietS, log);
  process.stdout.write(`${renderMachine(machine)}\n\n`);
  const reports: ScenarioReport[] = [];
  const profileDir = options.profile ? path.join(repoRoot(), 'bench', 'results', 'profiles', runId) : null;
  try {
    for (const scenario of options.scenarios) {
      const workDir = path.join(tmpRoot, scenario.name);
      mkdirSync(workDir, { mode: 0o755 });
      const ctx: BenchContext = { ...options, workDir, runId, profileDir, log };
      log(`${scenario.name}: start (budget ${scenario.budgetS(ctx)} s)`);
      const report = await runScenario(scenario, ctx);
      if (report.columns.some((c) => c.key === 'other')) {
        report.notes.push(
          'other load: share of both cores that went to neither the server, the generator nor the origin ' +
            'while measuring (other processes, hypervisor steal); figures with a high one are disturbed',
        );
      }
      reports.push(report);
      process.stdout.write(`${renderReport(report)}\n`);
      if (!options.keepTmp) rmSync(workDir, { recursive: true, force: true });
    }
  } finally {
    await stopAll();
    if (options.keepTmp) log(`kept ${tmpRoot}`);
    else rmSync(tmpRoot, { recursive: true, force: true });
  }
  writeResults(machine, options, reports, runId);
  if (profileDir !== null) log(`CPU profiles: ${path.relative(repoRoot(), profileDir)}/`);
  const failed = reports.filter((r) => r.error !== null);
  if (failed.length > 0) log(`failed: ${failed.map((r) => r.name).join(', ')}`);
  return failed.length > 0 ? 1 : 0;
}

function writeResults(
  machine: Awaited<ReturnType<typeof describeMachine>>,
  options: Options,
  reports: ScenarioReport[],
  runId: string,
): void {
  const dir = path.join(repoRoot(), 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const stamp = machine.date.replace(/[:.]/g, '-');
  const base = path.join(dir, `${stamp}-${runId}`);
  const settings = {
    durationS: options.durationS,
    rounds: options.rounds,
    connections: options.connections,
    herdSize: options.herdSize,
    objects: options.objects,
    warmupRequests: options.warmupRequests,
    scenarios: options.scenarios.map((s) => s.name),
  };
  writeFileSync(`${base}.json`, `${JSON.stringify({ machine, settings, reports }, null, 2)}\n`);
  const markdown = [renderMachine(machine), '', ...reports.map(renderReport)].join('\n');
  writeFileSync(`${base}.md`, markdown);
  process.stdout.write(`results: ${path.relative(repoRoot(), base)}.{json,md}\n`);
}

/** Temp folders to remove however the run ends. */
const tmpRoots: string[] = [];

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`\n${signal}: stopping every started process\n`);
    void stopAll().finally(() => {
      for (const dir of tmpRoots) rmSync(dir, { recursive: true, force: true });
      process.exit(130);
    });
  });
}
process.once('exit', killAllNow);

process.exitCode = await main();
