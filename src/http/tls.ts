/**
 * Certificates of a TLS listener: the default pair, and pairs chosen by the server name a
 * client asks for (SNI: exact names first, then `*.example.com` wildcards of one label).
 *
 * - SNI contexts are built on first use, so a thousand configured names cost a map entry each
 *   at start and memory only for the names clients ask for. A pair that fails then is told
 *   (`onFailure`) and its names get the default certificate.
 * - `reload()` reads every pair in use again (the default one, and the SNI ones built so far);
 *   a pair that does not load (unreadable, not PEM, key and certificate disagree) keeps the one
 *   in use and is reported with why. Connections already open keep their session.
 * - Session ticket keys are set on every context alike (a worker's keys come from the primary,
 *   so a ticket issued by one worker resumes on another).
 */

import { X509Certificate } from 'node:crypto';
import { type FSWatcher, readFileSync, watch } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';

/** TLS 1.2 suites offered (TLS 1.3 uses OpenSSL's defaults, all AEAD): forward secret AEAD only. */
export const TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/** What every context of a listener shares. */
export const TLS_OPTIONS = {
  minVersion: 'TLSv1.2',
  ciphers: TLS12_CIPHERS,
  honorCipherOrder: true,
} as const satisfies SecureContextOptions;

export interface CertificatePair {
  cert: string;
  key: string;
}

export interface SniPair extends CertificatePair {
  hosts: readonly string[];
}

export interface ReloadProblem {
  /** The certificate file of the pair that was kept. */
  cert: string;
  reason: string;
}

export interface ReloadReport {
  /** Pairs read again and now in use. */
  reloaded: number;
  /** Pairs that failed to load: the previous one stays in use. */
  kept: ReloadProblem[];
}

interface Entry {
  readonly pair: CertificatePair;
  context: SecureContext | undefined;
  /** Why the pair failed to load on first use (kept so a bad pair is not read per handshake). */
  failed: string | undefined;
}

/** Why a certificate (its leaf, the first in the file) is not valid at `now`, or undefined. */
export function outOfDate(leaf: X509Certificate, now: number): string | undefined {
  if (leaf.validToDate.getTime() < now) return `expired on ${leaf.validToDate.toISOString()}`;
  if (leaf.validFromDate.getTime() > now) return `not valid before ${leaf.validFromDate.toISOString()}`;
  return undefined;
}

/**
 * Loads a pair into a secure context; throws with the reason when it does not load. A pair out
 * of its validity period loads (clients that do not check dates still connect) and says why
 * in `outOfDate`.
 */
export function loadPair(pair: CertificatePair): {
  context: SecureContext;
  options: SecureContextOptions;
  outOfDate: string | undefined;
} {
  const cert = readFileSync(pair.cert);
  const key = readFileSync(pair.key);
  // Parsing the leaf first names a broken certificate better than OpenSSL's "no start line".
  const leaf = new X509Certificate(cert);
  const options: SecureContextOptions = { ...TLS_OPTIONS, cert, key };
  return { context: createSecureContext(options), options, outOfDate: outOfDate(leaf, Date.now()) };
}

export class CertificateStore {
  readonly #exact = new Map<string, Entry>();
  readonly #wildcard = new Map<string, Entry>();
  readonly #entries: Entry[] = [];
  readonly #defaultPair: CertificatePair;
  #defaultOptions: SecureContextOptions;
  #ticketKeys: Buffer | undefined;
  /** Called with the default pair's options when it changed (the server builds its context from them). */
  onDefault: ((options: SecureContextOptions) => void) | undefined;
  /**
   * Told when an SNI pair fails to load on first use (its name gets the default certificate
   * until a reload reads it again): once per failure, not per handshake.
   */
  onFailure: ((servername: string, problem: ReloadProblem) => void) | undefined;
  /** Told of every pair loaded (at start, on first use, on reload) that is out of its validity period. */
  readonly #onOutOfDate: ((problem: ReloadProblem) => void) | undefined;

  /** Throws when the default pair does not load: a listener never starts without a certificate. */
  constructor(
    defaultPair: CertificatePair,
    sni: readonly SniPair[],
    onOutOfDate?: (problem: ReloadProblem) => void,
  ) {
    this.#defaultPair = defaultPair;
    this.#onOutOfDate = onOutOfDate;
    this.#defaultOptions = this.#load(defaultPair).options;
    for (const item of sni) {
      const entry: Entry = {
        pair: { cert: item.cert, key: item.key },
        context: undefined,
        failed: undefined,
      };
      this.#entries.push(entry);
      for (const host of item.hosts) {
        const name = host.toLowerCase();
        const table = name.startsWith('*.') ? this.#wildcard : this.#exact;
        const at = name.startsWith('*.') ? name.slice(1) : name;
        if (!table.has(at)) table.set(at, entry);
      }
    }
  }

