/**
 * Runs the suite's own client (http-cache-tests/client) against a base URL, in this process,
 * with node-fetch as the suite's command-line client uses. Every request is bounded in time and
 * so is the whole run; a run cut short leaves the unfinished tests without a result.
 */
import { getResults, runTests } from 'http-cache-tests/client/runner.mjs';
import tests from 'http-cache-tests/tests/index.mjs';
import surrogate from 'http-cache-tests/tests/surrogate-control.mjs';
import nodeFetch from 'node-fetch';
import type { RawResult, SuiteSection } from './types.ts';

/** The sections the suite's command-line client runs: the index plus Surrogate-Control. */
export function suiteSections(): SuiteSection[] {
  return [...(tests as SuiteSection[]), surrogate as SuiteSection];
}

export interface ClientOptions {
  baseUrl: string;
  /** Run only this test, printing its requests and responses (the suite's `--id`). */
  onlyId?: string;
  requestTimeoutMs: number;
  runTimeoutMs: number;
}

export interface ClientRun {
  results: Record<string, RawResult>;
  timedOut: boolean;
  ms: number;
}

function selectSections(sections: SuiteSection[], onlyId: string | undefined): SuiteSection[] {
  if (onlyId === undefined) return sections;
  const picked: SuiteSection[] = [];
  for (const section of sections) {
    const test = section.tests.find((candidate) => candidate.id === onlyId);
    if (test) picked.push({ ...section, tests: [{ ...test, dump: true }] });
  }
  if (picked.length === 0) throw new Error(`no suite test with id ${onlyId}`);
  return picked;
}

export async function runSuiteClient(sections: SuiteSection[], options: ClientOptions): Promise<ClientRun> {
  const started = Date.now();
  const boundedFetch = (url: string, init: Record<string, unknown>): Promise<unknown> =>
    nodeFetch(url, { ...init, signal: AbortSignal.timeout(options.requestTimeoutMs) });
  let timer: NodeJS.Timeout | undefined;
  const cutOff = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), options.runTimeoutMs);
  });
  const run = runTests(selectSections(sections, options.onlyId), boundedFetch, false, options.baseUrl).then(
    () => 'done' as const,
  );
  const how = await Promise.race([run, cutOff]);
  clearTimeout(timer);
  return {
    results: { ...(getResults() as Record<string, RawResult>) },
    timedOut: how === 'timeout',
    ms: Date.now() - started,
  };
}
