/**
 * `strata serve --workers N`: the primary process. It forks N workers (node:cluster shares
 * the client listeners among them) and keeps what must happen once per node:
 *
 * - the node-wide collapse lock (lock-broker.ts), asked by workers over IPC, which also
 *   relays a leading worker's fill progress to the workers reading that fill;
 * - store upkeep (eviction, orphan sweep, purge log and fan-out) and the admin listener,
 *   by running an edge node of its own with no client listener; its /metrics aggregates
 *   every worker's registry, its /stats shows the node-wide lock.
 *
 * Signals: SIGTERM/SIGINT drain every worker, then exit 0; SIGHUP re-reads the config
 * file and replaces the workers one at a time (the listeners keep accepting throughout);
 * SIGUSR1 is passed on to every worker, and each process reopens its access-log file.
 */
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import { CollapseTable, type FillPurge } from '../cache/collapse.ts';
import { type ConfigOverrides, loadConfig } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { createEdgeNode, type EdgeNode, RESTART_SECTIONS } from '../edge-node.ts';
import { isEdgeError } from '../errors.ts';
import type { FleetSections } from '../fleet/sections.ts';
import { newTicketKeys, TICKET_ROTATION_MS } from '../http/ticket-keys.ts';
import { createLogger, type Logger } from '../observability/logger.ts';
import { RATE_SYNC_MS, RateAggregator } from '../security/rate-share.ts';
import { LockBroker } from './lock-broker.ts';
import {
  CONFIG_ENV,
  isStrataMessage,
  type MetricsRequestMessage,
  type PrimaryMessage,
  type PurgeFillsMessage,
  TICKET_KEYS_ENV,
  type TicketKeysMessage,
  type WorkerMessage,
  workerConfig,
} from './protocol.ts';
import { Supervisor } from './supervisor.ts';

/**
 * The longest one worker may hold a key's lock without progress (a stuck fill; each committed
 * chunk renews it); then waiters compete again and readers of its fill are cut short.
 */
const LOCK_LEASE_MS = 5 * 60_000;
const METRICS_TIMEOUT_MS = 3000;

export interface PrimaryFlags extends ConfigOverrides {
  config?: string;
}

