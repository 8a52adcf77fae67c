/**
 * Sends raw bytes over TCP (or over TLS as HTTP/1.1, given `tls`) and collects everything
 * until the peer closes (bounded in time).
 */
import { connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

export function rawExchange(
  port: number,
  payload: string,
  timeoutMs = 3000,
  tls?: { ca: string; servername: string },
): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const socket =
      tls === undefined
        ? connect(port, '127.0.0.1')
        : tlsConnect({ host: '127.0.0.1', port, ...tls, ALPNProtocols: ['http/1.1'] });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed: false });
    }, timeoutMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed: true });
    });
    if (tls === undefined) socket.write(payload);
    else socket.once('secureConnect', () => socket.write(payload));
  });
}
