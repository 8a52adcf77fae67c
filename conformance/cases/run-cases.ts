/**
 * Runs the case table: for each case a fresh scripted origin, fresh Strata node(s) with empty
 * cache directories, then its steps in order. A case fails at its first unmet expectation.
 */
import { mkdirSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { ADMIN_TOKEN, StrataNode } from '../lib/strata-node.ts';
import { type CacheStatusMember, parseCacheStatus } from './cache-status.ts';
import { ScriptedOrigin } from './origin.ts';
import type { CacheStatusExpect, Case, ResponseExpect, Step } from './types.ts';

const REQUEST_TIMEOUT_MS = 10_000;
const CASE_TIMEOUT_MS = 30_000;
/** The Host every case request names, as clients of one site do whichever tier they reach. */
export const SITE = 'strata.test';

export type CaseOutcome = 'pass' | 'fail' | 'pending';

export interface CaseResult {
  id: string;
  title: string;
  rfc: string;
  outcome: CaseOutcome;
  detail: string;
  ms: number;
}

interface Topology {
  /** The node the client talks to. */
  edge: StrataNode;
  /** In two tiers, the node between the edge and the origin. */
  shield?: StrataNode;
  nodes: StrataNode[];
}

interface Answer {
  status: number;
  headers: Headers;
  body: string;
  /** Interim (1xx) responses received before the final one: status and Link. */
  interim: Array<{ status: number; link: string | undefined }>;
}

class CaseFailure extends Error {}

function check(condition: boolean, message: string): void {
  if (!condition) throw new CaseFailure(message);
}

/**
 * One request with node:http, so the Host header can be set: every case request names the same
 * site (`strata.test`), as clients of a real edge do, whichever tier it reaches.
 */
function send(
  baseUrl: string,
  path: string,
  method: string,
  headers: Record<string, string>,
): Promise<Answer> {
  const url = new URL(path, baseUrl);
  const interim: Answer['interim'] = [];
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname + url.search,
        method,
        headers: { host: SITE, ...headers },
        agent: false,
        timeout: REQUEST_TIMEOUT_MS,
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          const answerHeaders = new Headers();
          for (const [name, value] of Object.entries(response.headers)) {
            if (value === undefined) continue;
            for (const item of Array.isArray(value) ? value : [value]) answerHeaders.append(name, item);
          }
          resolve({
            status: response.statusCode ?? 0,
            headers: answerHeaders,
            body: Buffer.concat(chunks).toString(),
            interim,
          });
        });
        response.on('error', reject);
      },
    );
    request.on('information', (info) => {
      const link = info.headers.link;
      interim.push({ status: info.statusCode, link: Array.isArray(link) ? link.join(', ') : link });
    });
    request.on('timeout', () => request.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)));
    request.on('error', reject);
    request.end();
  });
}

function checkMember(member: CacheStatusMember | undefined, expect: CacheStatusExpect, where: string): void {
  check(member !== undefined, `${where}: no Cache-Status member`);
  if (!member) return;
  const shown = `${where}: Cache-Status member "${member.cache}; ${Object.entries(member.params)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join('; ')}"`;
  const { params } = member;
  if (expect.hit !== undefined)
    check((params.hit === true) === expect.hit, `${shown}: hit should be ${expect.hit}`);
  if (expect.fwd !== undefined) {
    const allowed = Array.isArray(expect.fwd) ? expect.fwd : [expect.fwd];
    check(allowed.includes(String(params.fwd)), `${shown}: fwd should be ${allowed.join(' or ')}`);
  }
  if (expect.fwdStatus !== undefined) {
    check(params['fwd-status'] === expect.fwdStatus, `${shown}: fwd-status should be ${expect.fwdStatus}`);
  }
  if (expect.stored !== undefined) {
    check((params.stored === true) === expect.stored, `${shown}: stored should be ${expect.stored}`);
  }
  if (expect.collapsed !== undefined) {
    check(
      (params.collapsed === true) === expect.collapsed,
      `${shown}: collapsed should be ${expect.collapsed}`,
    );
  }
  if (expect.ttl) {
    const ttl = params.ttl;
    check(typeof ttl === 'number', `${shown}: ttl missing`);
    if (typeof ttl === 'number') {
      check(
        ttl >= (expect.ttl.min ?? -Infinity) && ttl <= (expect.ttl.max ?? Infinity),
        `${shown}: ttl out of range`,
      );
    }
  }
}

