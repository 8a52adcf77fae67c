/**
 * Maps what undici and the network report into the node's coded errors. The message names the
 * failure class and the origin by its configured name only: it is what a client reads in an
 * error body. What the network said (with the origin's address) stays in `cause`, for the log.
 */
import { EdgeError } from '../errors.ts';
import { ORIGIN_RESET } from './undici.ts';

export function originError(error: unknown, origin: string): EdgeError {
  if (error instanceof EdgeError) return error;
  const code = (error as { code?: string }).code ?? '';
  const options = { cause: error, origin };
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
      return new EdgeError(
        'EDGE_ERR_ORIGIN_CONNECT_TIMEOUT',
        `connecting to origin ${origin} timed out`,
        options,
      );
    case 'UND_ERR_HEADERS_TIMEOUT':
      return new EdgeError(
        'EDGE_ERR_ORIGIN_TIMEOUT',
        `origin ${origin} sent no response headers in time`,
        options,
      );
    case 'UND_ERR_SOCKET':
      // A 101 Switching Protocols to a request that asked no upgrade: not HTTP the node can relay.
      if ((error as { message?: string }).message === 'bad upgrade')
        return new EdgeError(
          'EDGE_ERR_ORIGIN_PROTOCOL',
          `origin ${origin} sent an invalid response`,
          options,
        );
      return new EdgeError(
        'EDGE_ERR_ORIGIN_BODY_INCOMPLETE',
        `origin ${origin} response incomplete`,
        options,
      );
    case 'UND_ERR_BODY_TIMEOUT':
    case 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH':
    case 'ECONNRESET':
    case ORIGIN_RESET:
      return new EdgeError(
        'EDGE_ERR_ORIGIN_BODY_INCOMPLETE',
        `origin ${origin} response incomplete`,
        options,
      );
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new EdgeError('EDGE_ERR_ORIGIN_DNS', `origin ${origin} host not found`, options);
    case 'ECONNREFUSED':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EPIPE':
      return new EdgeError('EDGE_ERR_ORIGIN_CONNECT', `cannot connect to origin ${origin}`, options);
    // The request could not be sent as given (undici checked it before any connection): not
    // the origin's failure, so never counted against it, retried elsewhere or blamed on it.
    case 'UND_ERR_INVALID_ARG':
      return new EdgeError('EDGE_ERR_CLIENT_BAD_REQUEST', 'the request cannot be forwarded as sent', options);
    case 'HPE_INVALID_CONSTANT':
    case 'HPE_INVALID_STATUS':
    case 'HPE_INVALID_HEADER_TOKEN':
    case 'UND_ERR_INFO':
    // undici asserts on what its parser let through (a status below 100): the response's fault.
    case 'ERR_ASSERTION':
      return new EdgeError('EDGE_ERR_ORIGIN_PROTOCOL', `origin ${origin} sent an invalid response`, options);
    case 'UND_ERR_HEADERS_OVERFLOW':
      return new EdgeError(
        'EDGE_ERR_ORIGIN_PROTOCOL',
        `origin ${origin} sent response headers too large`,
        options,
      );
    default:
      // undici's parser errors (invalid header bytes, obs-fold, a status line that is no HTTP,
      // a bad chunk size) carry no code: their class names them.
      if (code.startsWith('HPE_') || (error as { name?: string }).name === 'HTTPParserError') {
        return new EdgeError(
          'EDGE_ERR_ORIGIN_PROTOCOL',
          `origin ${origin} sent an invalid response`,
          options,
        );
      }
      return new EdgeError('EDGE_ERR_ORIGIN_CONNECT', `request to origin ${origin} failed`, options);
  }
}

/** What the network reported under an error (addresses included): for logs, never for clients. */
export function errorDetail(error: unknown): string | undefined {
  const cause = (error as { cause?: unknown } | undefined)?.cause;
  if (cause === undefined) return undefined;
  return cause instanceof Error ? cause.message : String(cause);
}
