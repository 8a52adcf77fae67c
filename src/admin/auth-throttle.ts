/**
 * Failed admin tokens, counted per client (an IPv4 address, an IPv6 /64) in a fixed window:
 * past the limit, every call from that client is answered 429 until the window ends, so a token
 * cannot be guessed faster than `limit` tries per window. The table is bounded; expired windows
 * are dropped.
 */
import { clientKey } from '../security/gcra.ts';

/** Addresses tracked at most (an address past this is dropped oldest-first). */
const MAX_ADDRESSES = 10_000;

interface Window {
  start: number;
  failures: number;
}

export class AuthThrottle {
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #now: () => number;
  readonly #windows = new Map<string, Window>();

  constructor(limit: number, windowMs: number, now: () => number) {
    this.#limit = limit;
    this.#windowMs = windowMs;
    this.#now = now;
  }

  /** Seconds until `address` may try again, or 0 when it is not throttled. */
  retryAfter(address: string): number {
    const window = this.#current(clientKey(address));
    if (window === undefined || window.failures < this.#limit) return 0;
    return Math.max(1, Math.ceil((window.start + this.#windowMs - this.#now()) / 1000));
  }

  failed(address: string): void {
    const key = clientKey(address);
    const window = this.#current(key);
    if (window !== undefined) {
      window.failures++;
      return;
    }
    if (this.#windows.size >= MAX_ADDRESSES) this.#prune();
    this.#windows.set(key, { start: this.#now(), failures: 1 });
  }

  succeeded(address: string): void {
    this.#windows.delete(clientKey(address));
  }

  #current(address: string): Window | undefined {
    const window = this.#windows.get(address);
    if (window === undefined) return undefined;
    if (this.#now() - window.start < this.#windowMs) return window;
    this.#windows.delete(address);
    return undefined;
  }

  /**
   * Drops expired windows, else the oldest one. Windows are inserted as they start, so Map
   * order is start order: the expired ones are at the front, and the walk stops at the first
   * live one.
   */
  #prune(): void {
    const now = this.#now();
    for (const [address, window] of this.#windows) {
      if (now - window.start < this.#windowMs) break;
      this.#windows.delete(address);
    }
    if (this.#windows.size >= MAX_ADDRESSES) {
      const oldest = this.#windows.keys().next().value;
      if (oldest !== undefined) this.#windows.delete(oldest);
    }
  }
}