  /** Options of the default context (certificate, key and the shared TLS settings). */
  get defaultOptions(): SecureContextOptions {
    return this.#defaultOptions;
  }

  /** Contexts built so far (SNI names in use), for tests and metrics. */
  get built(): number {
    let count = 0;
    for (const entry of this.#entries) if (entry.context) count++;
    return count;
  }

  /**
   * The context for a server name, or undefined for the default one. node:tls calls this
   * once per handshake that carries SNI.
   */
  contextFor(servername: string): SecureContext | undefined {
    const name = servername.toLowerCase();
    let entry = this.#exact.get(name);
    if (entry === undefined) {
      const dot = name.indexOf('.');
      if (dot > 0) entry = this.#wildcard.get(name.slice(dot));
    }
    if (entry === undefined) return undefined;
    if (entry.context === undefined && entry.failed === undefined) {
      this.#build(entry);
      if (entry.failed !== undefined) this.onFailure?.(name, { cert: entry.pair.cert, reason: entry.failed });
    }
    return entry.context;
  }

  /** For `SNICallback`: unknown names and pairs that fail get the default certificate. */
  readonly sniCallback = (
    servername: string,
    done: (error: Error | null, context?: SecureContext) => void,
  ) => {
    done(null, this.contextFor(servername));
  };

  /** Session ticket keys (48 bytes) for every context, present and future. */
  setTicketKeys(keys: Buffer): void {
    this.#ticketKeys = keys;
    for (const entry of this.#entries) entry.context?.context.setTicketKeys(keys);
  }

  get ticketKeys(): Buffer | undefined {
    return this.#ticketKeys;
  }

  /** Reads every pair in use again; see the module comment. */
  reload(): ReloadReport {
    const report: ReloadReport = { reloaded: 0, kept: [] };
    try {
      const next = this.#load(this.#defaultPair).options;
      this.#defaultOptions = next;
      this.onDefault?.(next);
      report.reloaded++;
    } catch (error) {
      report.kept.push({ cert: this.#defaultPair.cert, reason: (error as Error).message });
    }
    for (const entry of this.#entries) {
      if (entry.context === undefined && entry.failed === undefined) continue; // never used: read on first use
      const before = entry.context;
      entry.failed = undefined;
      this.#build(entry);
      if (entry.failed !== undefined) {
        report.kept.push({ cert: entry.pair.cert, reason: entry.failed });
        if (before) {
          entry.context = before;
          entry.failed = undefined;
        }
      } else report.reloaded++;
    }
    return report;
  }

  /** Every file a pair is read from (for watching). */
  files(): string[] {
    const files = new Set([this.#defaultPair.cert, this.#defaultPair.key]);
    for (const entry of this.#entries) {
      files.add(entry.pair.cert);
      files.add(entry.pair.key);
    }
    return [...files].map((file) => resolve(file));
  }

  #load(pair: CertificatePair): ReturnType<typeof loadPair> {
    const loaded = loadPair(pair);
    if (loaded.outOfDate !== undefined) this.#onOutOfDate?.({ cert: pair.cert, reason: loaded.outOfDate });
    return loaded;
  }

  #build(entry: Entry): void {
    try {
      const { context } = this.#load(entry.pair);
      if (this.#ticketKeys) context.context.setTicketKeys(this.#ticketKeys);
      entry.context = context;
    } catch (error) {
      entry.failed = (error as Error).message;
    }
  }
}

/**
 * Calls `onChange` (debounced by `delayMs`) when a file in `files` is written, replaced or
 * renamed. Directories are watched rather than files, so a pair replaced by a rename (as
 * certificate tools do) is seen too. Returns a function that stops watching.
 */
export function watchFiles(files: readonly string[], onChange: () => void, delayMs = 100): () => void {
  const byDir = new Map<string, Set<string>>();
  for (const file of files) {
    const dir = dirname(file);
    const names = byDir.get(dir) ?? new Set<string>();
    byDir.set(dir, names);
    names.add(basename(file));
  }
  let timer: NodeJS.Timeout | undefined;
  const schedule = () => {
    if (timer) timer.refresh();
    else {
      timer = setTimeout(() => {
        timer = undefined;
        onChange();
      }, delayMs);
      timer.unref();
    }
  };
  const watchers: FSWatcher[] = [];
  for (const [dir, names] of byDir) {
    try {
      const watcher = watch(dir, { persistent: false }, (_event, name) => {
        if (name === null || names.has(String(name))) schedule();
      });
      watcher.on('error', () => {});
      watchers.push(watcher);
    } catch {
      // A directory that cannot be watched: SIGHUP still reloads.
    }
  }
  return () => {
    if (timer) clearTimeout(timer);
    for (const watcher of watchers) watcher.close();
  };
}
