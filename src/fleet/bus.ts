/**
 * The fleet bus of one node (`fleet.nats`): one NATS connection, the publisher of this node's
 * purges, its durable consumer of everyone's (bound only while the node holds its name on the
 * bus: presence.ts), the readiness that waits for the replay, and the shared-configuration watch.
 * Runs in the process that runs store upkeep (with workers: the primary, which also applies
 * purges for every worker), once per node.
 *
 * Nothing waits for the bus: the node serves and purges locally whether it is up or not.
 */
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { CacheStore } from '../cache/store.ts';
import type { FleetConfig } from '../config/fleet-schema.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { PurgeService } from '../purge/service.ts';
import { within } from '../within.ts';
import { CatchUp, type CatchUpState } from './catch-up.ts';
import { type ApplyOutcome, ConfigWatch, type FleetConfigState } from './config-watch.ts';
import { BusConnection, connectionOptions } from './connection.ts';
import { BusConsumer } from './consumer.ts';
import { Presence, type PresenceState } from './presence.ts';
import { BusPublisher } from './publisher.ts';
import type { FleetSections } from './sections.ts';

export interface FleetBusOptions {
  fleet: FleetConfig;
  /** tiers.id, the default name of this node on the bus. */
  tierId: string | undefined;
  purge: PurgeService;
  store: CacheStore;
  logger: Logger;
  metrics: Metrics;
  now: () => number;
  retry: { initial: number; max: number };
  /** Validates and applies shared configuration (required when fleet.config is set). */
  applyConfig?: (sections: FleetSections | undefined) => ApplyOutcome;
}

export interface FleetStats {
  node: string;
  connected: boolean;
  stream: string;
  ready: CatchUpState;
  /** Stream sequence through which purges are applied here. */
  applied: number;
  catchUp: { target: number | undefined; tookMs: number | undefined };
  consumed: Record<string, number>;
  published: number;
  /** Purge-log entries the stream has not acknowledged yet. */
  publishPending: number;
  lastError: string | undefined;
  /** Whether this node holds its name (and so consumes), else the other live node holding it. */
  presence: PresenceState;
  config: FleetConfigState | undefined;
}

/** Longest wait for the bus's parts to stop at shutdown. */
const STOP_MS = 5000;
/** After STOP_MS, the bound of giving the name back before the connection closes. */
const GIVE_BACK_MS = 1000;

/** The durable consumer's name: fleet.node, else tiers.id, else the cache's persisted id. */
export function busNodeName(fleet: FleetConfig, tierId: string | undefined, nodeId: string): string {
  if (fleet.node !== undefined) return fleet.node;
  if (tierId !== undefined) return tierId.replaceAll('.', '_');
  return `node-${nodeId}`;
}

export class FleetBus {
  readonly name: string;
  readonly #options: FleetBusOptions;
  readonly #connection: BusConnection;
  readonly #catchUp: CatchUp;
  readonly #consumer: BusConsumer;
  readonly #publisher: BusPublisher;
  readonly #presence: Presence;
  readonly #config: ConfigWatch | undefined;