function checkAnswer(
  answer: Answer,
  expect: ResponseExpect,
  origin: ScriptedOrigin,
  path: string,
  where: string,
): void {
  if (expect.status !== undefined)
    check(answer.status === expect.status, `${where}: status ${answer.status}, not ${expect.status}`);
  if (expect.originRequests !== undefined) {
    const seen = origin.requests(path).length;
    check(
      seen === expect.originRequests,
      `${where}: origin saw ${seen} requests, not ${expect.originRequests}`,
    );
  }
  const members = parseCacheStatus(answer.headers.get('cache-status'));
  if (expect.cacheStatusMembers !== undefined) {
    check(
      members.length === expect.cacheStatusMembers,
      `${where}: ${members.length} Cache-Status members ("${answer.headers.get('cache-status')}"), not ${expect.cacheStatusMembers}`,
    );
  }
  if (expect.cacheStatus) checkMember(members.at(-1), expect.cacheStatus, where);
  if (expect.firstCacheStatus)
    checkMember(members[0], expect.firstCacheStatus, `${where} (origin-side tier)`);
  if (expect.ageAtLeast !== undefined) {
    const age = Number.parseInt(answer.headers.get('age') ?? '', 10);
    check(
      Number.isFinite(age) && age >= expect.ageAtLeast,
      `${where}: Age is ${answer.headers.get('age')}, not >= ${expect.ageAtLeast}`,
    );
  }
  for (const [name, value] of Object.entries(expect.headers ?? {})) {
    const actual = answer.headers.get(name);
    check(actual === value, `${where}: ${name} is ${JSON.stringify(actual)}, not ${JSON.stringify(value)}`);
  }
  if (expect.interim !== undefined) {
    const seen = JSON.stringify(answer.interim);
    check(
      seen === JSON.stringify(expect.interim),
      `${where}: interim responses ${seen}, not ${JSON.stringify(expect.interim)}`,
    );
  }
  if (expect.bodyFromOriginRequest !== undefined) {
    const wanted = `${path} #${expect.bodyFromOriginRequest}`;
    check(answer.body === wanted, `${where}: body "${answer.body}", not "${wanted}"`);
  }
}

