import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect, type TLSSocket } from 'node:tls';
import { createFixtures, type Fixtures } from '../helpers/certs.ts';
import { startOrigin, type TestOrigin } from '../helpers/origin.ts';

const CLI = new URL('../../cli/strata.ts', import.meta.url).pathname;

/** One TLS handshake (optionally resuming `session`); resolves the socket once it is ready for data. */
function handshake(
  port: number,
  ca: string,
  session?: Buffer,
): Promise<{ reused: boolean; session: Buffer }> {
  return new Promise((resolve, reject) => {
    const socket: TLSSocket = connect({
      host: '127.0.0.1',
      port,
      ca,
      servername: 'edge.test',
      ALPNProtocols: ['http/1.1'],
      ...(session ? { session } : {}),
    });
    let ticket: Buffer | undefined;
    socket.on('session', (s: Buffer) => {
      ticket = s;
    });
    socket.once('secureConnect', () => {
      const reused = socket.isSessionReused();
      // TLS 1.3 tickets arrive after the handshake: one round trip gets them.
      socket.write('GET / HTTP/1.1\r\nHost: edge.test\r\nConnection: close\r\n\r\n');
      socket.resume();
      socket.once('close', () => resolve({ reused, session: ticket ?? session! }));
    });
    socket.once('error', reject);
  });
}

describe('TLS session resumption with --workers 2', () => {
  let fixtures: Fixtures;
  let origin: TestOrigin;
  let child: ChildProcess;
  let port: number;
  let dir: string;

  before(async () => {
    fixtures = createFixtures();
    const leaf = fixtures.leaf('edge', ['edge.test']);
    origin = await startOrigin({});
    dir = mkdtempSync(join(tmpdir(), 'strata-tls-workers-'));
    child = spawn(
      process.execPath,
      [
        CLI,
        'serve',
        '--workers',
        '2',
        '--listen',
        '127.0.0.1:0',
        '--listen-tls',
        '127.0.0.1:0',
        '--tls-cert',
        leaf.cert,
        '--tls-key',
        leaf.key,
        '--origin',
        origin.url,
        '--cache-dir',
        join(dir, 'cache'),
        '--admin-listen',
        '127.0.0.1:0',
        '--log-level',
        'silent',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no banner in 20 s: ${stderr}`)), 20_000);
      child.stderr!.on('data', (data: Buffer) => {
        stderr += data.toString();
        const match = /https:\/\/[^\s:]+:(\d+)/.exec(stderr);
        if (match) {
          clearTimeout(timer);
          resolve(Number(match[1]));
        }
      });
      child.once('exit', (code) => reject(new Error(`strata exited (${code}): ${stderr}`)));
    });
  });

  after(async () => {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
    await origin.close();
    rmSync(dir, { recursive: true, force: true });
    fixtures.remove();
  });

  it('resumes sessions on either worker (ticket keys from the primary): at least 95% of 20 handshakes', async () => {
    let { session } = await handshake(port, fixtures.ca);
    let reused = 0;
    for (let i = 0; i < 20; i++) {
      const result = await handshake(port, fixtures.ca, session);
      if (result.reused) reused++;
      session = result.session;
    }
    assert.ok(reused >= 19, `${reused} of 20 resumed`);
  });
});
