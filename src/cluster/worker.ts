/**
 * One worker process of `strata serve --workers N`: an edge node on the listeners the
 * primary shares (node:cluster), with no store upkeep and no admin listener (the primary
 * runs both once per node), and collapsing coordinated node-wide through the primary.
 */
import type { Config } from '../config/schema.ts';
import { createEdgeNode, type EdgeNode } from '../edge-node.ts';
import { parseTicketKeys } from '../http/ticket-keys.ts';
import { createLogger } from '../observability/logger.ts';
import { RATE_SYNC_MS, RateShare } from '../security/rate-share.ts';
import { ClusterCollapseTable, processChannel } from './cluster-collapse.ts';
import { leave } from './leave.ts';
import {
  CONFIG_ENV,
  isStrataMessage,
  type MetricsReplyMessage,
  type PrimaryMessage,
  sendToPrimary,
  TICKET_KEYS_ENV,
} from './protocol.ts';

/** Access times noted by hits are written for eviction order this often (the primary evicts). */
const ACCESS_FLUSH_MS = 2000;

/**
 * Ends the worker at once. process.exit joins libuv's threads, and an lmdb-js writer thread
 * waiting for a callback on this thread (a store that did not close) never lets it: a worker
 * orphaned by a killed primary hung there, holding its clients' connections, for as long as
 * anyone waited. LMDB keeps what was committed through a kill.
 */
function exitHard(): never {
  process.kill(process.pid, 'SIGKILL');
  throw new Error('unreachable');
}

/** The drain deadline (edge-node.ts, 10 s) and a margin for closing the store and the logs. */
const WORKER_EXIT_MS = 20_000;

export async function runWorker(): Promise<void> {
  const config = JSON.parse(process.env[CONFIG_ENV] ?? 'null') as Config | null;
  if (config === null) throw new Error(`${CONFIG_ENV} is not set: this file runs as a cluster worker`);
  const log = createLogger({ level: config.logging.level, flushInterval: config.logging.flushInterval });
  const collapse = new ClusterCollapseTable(config.cache.hitForPass, Date.now, processChannel(), 30_000);
  const rateShare = new RateShare();
  const ticketKeys = parseTicketKeys(process.env[TICKET_KEYS_ENV]);
  // The supervisor stops a worker that has not said it is ready with SIGTERM (supervisor.ts): one
  // that arrives while the node opens is taken once it is open, and drains what its listeners
  // may already have accepted. The primary drains every worker itself; a terminal's Ctrl-C
  // reaches the whole group.
  let stop: ((why: string) => Promise<void>) | undefined;
  let asked: string | undefined;
  const ask = (why: string): void => {
    if (stop) void stop(why);
    else asked ??= why;
  };
  process.on('SIGTERM', () => ask('SIGTERM'));
  process.on('SIGINT', () => {});
  const node = await createEdgeNode({
    config,
    logger: log,
    upkeep: false,
    collapse,
    rateShare,
    ...(ticketKeys ? { ticketKeys } : {}),
  });
  // What this worker admitted per rate-limit key, reported for the node-wide buckets.
  const rateSync = setInterval(() => {
    const reports = rateShare.drain();
    if (reports.length > 0) sendToPrimary({ strata: 'rate-counts', reports });
  }, RATE_SYNC_MS);
  rateSync.unref();
  collapse.timeoutMs = node.edge.collapseTimeoutMs;
  collapse.attach(node.store);
  const flush = setInterval(() => {
    node.store.flushAccess().catch((error: unknown) => log.warn({ err: error }, 'access time flush failed'));
  }, ACCESS_FLUSH_MS);
  flush.unref();
  let stopping: Promise<void> | undefined;
  stop = (why: string): Promise<void> => {
    stopping ??= (async () => {
      log.info({ why }, 'worker draining');
      // A close that never ends (a store that cannot be closed, a stuck handle) must not leave an
      // orphaned worker behind once its primary is gone: past the drain deadline and a margin,
      // the worker exits anyway. Unreferenced: it never keeps a finished worker alive.
      setTimeout(() => {
        log.error({ why }, 'worker did not close within its drain deadline; exiting');
        log.flush();
        exitHard();
      }, WORKER_EXIT_MS).unref();
      clearInterval(flush);
      clearInterval(rateSync);
      await node.close();
      // Every connection the primary handed over was taken or given back (leave.ts).
      await leave({ connected: process.connected, send: sendToPrimary, events: process });
      // Handovers read with the echo reach node:cluster a tick later: let them be answered.
      await new Promise((resolve) => setImmediate(resolve));
      if (!node.store.environmentClosed) {
        log.error({ why }, 'cache environment did not close; exiting without waiting for it');
        log.flush();
        exitHard();
      }
      process.exit(0);
    })();
    return stopping;
  };
  process.on('message', (message: unknown) => {
    if (!isStrataMessage<PrimaryMessage>(message)) return;
    if (message.strata === 'shutdown') ask('primary asked');
    else if (message.strata === 'metrics?') void replyMetrics(node, message.id);
    else if (message.strata === 'rate-over') rateShare.apply(message.over);
    else if (message.strata === 'origin-health')
      for (const origin of message.origins)
        node.originEvents.applyHealth(origin.name, origin.verdict, origin.ms);
    else if (message.strata === 'origin-ejected') node.originEvents.applyEjection(message.origin, message.ms);
    else if (message.strata === 'ticket-keys') {
      const keys = parseTicketKeys(message.keys);
      if (keys) node.setTicketKeys(keys);
    }
  });
  process.on('SIGUSR1', () => node.reopenLogs());
  process.on('disconnect', () => ask('primary gone'));
  if (asked !== undefined) return ask(asked); // stopped while starting: never says it is ready
  // An ejection decided here is told to the other workers, through the primary.
  node.originEvents.onEjected((origin, ms) => sendToPrimary({ strata: 'origin-ejected', origin, ms }));
  node.store.onWriteState((failing, reason) =>
    sendToPrimary({ strata: 'store-state', failing, ...(reason ? { reason } : {}) }),
  );
  sendToPrimary({ strata: 'ready', addresses: node.addresses, bodies: node.store.bodyIdPrefix });
}

async function replyMetrics(node: EdgeNode, id: number): Promise<void> {
  const metrics = await node.metrics.registry.getMetricsAsJSON();
  const reply: MetricsReplyMessage = { strata: 'metrics', id, metrics };
  sendToPrimary(reply);
}