export async function runPrimary(config: Config, flags: PrimaryFlags = {}): Promise<void> {
  const log = createLogger({ level: config.logging.level, flushInterval: config.logging.flushInterval });
  const count = config.workers === 'auto' ? availableParallelism() : config.workers;
  const broker = new LockBroker({
    send: (worker, message) => {
      const target = cluster.workers?.[worker];
      if (target?.isConnected()) target.send(message);
    },
    hitForPassMs: config.cache.hitForPass,
    leaseMs: LOCK_LEASE_MS,
    now: Date.now,
    onLeaseExpired: (key) => log.warn({ key }, 'collapse lock lease expired; waiters compete again'),
  });
  let running = workerConfig(config);
  let replaceWorkers: (() => void) | undefined;
  // Opened before any worker: creates the environment, sweeps orphans, runs the admin listener
  // and the fleet bus (which applies a shared configuration here, then to fresh workers).
  /** Workers whose cache writes fail, with why: the node's health says so (admin/server.ts). */
  const failingWrites = new Map<number, string>();
  const node = await createEdgeNode({
    config: { ...config, listeners: [] },
    logger: log,
    upkeep: true,
    workersWriteFailure: () => failingWrites.values().next().value,
    collapse: new BrokerView(config.cache.hitForPass, broker),
    loadShared: (sections) => ({ ...loadShared(flags, sections), listeners: [] }),
    onSharedConfig: () => {
      running = reloaded(running, flags, log, node.sharedSections);
      replaceWorkers?.();
    },
  });
  // One set of TLS ticket keys for every worker, so a session resumes on any of them.
  let ticketKeys = newTicketKeys();
  const rotation = setInterval(() => {
    ticketKeys = newTicketKeys();
    const message: TicketKeysMessage = { strata: 'ticket-keys', keys: ticketKeys.toString('base64') };
    for (const worker of Object.values(cluster.workers ?? {}))
      if (worker?.isConnected()) worker.send(message);
  }, TICKET_ROTATION_MS);
  rotation.unref();
  // Frozen by setupPrimary: node.accept replaces NODE_CLUSTER_SCHED_POLICY.
  cluster.schedulingPolicy = config.node.accept === 'workers' ? cluster.SCHED_NONE : cluster.SCHED_RR;
  cluster.setupPrimary({ exec: fileURLToPath(new URL('./worker-main.ts', import.meta.url)) });
  const supervisor = new Supervisor({
    count,
    env: () => ({ [CONFIG_ENV]: JSON.stringify(running), [TICKET_KEYS_ENV]: ticketKeys.toString('base64') }),
    log,
    onExit: (worker) => {
      broker.workerGone(worker.id);
      metrics.retire(worker.id);
      failingWrites.delete(worker.id);
      // What it left in LMDB (fills cut short, bodies its timers were to remove) goes once
      // their grace period is over; before, it stayed until the node restarted, uncounted.
      const bodies = bodyPrefixes.get(worker.id);
      bodyPrefixes.delete(worker.id);
      if (bodies !== undefined) void node.sweepBodiesOf(bodies);
    },
    onGiveUp: (why) => void shutdown(why, 1),
  });
  const metrics = new MetricsGather(() => supervisor.workers);
  /** Each worker's body id prefix, told when it is ready. */
  const bodyPrefixes = new Map<number, string>();
  let rates = new RateAggregator(config.sites);
  // Keys over a node-wide rate limit, broadcast to every worker each interval.
  const rateSync = setInterval(() => {
    const over = rates.takeOver();
    if (over.length === 0) return;
    for (const worker of Object.values(cluster.workers ?? {}))
      if (worker?.isConnected()) worker.send({ strata: 'rate-over', over });
  }, RATE_SYNC_MS);
  rateSync.unref();
  // Health checks run here only (once per node); every result goes to every worker.
  const toWorkers = (message: PrimaryMessage, except?: Worker) => {
    for (const worker of supervisor.workers)
      if (worker !== except && worker.isConnected()) worker.send(message);
  };
  node.originEvents.onHealth((name, verdict, ms) =>
    toWorkers({ strata: 'origin-health', origins: [{ name, verdict, ms }] }),
  );
  // The ejections the workers decided, until when (epoch ms): a worker that starts (replaced on
  // SIGHUP, or after one exited) is told of those still running, as it is of the health verdicts.
  // Without it, every reload gave each ejected origin back its traffic until each new worker
  // ejected it again (a Retry-After of minutes included).
  const ejections = new Map<string, number>();
  aggregateMetrics(node, metrics);
  let serving: string[] = [];
  cluster.on('message', (worker: Worker, message: unknown) => {
    if (!isStrataMessage<WorkerMessage>(message)) return;
    switch (message.strata) {
      case 'acquire':
        return broker.acquire(worker.id, message.id, message.key, message.wait);
      case 'cancel':
        return broker.cancel(worker.id, message.id);
      case 'release':
        return broker.release(worker.id, message.id, message.result, message.chunks);
      case 'announce':
        return broker.announce(worker.id, message.id, message.fill, message.committed);
      case 'committed':
        return broker.committed(worker.id, message.id, message.committed);
      case 'ready':
        serving = message.addresses;
        bodyPrefixes.set(worker.id, message.bodies);
        worker.send({
          strata: 'origin-health',
          origins: node.originEvents.healthSnapshot(),
        } satisfies PrimaryMessage);
        for (const [origin, until] of ejections) {
          const ms = until - Date.now();
          if (ms > 0) worker.send({ strata: 'origin-ejected', origin, ms } satisfies PrimaryMessage);
          else ejections.delete(origin);
        }
        return supervisor.ready(worker);
      case 'store-state':
        if (message.failing) failingWrites.set(worker.id, message.reason ?? 'write failed');
        else failingWrites.delete(worker.id);
        return;
      case 'leaving':
        // Echoed after every connection handed to it so far (protocol.ts, LeavingMessage).
        if (worker.isConnected()) worker.send(message);
        return;
      case 'origin-ejected':
        ejections.set(message.origin, Math.max(ejections.get(message.origin) ?? 0, Date.now() + message.ms));
        return toWorkers(message, worker);
      case 'metrics':
        return metrics.reply(worker.id, message.id, message.metrics);
      case 'rate-counts':
        return rates.add(message.reports, Date.now());
    }
  });

  let stopping: Promise<void> | undefined;
  const shutdown = (why: string, code: number): Promise<void> => {
    stopping ??= (async () => {
      process.stderr.write(`strata: ${why}: draining ${count} workers\n`);
      await supervisor.stop();
      broker.close();
      await node.close();
      process.exit(code);
    })();
    return stopping;
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM', 0));
  process.on('SIGINT', () => void shutdown('SIGINT', 0));
  // SIGUSR1 (logrotate): every process reopens the access-log file it appends to.
  process.on('SIGUSR1', () => {
    node.reopenLogs();
    for (const worker of supervisor.workers) if (worker.isConnected()) worker.process.kill('SIGUSR1');
  });
  let replacing: Promise<void> | undefined;
  replaceWorkers = () => {
    if (stopping) return;
    rates = new RateAggregator(running.sites);
    // One replacement at a time; a change during one is taken by a second round after it.
    const after = replacing ?? Promise.resolve();
    replacing = after
      .then(() => supervisor.replaceAll())
      .then(() => log.info({ workers: count }, 'workers replaced (shared configuration)'))
      .finally(() => {
        replacing = undefined;
      });
  };
  process.on('SIGHUP', () => {
    if (stopping || replacing) return;
    const next = readConfig(flags, log, node.sharedSections);
    if (typeof next === 'string') {
      process.stderr.write(
        `strata: SIGHUP: configuration not reloaded, workers restart on the running one: ${next}\n`,
      );
    } else {
      // An ejection holds for an origin kept under the same name and URL (docs/origins.md).
      for (const name of ejections.keys()) {
        const url = (list: Config['origins']) => list.find((origin) => origin.name === name)?.url;
        if (url(next.origins) === undefined || url(next.origins) !== url(running.origins))
          ejections.delete(name);
      }
      running = keepRestartSections(running, next);
      // The primary's own sites and origins: its health checks follow the new config. Given the
      // file as read, it names the sections that differ from the running ones and need a restart.
      const needRestart = node.reloadSites({ ...next, listeners: [] });
      process.stderr.write(
        `strata: SIGHUP: sites and origins reloaded${needRestart.length > 0 ? `; restart to apply ${needRestart.join(', ')}` : ''}\n`,
      );
    }
    rates = new RateAggregator(running.sites); // the new workers start with fresh buckets too
    replacing = supervisor
      .replaceAll()
      .then(() => log.info({ workers: count }, 'workers replaced'))
      .finally(() => {
        replacing = undefined;
      });
  });

  try {
    await supervisor.start();
  } catch (error) {
    await shutdown((error as Error).message, 1);
    return;
  }
  process.stderr.write(
    `strata: serving on ${serving.map((a, i) => `${config.listeners[i]?.tls ? 'https' : 'http'}://${a}`).join(' and ')} with ${count} workers; cache in ${config.cache.dir}` +
      `${node.adminAddress ? `; admin on http://${node.adminAddress}` : ''}\n`,
  );
}

/**
 * SIGHUP: the config file read again (sites, origins, rules); what needs a restart
 * (RESTART_SECTIONS, node.accept) is kept. An invalid file keeps the running config.
 */
function reloaded(
  running: Config,
  flags: PrimaryFlags,
  log: Logger,
  shared: FleetSections | undefined,
): Config {
  const next = readConfig(flags, log, shared);
  return typeof next === 'string' ? running : keepRestartSections(running, next);
}

/**
 * The config (file, environment, flags, the fleet's shared sections) read again; when invalid,
 * why (logged, as serve says it at start: the problems, without a stack).
 */
function readConfig(flags: PrimaryFlags, log: Logger, shared: FleetSections | undefined): Config | string {
  try {
    return loadShared(flags, shared);
  } catch (error) {
    const reason = isEdgeError(error) ? error.message : String(error);
    log.error(
      { code: isEdgeError(error) ? error.code : undefined, reason },
      'config reload failed; workers restart on the running config',
    );
    return reason;
  }
}

/** The workers' config from `next`: what needs a restart stays as the node started, as in the primary. */
function keepRestartSections(running: Config, next: Config): Config {
  const kept = Object.fromEntries(RESTART_SECTIONS.map((key) => [key, running[key]]));
  return workerConfig({ ...next, ...kept, node: { ...next.node, accept: running.node.accept } });
}

/** The configuration as serve reads it, with the fleet's shared sections in place of the file's. */
function loadShared(flags: PrimaryFlags, sections: FleetSections | undefined): Config {
  const { config: file, ...overrides } = flags;
  return loadConfig({
    ...(file ? { file } : {}),
    env: process.env,
    overrides,
    ...(sections ? { replace: sections } : {}),
  });
}

/** The primary's collapse table: no requests of its own; /stats sees the node-wide lock. */
class BrokerView extends CollapseTable {
  readonly #broker: LockBroker;

  constructor(hitForPassMs: number, broker: LockBroker) {
    super(hitForPassMs, Date.now);
    this.#broker = broker;
  }

  override get size(): number {
    return this.#broker.locks;
  }

  override get waiters(): number {
    return this.#broker.waiters;
  }

  /**
   * A purge started (the admin API runs here): the broker closes the locks it covers, and every
   * worker unlists its pending keys for them, before the purge is acknowledged.
   */
  override purgeFills(purge: FillPurge): number {
    const closed = this.#broker.purgeFills(purge);
    const message: PurgeFillsMessage = { strata: 'purge-fills', purge };
    for (const worker of Object.values(cluster.workers ?? {}))
      if (worker?.isConnected()) worker.send(message);
    return closed;
  }
}

type MetricJson = MetricObjectWithValues<MetricValue<string>>;

/**
 * Collects every worker's metrics (registry JSON) over IPC. The counters and histograms a worker
 * reported last are kept when it exits (crash, kill, SIGHUP replacement) and added to every
 * later collection, so the node's totals never go back: a total that fell would read as a
 * counter reset to Prometheus and as a negative rate to `strata top`. What a worker counted
 * after the last collection before its exit is not known to the primary.
 */
class MetricsGather {
  readonly #workers: () => Worker[];
  readonly #pending = new Map<number, { replies: MetricJson[][]; left: number; done: () => void }>();
  readonly #last = new Map<number, MetricJson[]>();
  #retired: Promise<MetricJson[]> = Promise.resolve([]);
  #nextId = 1;

  constructor(workers: () => Worker[]) {
    this.#workers = workers;
  }

  collect(): Promise<MetricJson[][]> {
    const id = this.#nextId++;
    const workers = this.#workers().filter((w) => w.isConnected());
    const replies: MetricJson[][] = [];
    // The retired totals as this collection starts: a worker that replies to it and then exits is counted once.
    const retiredNow = this.#retired;
    const withRetired = async () => {
      const retired = await retiredNow;
      return retired.length === 0 ? replies : [retired, ...replies];
    };
    if (workers.length === 0) return withRetired();
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(), METRICS_TIMEOUT_MS);
      const done = () => {
        clearTimeout(timer);
        this.#pending.delete(id);
        resolve(withRetired());
      };
      this.#pending.set(id, { replies, left: workers.length, done });
      for (const worker of workers) worker.send({ strata: 'metrics?', id } satisfies MetricsRequestMessage);
    });
  }

  reply(workerId: number, id: number, metrics: unknown[]): void {
    const pending = this.#pending.get(id);
    if (pending === undefined) return;
    pending.replies.push(metrics as MetricJson[]);
    this.#last.set(workerId, metrics as MetricJson[]);
    if (--pending.left === 0) pending.done();
  }

  /** Folds the counters and histograms of a worker that exited into the retired totals. */
  retire(workerId: number): void {
    const last = this.#last.get(workerId);
    this.#last.delete(workerId);
    if (last === undefined) return;
    // Gauges (memory tier, process memory) end with the process; sums of counts do not.
    const counts = last.filter(
      (m) => ['counter', 'histogram'].includes(String(m.type)) && (m.aggregator ?? 'sum') === 'sum',
    );
    this.#retired = this.#retired.then(
      async (retired) =>
        (await AggregatorRegistry.aggregate([retired, counts]).getMetricsAsJSON()) as MetricJson[],
    );
  }
}

/**
 * The admin /metrics of the node: the primary's own registry (store gauges, purges,
 * evictions) summed with every worker's (requests, origins, collapsing). Store gauges come
 * from the primary only, so they are not counted once per worker.
 */
function aggregateMetrics(node: EdgeNode, gather: MetricsGather): void {
  const registry = node.metrics.registry;
  const aggregated = async () => {
    const own = (await registry.getMetricsAsJSON()) as MetricJson[];
    const workers = (await gather.collect()).map((list) =>
      list.filter((m) => !m.name.startsWith('strata_store_')),
    );
    return AggregatorRegistry.aggregate([own, ...workers]);
  };
  registry.metrics = async () => (await aggregated()).metrics();
  // /stats reads the same sums (its traffic section).
  node.metrics.setGather(async () => (await (await aggregated()).getMetricsAsJSON()) as MetricJson[]);
}
