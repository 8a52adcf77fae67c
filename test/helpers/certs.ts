/**
 * Fixture certificates for TLS tests: a CA, and leaf certificates it signs (EC P-256, ten
 * years valid) for the names a test asks for, written to a temp directory with the `openssl`
 * command (part of Debian's base image; .ci/run installs it when missing).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Leaf {
  cert: string;
  key: string;
}

export interface Fixtures {
  readonly dir: string;
  /** The CA certificate (PEM text) clients trust. */
  readonly ca: string;
  readonly caFile: string;
  /** Issues a leaf for these DNS names (the first one is the subject CN). */
  leaf(file: string, names: readonly string[]): Leaf;
  /**
   * Issues a leaf valid only between `start` and `end` (openssl's YYYYMMDDHHMMSSZ): an expired
   * one, or one not valid yet.
   */
  datedLeaf(file: string, names: readonly string[], start: string, end: string): Leaf;
  remove(): void;
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

export function createFixtures(): Fixtures {
  const dir = mkdtempSync(join(tmpdir(), 'strata-certs-'));
  const caKey = join(dir, 'ca.key');
  const caFile = join(dir, 'ca.pem');
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', caKey]);
  openssl([
    'req',
    '-x509',
    '-new',
    '-key',
    caKey,
    '-out',
    caFile,
    '-days',
    '3650',
    '-subj',
    '/CN=Strata Test CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  let serial = 1;
  return {
    dir,
    ca: readFileSync(caFile, 'utf8'),
    caFile,
    leaf(file, names) {
      const key = join(dir, `${file}.key`);
      const csr = join(dir, `${file}.csr`);
      const cert = join(dir, `${file}.pem`);
      const ext = join(dir, `${file}.ext`);
      writeFileSync(
        ext,
        `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`,
      );
      openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key]);
      openssl(['req', '-new', '-key', key, '-out', csr, '-subj', `/CN=${names[0]}`]);
      openssl([
        'x509',
        '-req',
        '-in',
        csr,
        '-CA',
        caFile,
        '-CAkey',
        caKey,
        '-set_serial',
        String(++serial),
        '-out',
        cert,
        '-days',
        '3650',
        '-sha256',
        '-extfile',
        ext,
      ]);
      return { cert, key };
    },
    datedLeaf(file, names, start, end) {
      // openssl x509 cannot set past dates before OpenSSL 3.4; openssl ca can.
      const { key } = this.leaf(file, names);
      const csr = join(dir, `${file}.csr`);
      const cert = join(dir, `${file}.pem`);
      const database = join(dir, `${file}.index`);
      const config = join(dir, `${file}.cnf`);
      writeFileSync(database, '');
      writeFileSync(`${database}.serial`, `${(++serial).toString(16).padStart(2, '0')}\n`);
      writeFileSync(
        config,
        `[ca]\ndefault_ca=d\n[d]\ndatabase=${database}\nserial=${database}.serial\nnew_certs_dir=${dir}\ndefault_md=sha256\npolicy=p\n` +
          `unique_subject=no\n[p]\ncommonName=supplied\n`,
      );
      openssl(
        ['ca', '-batch', '-config', config, '-cert', caFile, '-keyfile', caKey, '-in', csr]
          .concat(['-out', cert, '-startdate', start, '-enddate', end, '-notext'])
          .concat(['-extfile', join(dir, `${file}.ext`)]),
      );
      return { cert, key };
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The subject CN of a peer certificate as node:tls reports it. */
export function subjectName(cert: { subject?: { CN?: string | string[] } }): string | undefined {
  const cn = cert.subject?.CN;
  return Array.isArray(cn) ? cn[0] : cn;
}
