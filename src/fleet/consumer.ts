/**
 * The node's durable consumer: every purge of the fleet, in stream order, applied through the
 * purge service and acknowledged only once its last write transaction is durable (so a crash
 * before the commit gets it delivered again).
 *
 * Once per node: a purge this node published itself was applied when its admin API accepted
 * it, and is acknowledged without applying it again. A purge delivered twice (an
 * acknowledgement lost, a restart) is recognised by its stream sequence: the purge service
 * remembers the last sequence it applied from the stream, as it does per peer
 * (`purgeFrom:<sender>`), and this consumer hands it purges strictly in stream order. A
 * delivery that skips sequences (messages lost in a reconnect or a crash come back only after
 * the ack wait, behind newer ones) has the missing ones read from the stream first, so the
 * order holds and no purge is passed over.
 */
import type {
  Consumer,
  ConsumerMessages,
  JetStreamClient,
  JetStreamManager,
  JsMsg,
  StreamInfo,
} from '@nats-io/jetstream';
import type { Logger } from 'pino';
import { META } from '../cache/meta-keys.ts';
import type { CacheStore } from '../cache/store.ts';
import type { FleetConfig } from '../config/fleet-schema.ts';
import type { PurgeOrigin } from '../purge/command.ts';
import { Pause } from '../purge/pause.ts';
import type { PurgeService } from '../purge/service.ts';
import type { CatchUp } from './catch-up.ts';
import { fits, merge } from './merge.ts';
import { type BusPurge, decodeBusPurge } from './message.ts';
import { ensureConsumer, ensureStream, MAX_ACK_PENDING, notFound } from './stream.ts';

export type ConsumedOutcome = 'applied' | 'own' | 'duplicate' | 'invalid';

export interface BusConsumerOptions {
  fleet: FleetConfig;
  /** Durable consumer name (this node's name on the bus). */
  name: string;
  purge: PurgeService;
  store: CacheStore;
  catchUp: CatchUp;
  log: Logger;
  now: () => number;
  /** Each message handled; `lagMs`: from acceptance at its node to applied here. */
  onMessage?: (outcome: ConsumedOutcome, lagMs: number | undefined) => void;
}

/** Pause before setting the consumer up again, or applying a failed purge again. */
const RETRY_MS = 1000;
/** How often a consuming node asks the server whether its consumer still exists. */
const PROBE_MS = 5000;
/** Consumer notifications that mean the consumer or its stream no longer exists. */
const GONE: ReadonlySet<string> = new Set(['consumer_deleted', 'consumer_not_found', 'stream_not_found']);
/** Most missing sequences read from the stream to fill one gap. */
const MAX_GAP = 100_000;

export class BusConsumer {
  readonly #options: BusConsumerOptions;
  #messages: ConsumerMessages | undefined;
  #stopped = false;
  /** This node holds its bus name (presence.ts): it may consume. */
  #held = false;
  #loop: Promise<void> | undefined;
  readonly #pause = new Pause();
  #jsm: JetStreamManager | undefined;
  /** The stream as the purge service knows it: name and creation time (a recreated stream starts again at 1). */
  #sender = '';
  /**
   * The stream's last sequence when this process first waited for its name: what another node
   * under it acknowledges past this was never applied here (read back when the name is taken).
   */
  #waitedFrom: { sender: string; sequence: number } | undefined;
  /** Every stream sequence up to this one is applied or known not to need applying. */
  #handled = 0;
  readonly counts: Record<ConsumedOutcome | 'failed', number> = {
    applied: 0,
    own: 0,
    duplicate: 0,
    invalid: 0,
    failed: 0,
  };
  lastError: string | undefined;

  constructor(options: BusConsumerOptions) {
    this.#options = options;
  }

  get handled(): number {
    return this.#handled;
  }

  start(jsm: JetStreamManager, js: JetStreamClient): void {
    this.#jsm = jsm;
    this.#loop ??= this.#run(jsm, js);
  }

  /**
   * Consume only while this node holds its name: another live node under it would share the
   * durable consumer, and each would get part of the purges. Losing it closes the messages.
   */
  hold(held: boolean): void {
    this.#held = held;
    if (!held) void this.#messages?.close().catch(() => {});
    this.#pause.wake();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#pause.wake();
    await this.#messages?.close().catch(() => {});
    await this.#loop;
    await this.#record();
  }

