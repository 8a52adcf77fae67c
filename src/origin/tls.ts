/**
 * TLS options for an https:// origin: the CAs that sign its certificate, the server name sent
 * and checked, and whether to verify at all. The CA file is read when the origin is built (at
 * start and on every reload of sites and origins, SIGHUP).
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { OriginConfig } from '../config/schema.ts';
import { EdgeError } from '../errors.ts';

export interface OriginTlsOptions {
  ca?: Buffer;
  servername?: string;
  rejectUnauthorized?: boolean;
  minVersion?: 'TLSv1.2';
}

export function originTls(config: OriginConfig): OriginTlsOptions {
  if (!config.url.toLowerCase().startsWith('https:')) return {};
  const options: OriginTlsOptions = { minVersion: 'TLSv1.2' };
  const tls = config.tls;
  if (tls.ca !== undefined) {
    try {
      options.ca = readFileSync(tls.ca);
    } catch (cause) {
      throw new EdgeError(
        'EDGE_ERR_CONFIG_INVALID',
        `origin ${config.name}: cannot read tls.ca ${tls.ca}: ${(cause as Error).message}`,
        { cause },
      );
    }
    // node:tls takes a file with no certificate in it silently: every request would then fail.
    if (!holdsCertificate(options.ca))
      throw new EdgeError(
        'EDGE_ERR_CONFIG_INVALID',
        `origin ${config.name}: tls.ca ${tls.ca} holds no PEM certificate`,
      );
  }
  if (tls.servername !== undefined) options.servername = tls.servername;
  if (!tls.verify) options.rejectUnauthorized = false;
  return options;
}

/** Whether a CA file holds at least one PEM certificate that parses. */
export function holdsCertificate(pem: Buffer): boolean {
  const blocks = pem
    .toString('latin1')
    .match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g);
  return (blocks ?? []).some((block) => {
    try {
      new X509Certificate(block);
      return true;
    } catch {
      return false;
    }
  });
}