  constructor(options: FleetBusOptions) {
    this.#options = options;
    const { fleet, purge, logger, metrics } = options;
    this.name = busNodeName(fleet, options.tierId, purge.nodeId);
    const log = logger.child({ bus: this.name });
    this.#catchUp = new CatchUp(fleet.readiness.catchUpTimeout);
    this.#connection = new BusConnection(connectionOptions(fleet.nats, `strata ${this.name}`), log);
    this.#consumer = new BusConsumer({
      fleet,
      name: this.name,
      purge,
      store: options.store,
      catchUp: this.#catchUp,
      log,
      now: options.now,
      onMessage: (outcome, lagMs) => {
        metrics.fleetConsumed.labels(outcome).inc();
        if (lagMs !== undefined) metrics.fleetPurgeLag.observe(lagMs / 1000);
      },
    });
    this.#presence = new Presence({
      bucket: fleet.presence.bucket,
      stream: fleet.stream,
      name: this.name,
      nodeId: purge.nodeId,
      intervalMs: fleet.presence.interval,
      log,
      onHold: (held) => {
        metrics.fleetConsuming.set(held ? 1 : 0);
        this.#consumer.hold(held);
      },
    });
    this.#publisher = new BusPublisher({
      fleet,
      log: purge.log,
      nodeId: purge.nodeId,
      logger: log,
      retry: options.retry,
      onPublished: (count) => metrics.fleetPublished.inc(count),
    });
    if (fleet.config !== undefined) {
      if (options.applyConfig === undefined) throw new Error('fleet.config needs applyConfig');
      this.#config = new ConfigWatch({
        bucket: fleet.config.bucket,
        key: fleet.config.key,
        log,
        now: options.now,
        apply: options.applyConfig,
        onOutcome: (outcome) => {
          metrics.fleetConfigUpdates.labels(outcome).inc();
          metrics.fleetConfigRevision.set(this.#config?.state.inForce ?? 0);
        },
      });
    }
    metrics.fleetConnected.set(0);
    metrics.fleetConsuming.set(0);
    this.#connection.onChange((up) => {
      metrics.fleetConnected.set(up ? 1 : 0);
      if (up) {
        this.#publisher.wake();
        this.#presence.wake(); // its name first: another node may have taken it meanwhile
      }
    });
  }

  start(): void {
    void this.#connection.opened.then((nc) => {
      if (nc !== undefined) this.#started(nc);
    });
  }

  #started(nc: NatsConnection): void {
    const js = jetstream(nc);
    void jetstreamManager(nc, { checkAPI: false }).then(
      (jsm) => {
        this.#consumer.start(jsm, js); // consumes once the name is held
        this.#presence.start(nc);
        this.#publisher.start(js, () => nc.info?.max_payload ?? 1024 * 1024);
        this.#config?.start(nc);
      },
      (error: unknown) => this.#options.logger.error({ err: error }, 'purge bus: JetStream unavailable'),
    );
  }

  /** A purge was appended to the log: publish it now. */
  wake(): void {
    this.#publisher.wake();
  }

  /** The lowest purge-log sequence the bus still needs (the log is not trimmed past it). */
  get delivered(): number {
    return this.#publisher.delivered;
  }

  /** Ready once the replay at start is done (and the shared configuration's value seen). */
  ready(): CatchUpState {
    const purges = this.#withCause(this.#catchUp.state());
    if (!purges.ready || this.#config === undefined || this.#config.initialised) return purges;
    if (this.#catchUp.expired)
      return {
        ready: true,
        reason: purges.reason ?? 'shared configuration not read yet: the file’s is in force',
      };
    return { ready: false, reason: 'waiting for the shared configuration' };
  }

  /**
   * A bus never reached: the readiness reason says why the connection failed (a wrong token...).
   * Reached, but the stream or consumer cannot be set up (another stream holds the subject...):
   * that, with the server's reason, rather than an outage.
   */
  #withCause(state: CatchUpState): CatchUpState {
    const conflict = this.#presence.conflict;
    if (conflict !== undefined) return { ...state, reason: conflict };
    if (this.#catchUp.target !== undefined || state.reason === undefined) return state;
    const setUp = this.#connection.connected ? this.#consumer.lastError : undefined;
    if (setUp !== undefined) {
      const stream = this.#options.fleet.stream;
      const what = `purge bus reached, but stream ${stream} or this node's consumer cannot be set up: ${setUp}`;
      return { ...state, reason: state.ready ? `${what}; purges published meanwhile are not applied` : what };
    }
    const cause = this.#connection.lastError;
    if (cause === undefined) return state;
    return { ...state, reason: `${state.reason} (last attempt: ${cause})` };
  }

  /** For /healthz (no token): another live node holds this node's name, so it misses purges. */
  get problem(): string | undefined {
    if (this.#presence.conflict === undefined) return undefined;
    return `fleet.node "${this.name}" is held by another live node: this node does not receive the fleet's purges (see /stats fleet.presence)`;
  }

  stats(): FleetStats {
    this.#options.metrics.fleetPublishPending.set(this.#publisher.pending);
    return {
      node: this.name,
      connected: this.#connection.connected,
      stream: this.#options.fleet.stream,
      ready: this.ready(),
      applied: this.#consumer.handled,
      catchUp: { target: this.#catchUp.target, tookMs: this.#catchUp.tookMs },
      consumed: { ...this.#consumer.counts },
      published: this.#publisher.published,
      publishPending: this.#publisher.pending,
      // The consumer's first: a stream it cannot set up is also why publishing fails.
      lastError:
        this.#presence.conflict ??
        this.#consumer.lastError ??
        this.#publisher.lastError ??
        this.#presence.error,
      presence: this.#presence.state(),
      config: this.#config ? { ...this.#config.state } : undefined,
    };
  }

  /**
   * Stops publishing, consuming and watching, then closes the connection. Bounded: a part that
   * does not stop within STOP_MS (a JetStream call waiting on a server that went away) does not
   * hold the node's shutdown; the connection is closed under it. What was not acknowledged is
   * delivered again to the next start.
   */
  async stop(): Promise<void> {
    // The name is given back once the consumer has stopped: the next node under it starts at once.
    const consumer = this.#consumer.stop().catch((error: unknown) => {
      this.#options.logger.warn({ err: error }, 'purge bus consumer did not stop cleanly');
    });
    const parts = [this.#publisher.stop(), consumer.then(() => this.#presence.stop()), this.#config?.stop()];
    const stopped = await within(Promise.all(parts), performance.now() + STOP_MS);
    if (!stopped) {
      this.#options.logger.warn({ ms: STOP_MS }, 'purge bus did not stop in time; closing its connection');
      // Its connection closing ends the consumer: the name is given back before, not left to be
      // waited out by the next node under it (nor refreshed on by a loop nobody stops).
      await within(this.#presence.stop(), performance.now() + GIVE_BACK_MS);
    }
    await this.#connection.close();
  }
}
