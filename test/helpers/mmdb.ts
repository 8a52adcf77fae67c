/**
 * Writes a small MaxMind DB file (format 2.0, https://maxmind.github.io/MaxMind-DB/): a binary
 * search tree over the address bits, 16 zero bytes, a data section of records, then the
 * metadata marker and map. IPv4 only, 32-bit records: enough to map loopback test clients to
 * countries (the free databases map loopback to nothing).
 */
import { writeFileSync } from 'node:fs';

export interface MmdbNetwork {
  /** An IPv4 CIDR range, e.g. 127.0.0.2/32. */
  cidr: string;
  /** Country ISO code (`US`) and continent code (`NA`) as a GeoIP2 Country record has them. */
  country: string;
  continent?: string;
}

type Value = string | number | bigint | Value[] | { [key: string]: Value };

/** One data-section value: control byte(s) with type and size, then the payload (MaxMind DB §Data Section). */
function encode(value: Value, uintType?: 5 | 6 | 9): Buffer {
  if (typeof value === 'string') return withControl(2, Buffer.from(value, 'utf8'));
  if (typeof value === 'number' || typeof value === 'bigint') {
    const bytes: number[] = [];
    for (let rest = BigInt(value); rest > 0n; rest >>= 8n) bytes.unshift(Number(rest & 0xffn));
    return withControl(uintType ?? 6, Buffer.from(bytes));
  }
  if (Array.isArray(value)) return Buffer.concat([control(11, value.length), ...value.map((v) => encode(v))]);
  const entries = Object.entries(value);
  return Buffer.concat([
    control(7, entries.length),
    ...entries.flatMap(([key, v]) => [encode(key), encode(v, UINT_KEYS[key])]),
  ]);
}

/** Metadata keys and their integer types (uint16 = 5, uint32 = 6, uint64 = 9). */
const UINT_KEYS: Record<string, 5 | 6 | 9> = {
  node_count: 6,
  record_size: 5,
  ip_version: 5,
  binary_format_major_version: 5,
  binary_format_minor_version: 5,
  build_epoch: 9,
};

function withControl(type: number, payload: Buffer): Buffer {
  return Buffer.concat([control(type, payload.length), payload]);
}

/** Type in the top 3 bits (types above 7 as 0 plus an extension byte), sizes below 29 in the low 5. */
function control(type: number, size: number): Buffer {
  if (size >= 29) throw new Error('the test writer keeps every value under 29 bytes or entries');
  return type <= 7 ? Buffer.from([(type << 5) | size]) : Buffer.from([size, type - 7]);
}

export function writeMmdb(file: string, networks: readonly MmdbNetwork[]): void {
  // Data section: one record per network, addressed by its offset.
  const records: Buffer[] = [];
  const offsets: number[] = [];
  let size = 0;
  for (const network of networks) {
    const record = encode({
      country: { iso_code: network.country },
      ...(network.continent ? { continent: { code: network.continent } } : {}),
    });
    offsets.push(size);
    records.push(record);
    size += record.length;
  }
  // Search tree: node 0 is the root; each node's two records lead to a node, to data, or nowhere.
  type Link = { node: number } | { data: number } | undefined;
  const nodes: Array<[Link, Link]> = [[undefined, undefined]];
  networks.forEach((network, index) => {
    const [address = '', prefix = '32'] = network.cidr.split('/');
    const bits = address.split('.').reduce((sum, part) => sum * 256 + Number(part), 0);
    let node = 0;
    for (let depth = 0; depth < Number(prefix); depth++) {
      const bit = (bits >>> (31 - depth)) & 1;
      if (depth === Number(prefix) - 1) {
        nodes[node]![bit] = { data: offsets[index]! };
        break;
      }
      const link = nodes[node]![bit];
      if (link !== undefined && 'node' in link) node = link.node;
      else {
        nodes.push([undefined, undefined]);
        nodes[node]![bit] = { node: nodes.length - 1 };
        node = nodes.length - 1;
      }
    }
  });
  const nodeCount = nodes.length;
  const tree = Buffer.alloc(nodeCount * 8);
  nodes.forEach((pair, index) => {
    pair.forEach((link, side) => {
      // A record equal to node_count means "no data"; data records point past the 16-byte separator.
      const value = link === undefined ? nodeCount : 'node' in link ? link.node : nodeCount + 16 + link.data;
      tree.writeUInt32BE(value, index * 8 + side * 4);
    });
  });
  const metadata = encode({
    node_count: nodeCount,
    record_size: 32,
    ip_version: 4,
    database_type: 'Strata-Test-Country',
    languages: ['en'],
    binary_format_major_version: 2,
    binary_format_minor_version: 0,
    build_epoch: 1_780_000_000n,
    description: { en: 'test database' },
  });
  writeFileSync(
    file,
    Buffer.concat([
      tree,
      Buffer.alloc(16),
      ...records,
      Buffer.from([0xab, 0xcd, 0xef]),
      Buffer.from('MaxMind.com'),
      metadata,
    ]),
  );
}