  /**
   * Persists how far this cache is with the stream, as the purge service does for each purge it
   * applies: a cache that applied none (only its own purges, or none at all) still resumes from
   * there after a restart, rather than from wherever that restart begins waiting for its name.
   */
  async #record(): Promise<void> {
    if (this.#sender === '') return;
    const key = `${META.purgeFromPrefix}${this.#sender}`;
    const store = this.#options.store;
    const recorded = store.readMeta(key) as number | undefined;
    if (recorded === undefined || this.#handled > recorded)
      await store.writeMeta(key, this.#handled).catch(() => false);
  }

  async #run(jsm: JetStreamManager, js: JetStreamClient): Promise<void> {
    const { log } = this.#options;
    for (let failures = 0; !this.#stopped; ) {
      if (!this.#held) {
        if (this.#waitedFrom === undefined)
          this.#waitedFrom = await ensureStream(jsm, this.#options.fleet).then(
            (stream) => ({ sender: senderOf(this.#options.fleet, stream), sequence: stream.state.last_seq }),
            () => undefined,
          );
        if (!this.#held) await this.#sleep(RETRY_MS);
        continue;
      }
      try {
        const consumer = await this.#setUp(jsm, js);
        failures = 0;
        this.lastError = undefined; // set up (again): what went wrong before is over
        await this.#consume(consumer);
      } catch (error) {
        if (this.#stopped) break;
        this.lastError = (error as Error).message;
        if (failures++ % 10 === 0) log.warn({ err: error }, 'purge bus consumer failed; setting it up again');
      }
      await this.#sleep(RETRY_MS);
    }
  }

  async #setUp(jsm: JetStreamManager, js: JetStreamClient): Promise<Consumer> {
    const { fleet, name, catchUp, store } = this.#options;
    const stream = await ensureStream(jsm, fleet);
    const sender = senderOf(fleet, stream);
    // A stream made anew (deleted and created again) numbers its messages from 1 again.
    if (sender !== this.#sender) this.#handled = 0;
    this.#sender = sender;
    const recorded = store.readMeta(`${META.purgeFromPrefix}${this.#sender}`) as number | undefined;
    const applied = recorded ?? 0;
    // A consumer made anew for a cache that applied purges of this very stream (the consumer
    // deleted, the node renamed) resumes after them: from now on, it would skip the rest.
    const info = await ensureConsumer(jsm, fleet, name, applied);
    // Made just now for a node new to this stream, which replays nothing: nothing it could have missed.
    const existed = info.madeNow !== true || applied > 0;
    const known = Math.max(this.#handled, applied);
    // Through here the consumer's purges are acknowledged. One made with DeliverPolicy.New
    // reports an ack floor of 0 until its first acknowledgement, though it starts after the
    // stream's last message: while it has delivered nothing, where it starts.
    const floor =
      info.delivered.consumer_seq === 0
        ? Math.max(info.ack_floor.stream_seq, info.delivered.stream_seq)
        : info.ack_floor.stream_seq;
    this.#handled = Math.max(known, floor);
    // Acknowledged by another live node under this name while this one waited for it, or while
    // it was down for a cache that followed this stream before: read back. Only a cache new to
    // the stream starts where this process began waiting.
    // Where this process began waiting, on this stream: one made anew since holds nothing older.
    const waited = this.#waitedFrom?.sender === sender ? this.#waitedFrom.sequence : 0;
    const since =
      this.#waitedFrom === undefined
        ? this.#handled
        : recorded !== undefined
          ? known
          : Math.max(known, waited);
    if (since < floor) {
      this.#options.log.warn(
        { from: since + 1, to: floor },
        'applying the purges the other node under this name took while this one waited',
      );
      this.#handled = since;
      await this.#fill(since + 1, floor);
    }
    // Purges the stream dropped (retention) after this node's last acknowledgement: lost to it.
    if (existed && stream.state.first_seq > this.#handled + 1)
      this.#lost(this.#handled + 1, stream.state.first_seq - 1);
    await this.#record();
    // What the stream holds that this node has not acknowledged: replayed before it is ready.
    const behind = info.num_pending + info.num_ack_pending > 0;
    catchUp.setTarget(behind ? stream.state.last_seq : 0);
    catchUp.handled(this.#handled);
    if (behind)
      this.#options.log.info(
        { pending: info.num_pending + info.num_ack_pending, through: stream.state.last_seq },
        'replaying purges published while this node was away',
      );
    return js.consumers.get(fleet.stream, name);
  }

  async #consume(consumer: Consumer): Promise<void> {
    const messages = await consumer.consume({ max_messages: Math.min(MAX_ACK_PENDING, 500) });
    this.#messages = messages;
    void this.#watch(messages);
    const probe = setInterval(() => void this.#probe(messages), PROBE_MS);
    probe.unref();
    // Messages wait here while a batch is applied (at most max_ack_pending: nothing is
    // acknowledged before it is applied); the next batch takes all of them.
    const queue: JsMsg[] = [];
    let draining: Promise<void> | undefined;
    const drain = async () => {
      while (queue.length > 0 && !this.#stopped) await this.#handleSome(queue);
    };
    let iterated = false;
    try {
      if (this.#stopped || !this.#held) return;
      iterated = true;
      for await (const message of messages) {
        queue.push(message);
        draining ??= drain().finally(() => {
          draining = undefined;
        });
        if (this.#stopped) break;
      }
      await draining;
    } finally {
      clearInterval(probe);
      const closed = messages.close().catch(() => {});
      // nats.js ends its messages from within their iteration: closed before any was read (a
      // stop, or the name lost, while the consumer was being set up), they are read to that end
      // here, or the close never resolves and this loop (and the node's stop) waits for ever.
      if (!iterated) {
        try {
          for await (const message of messages) queue.push(message);
        } catch {
          // Ended with an error (the connection closed under it): closed all the same.
        }
      }
      await closed;
      // Received but not applied (the node stopping): handed back at once, so the next node
      // under this name gets them now rather than after the ack wait.
      for (const message of queue.splice(0)) message.nak();
    }
  }

  /**
   * The consumer (or its stream) deleted is not always told: nats.js reports it when a pull
   * comes back refused, and a deletion between pulls went unseen for as long as the
   * connection stayed idle (15 s and more in the tests, beside a busy machine). Asked every
   * PROBE_MS: gone, the messages are closed and #run sets both up again.
   */
  async #probe(messages: ConsumerMessages): Promise<void> {
    if (this.#stopped || this.#jsm === undefined) return;
    const { fleet, name } = this.#options;
    try {
      await this.#jsm.consumers.info(fleet.stream, name);
    } catch (error) {
      if (!notFound(error) || this.#stopped || this.#messages !== messages) return;
      this.lastError = 'the purge bus consumer is gone: setting it up again';
      this.#options.log.warn({ err: error }, 'purge bus consumer gone; setting it up again');
      await messages.close().catch(() => {});
    }
  }

  /**
   * Ends the consume loop when the consumer or its stream is gone (deleted, or lost with the
   * server's storage): nats.js would wait for it for ever, while purges published to a stream
   * made anew never reached this node. #run then sets both up again (a stream made anew is
   * numbered from 1: its sender changes, see #setUp).
   */
  async #watch(messages: ConsumerMessages): Promise<void> {
    try {
      for await (const event of messages.status()) {
        if (!GONE.has(event.type)) continue;
        this.lastError = `the purge bus consumer is gone (${event.type}): setting it up again`;
        this.#options.log.warn({ event: event.type }, 'purge bus consumer gone; setting it up again');
        await messages.close().catch(() => {});
        return;
      }
    } catch {
      // the messages were closed: nothing to watch
    }
  }

  /**
   * Takes messages off the front of `queue`: those already handled are acknowledged; the next
   * run of purges of one kind is applied as one (merge.ts) and then acknowledged. A skipped
   * sequence has the missing purges read from the stream first.
   */
  async #handleSome(queue: JsMsg[]): Promise<void> {
    const batch: Array<{ message: JsMsg; purge: BusPurge }> = [];
    /** Deliveries again of a purge in the batch: acknowledged with it. */
    const again: JsMsg[] = [];
    let next = this.#handled + 1;
    while (queue.length > 0) {
      const message = queue[0]!;
      const sequence = message.seq;
      if (sequence < next) {
        queue.shift();
        this.#count('duplicate', undefined);
        if (sequence <= this.#handled) message.ack();
        else again.push(message);
        continue;
      }
      if (sequence > next && (this.#handled > 0 || batch.length > 0)) {
        if (batch.length > 0) break; // the batch first, then the gap
        await this.#fill(next, sequence - 1);
        next = this.#handled + 1;
        continue;
      }
      const decoded = this.#decode(message.data);
      if (typeof decoded === 'string') {
        if (batch.length > 0) break; // the batch first
        queue.shift();
        message.ack();
        this.#skip(sequence, decoded);
        next = sequence + 1;
        continue;
      }
      if (
        !fits(
          batch.map((item) => item.purge.command),
          decoded.command,
        )
      )
        break;
      queue.shift();
      batch.push({ message, purge: decoded });
      next = sequence + 1;
    }
    if (batch.length === 0) return;
    await this.#applyBatch(batch.map((item) => ({ sequence: item.message.seq, purge: item.purge })));
    for (const { message } of batch) message.ack();
    for (const message of again) message.ack();
  }

  /** Purges that left the stream before this node applied them: logged, and kept in readiness. */
  #lost(from: number, to: number): void {
    this.#options.log.error({ from, to }, 'purges left the stream (retention) before this node applied them');
    this.#options.catchUp.missed(from, to);
  }

  /** Reads missing sequences from the stream and applies them, in order. */
  async #fill(from: number, to: number): Promise<void> {
    const jsm = this.#jsm!;
    const { fleet, log } = this.#options;
    const first = (await jsm.streams.info(fleet.stream)).state.first_seq;
    if (first > from) {
      this.#lost(from, Math.min(to, first - 1));
      from = first;
    }
    if (to - from + 1 > MAX_GAP) {
      log.error({ from, to: to - MAX_GAP }, 'too many purges missing: the oldest are skipped');
      from = to - MAX_GAP + 1;
    }
    for (let sequence = from; sequence <= to && !this.#stopped; sequence++) {
      const stored = await jsm.streams.getMessage(fleet.stream, { seq: sequence }).catch(() => null);
      if (stored === null) continue;
      const decoded = this.#decode(stored.data);
      if (typeof decoded === 'string') this.#skip(sequence, decoded);
      else await this.#applyBatch([{ sequence, purge: decoded }]);
    }
    if (!this.#stopped && this.#handled < to) this.#handled = to;
  }

  /**
   * The purge a message carries, or why it needs no applying here: not a purge (logged), or
   * this node's own (applied when it was accepted).
   */
  #decode(data: Uint8Array): BusPurge | 'invalid' | 'own' {
    const decoded = decodeBusPurge(data);
    if (!decoded.ok) return 'invalid';
    return decoded.purge.node === this.#options.purge.nodeId ? 'own' : decoded.purge;
  }

  #skip(sequence: number, outcome: 'invalid' | 'own'): void {
    if (outcome === 'invalid') this.#options.log.error({ sequence }, 'bus message is not a purge: skipped');
    this.#handled = sequence;
    this.#count(outcome, undefined);
  }

  /** Applies purges as one (retried until it succeeds: later ones wait behind it). */
  async #applyBatch(batch: Array<{ sequence: number; purge: BusPurge }>): Promise<void> {
    const { purge, log } = this.#options;
    const last = batch.at(-1)!;
    const command = merge(batch.map((item) => item.purge.command));
    for (let attempt = 1; ; attempt++) {
      try {
        await purge.purge(command, {
          node: this.#sender,
          sequence: last.sequence,
          path: [last.purge.node],
          ...originsOf(batch),
        });
        if (attempt > 1) this.lastError = undefined; // applied at last: the failure is over
        break;
      } catch (error) {
        this.lastError = (error as Error).message;
        this.counts.failed++;
        if (attempt === 1 || attempt % 10 === 0)
          log.error(
            { err: error, sequence: last.sequence, attempt },
            'purge from the bus failed; trying again',
          );
        if (this.#stopped) throw error;
        await this.#sleep(RETRY_MS);
      }
    }
    this.#handled = last.sequence;
    const now = this.#options.now();
    for (const item of batch) this.#count('applied', Math.max(0, now - item.purge.at));
  }

  #count(outcome: ConsumedOutcome, lagMs: number | undefined): void {
    this.counts[outcome]++;
    this.#options.catchUp.handled(this.#handled);
    this.#options.onMessage?.(outcome, lagMs);
  }

  #sleep(ms: number): Promise<void> {
    return this.#stopped ? Promise.resolve() : this.#pause.sleep(ms);
  }
}

/** The stream as the purge service knows it: a stream made anew is another sender, numbered from 1. */
function senderOf(fleet: FleetConfig, stream: StreamInfo): string {
  return `bus:${fleet.stream}@${stream.created}`;
}

/**
 * The fleet identity of a batch of bus purges: each publishing node with the highest of its
 * sequences in the batch (the purge fence names them, docs/tiers.md), the first as the
 * purge's origin and the others as the origins it covers.
 */
function originsOf(batch: ReadonlyArray<{ purge: BusPurge }>): {
  origin: PurgeOrigin;
  covers?: PurgeOrigin[];
} {
  const highest = new Map<string, number>();
  for (const { purge } of batch)
    highest.set(purge.node, Math.max(highest.get(purge.node) ?? 0, purge.sequence));
  const [origin, ...covers] = [...highest].map(([node, sequence]) => ({ node, sequence }));
  return covers.length > 0 ? { origin: origin!, covers } : { origin: origin! };
}