async function runStep(step: Step, index: number, topology: Topology, origin: ScriptedOrigin): Promise<void> {
  const where = `step ${index + 1} (${step.do})`;
  switch (step.do) {
    case 'wait':
      await new Promise((resolve) => setTimeout(resolve, step.ms));
      return;
    case 'purge': {
      const response = await fetch(`${topology.edge.adminUrl}/purge`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify(step.body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      const text = await response.text();
      check(
        response.status === 200,
        `${where}: admin purge answered ${response.status}: ${text.slice(0, 200)}`,
      );
      return;
    }
    case 'together': {
      await Promise.all(
        step.requests.map(async (request) => {
          if (request.startAfterMs) await new Promise((resolve) => setTimeout(resolve, request.startAfterMs));
          await send(topology.edge.url, request.path, request.method ?? 'GET', {});
        }),
      );
      return;
    }
    case 'restart':
      for (const node of topology.nodes) await node.restart();
      return;
    case 'request': {
      const node = step.via === 'shield' && topology.shield ? topology.shield : topology.edge;
      const answer = await send(node.url, step.path, step.method ?? 'GET', step.headers ?? {});
      checkAnswer(answer, step.expect, origin, step.path, where);
      return;
    }
    case 'concurrent': {
      const answers = await Promise.all(
        Array.from({ length: step.count }, () =>
          send(topology.edge.url, step.path, 'GET', step.headers ?? {}),
        ),
      );
      const seen = origin.requests(step.path).length;
      check(
        seen === step.expect.originRequests,
        `${where}: origin saw ${seen} requests, not ${step.expect.originRequests}`,
      );
      if (step.expect.status !== undefined) {
        const { status, atLeast } = step.expect.status;
        const statuses = answers.map((answer) => answer.status);
        check(
          statuses.filter((value) => value === status).length >= atLeast,
          `${where}: statuses ${statuses.join(' ')}, not at least ${atLeast} times ${status}`,
        );
      }
      if (step.expect.sameBody) {
        const bodies = new Set(answers.map((answer) => answer.body));
        check(bodies.size === 1, `${where}: ${bodies.size} different bodies`);
      }
      if (step.expect.servedFromFillAtLeast !== undefined) {
        const reused = answers.filter((answer) => {
          const params = parseCacheStatus(answer.headers.get('cache-status')).at(-1)?.params ?? {};
          return params.hit === true || params.collapsed === true;
        }).length;
        check(
          reused >= step.expect.servedFromFillAtLeast,
          `${where}: ${reused} responses say hit or collapsed in Cache-Status, not >= ${step.expect.servedFromFillAtLeast}`,
        );
      }
      return;
    }
  }
}

async function startTopology(entry: Case, origin: ScriptedOrigin, workDir: string): Promise<Topology> {
  const originUrl = `http://127.0.0.1:${origin.port}`;
  const dir = (name: string): string => {
    const path = join(workDir, entry.id, name);
    mkdirSync(path, { recursive: true });
    return path;
  };
  const nodes: StrataNode[] = [];
  try {
    if (entry.topology === 'single') {
      const edge = new StrataNode({
        name: 'strata-edge',
        originUrl,
        cacheDir: dir('edge'),
        workDir: dir(''),
      });
      nodes.push(edge);
      await edge.start();
      return { edge, nodes };
    }
    const shield = new StrataNode({
      name: 'strata-shield',
      originUrl,
      cacheDir: dir('shield'),
      workDir: dir(''),
    });
    nodes.push(shield);
    await shield.start();
    const edge = new StrataNode({
      name: 'strata-edge',
      originUrl: shield.url,
      cacheDir: dir('edge'),
      workDir: dir(''),
    });
    nodes.push(edge);
    await edge.start();
    return { edge, shield, nodes };
  } catch (error) {
    for (const node of nodes) await node.stop();
    throw error;
  }
}

async function runCase(entry: Case, workDir: string): Promise<CaseResult> {
  const started = Date.now();
  const result = (outcome: CaseOutcome, detail: string): CaseResult => ({
    id: entry.id,
    title: entry.title,
    rfc: entry.rfc,
    outcome,
    detail,
    ms: Date.now() - started,
  });
  if (entry.pending) return result('pending', `pending: ${entry.pending}`);

  const origin = new ScriptedOrigin();
  for (const [path, script] of Object.entries(entry.origin)) origin.script(path, script);
  await origin.start();
  let topology: Topology | undefined;
  try {
    topology = await startTopology(entry, origin, workDir);
    const running = topology;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new CaseFailure(`timed out after ${CASE_TIMEOUT_MS} ms`)),
        CASE_TIMEOUT_MS,
      );
    });
    const steps = (async () => {
      for (const [index, step] of entry.steps.entries()) await runStep(step, index, running, origin);
    })();
    try {
      await Promise.race([steps, timeout]);
    } finally {
      clearTimeout(timer);
    }
    return result('pass', '');
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const tail = error instanceof CaseFailure ? '' : `\n${topology?.edge.output.slice(-5).join('\n') ?? ''}`;
    return result('fail', `${message}${tail}`.trim());
  } finally {
    for (const node of topology?.nodes ?? []) await node.stop();
    await origin.stop();
  }
}

export async function runCases(
  table: readonly Case[],
  workDir: string,
  only?: string,
): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  for (const entry of table) {
    if (only !== undefined && entry.id !== only) continue;
    results.push(await runCase(entry, workDir));
  }
  return results;
}
