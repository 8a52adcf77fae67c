/** An injected clock: tests move time forward instead of sleeping. */
export interface TestClock {
  now: () => number;
  advance(seconds: number): void;
}

export function createClock(start = Date.UTC(2026, 0, 1, 12, 0, 0)): TestClock {
  let current = start;
  return {
    now: () => current,
    advance(seconds: number) {
      current += seconds * 1000;
    },
  };
}
