/**
 * A raw HTTP/2 client over TLS for tests that must misbehave in ways node:http2's client
 * will not (more streams than the server allows, streams cancelled at once): it writes frames
 * by hand and records the frames the server sends.
 */
import { connect, type TLSSocket } from 'node:tls';

export const FRAME = { HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, GOAWAY: 7 } as const;

export interface Frame {
  type: number;
  flags: number;
  stream: number;
  payload: Buffer;
}

export interface RawH2 {
  readonly socket: TLSSocket;
  readonly frames: Frame[];
  /** Resolves when the connection is closed by either side. */
  readonly closed: Promise<void>;
  /** A GET for `path` on stream `id` (odd), ending the stream (no body). */
  get(id: number, path: string, authority: string): void;
  cancel(id: number): void;
  destroy(): void;
}

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

/** HPACK literal without indexing, name by static index (RFC 7541 §6.2.2), no Huffman. */
function literal(index: number, value: string): Buffer {
  const bytes = Buffer.from(value);
  if (bytes.length > 126) throw new Error('value too long for this encoder');
  return Buffer.concat([Buffer.from([index, bytes.length]), bytes]);
}

export function connectRaw(port: number, ca: string, servername: string): Promise<RawH2> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca, servername, ALPNProtocols: ['h2'] });
    const frames: Frame[] = [];
    let buffer = Buffer.alloc(0);
    socket.on('data', (data: Buffer) => {
      buffer = Buffer.concat([buffer, data]);
      while (buffer.length >= 9) {
        const length = buffer.readUIntBE(0, 3);
        if (buffer.length < 9 + length) break;
        frames.push({
          type: buffer[3]!,
          flags: buffer[4]!,
          stream: buffer.readUInt32BE(5) & 0x7fffffff,
          payload: buffer.subarray(9, 9 + length),
        });
        buffer = buffer.subarray(9 + length);
      }
    });
    const closed = new Promise<void>((done) => socket.once('close', () => done()));
    socket.on('error', () => {});
    socket.once('secureConnect', () => {
      if (socket.alpnProtocol !== 'h2') return reject(new Error(`ALPN gave ${socket.alpnProtocol}`));
      socket.write(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'));
      socket.write(frame(FRAME.SETTINGS, 0, 0, Buffer.alloc(0)));
      resolve({
        socket,
        frames,
        closed,
        get(id, path, authority) {
          const block = Buffer.concat([Buffer.from([0x82, 0x87]), literal(4, path), literal(1, authority)]);
          socket.write(frame(FRAME.HEADERS, 0x4 | 0x1, id, block));
        },
        cancel(id) {
          const code = Buffer.alloc(4);
          code.writeUInt32BE(8); // CANCEL
          socket.write(frame(FRAME.RST_STREAM, 0, id, code));
        },
        destroy: () => socket.destroy(),
      });
    });
    socket.once('error', reject);
  });
}

/** The error code of an RST_STREAM or GOAWAY frame. */
export function errorCode(f: Frame): number {
  return f.type === FRAME.GOAWAY ? f.payload.readUInt32BE(4) : f.payload.readUInt32BE(0);
}
