/** Maps what undici and the network report into the node's coded errors. */
import { EdgeError } from '../errors.ts';

export function originError(error: unknown, origin: string): EdgeError {
  if (error instanceof EdgeError) return error;
  const code = (error as { code?: string }).code ?? '';
  const message = (error as Error).message ?? String(error);
  const cause = { cause: error };
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
      return new EdgeError(
        'EDGE_ERR_ORIGIN_CONNECT_TIMEOUT',
        `connecting to origin ${origin} timed out`,
        cause,
      );
    case 'UND_ERR_HEADERS_TIMEOUT':
      return new EdgeError(
        'EDGE_ERR_ORIGIN_TIMEOUT',
        `origin ${origin} sent no response headers in time`,
        cause,
      );
    case 'UND_ERR_BODY_TIMEOUT':
    case 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH':
    case 'UND_ERR_SOCKET':
    case 'ECONNRESET':
      return new EdgeError(
        'EDGE_ERR_ORIGIN_BODY_INCOMPLETE',
        `origin ${origin} response incomplete: ${message}`,
        cause,
      );
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new EdgeError('EDGE_ERR_ORIGIN_DNS', `origin ${origin} host not found`, cause);
    case 'ECONNREFUSED':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EPIPE':
      return new EdgeError(
        'EDGE_ERR_ORIGIN_CONNECT',
        `cannot connect to origin ${origin}: ${message}`,
        cause,
      );
    case 'HPE_INVALID_CONSTANT':
    case 'HPE_INVALID_STATUS':
    case 'HPE_INVALID_HEADER_TOKEN':
    case 'UND_ERR_INFO':
      return new EdgeError(
        'EDGE_ERR_ORIGIN_PROTOCOL',
        `origin ${origin} sent an invalid response: ${message}`,
        cause,
      );
    default:
      if (code.startsWith('HPE_')) {
        return new EdgeError(
          'EDGE_ERR_ORIGIN_PROTOCOL',
          `origin ${origin} sent an invalid response: ${message}`,
          cause,
        );
      }
      return new EdgeError(
        'EDGE_ERR_ORIGIN_CONNECT',
        `request to origin ${origin} failed: ${message}`,
        cause,
      );
  }
}
