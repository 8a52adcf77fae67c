/**
 * The suite's own origin server (from the installed http-cache-tests package), bound to a
 * loopback port chosen by the system. Run as a child process: it prints one JSON line
 * `{"listening":PORT}` once it accepts connections.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import handleConfig from 'http-cache-tests/server/handle-config.mjs';
import handleFile from 'http-cache-tests/server/handle-file.mjs';
import handleState from 'http-cache-tests/server/handle-state.mjs';
import handleTest from 'http-cache-tests/server/handle-test.mjs';

const HOST = '127.0.0.1';

function handleMain(request: IncomingMessage, response: ServerResponse): void {
  const url = new URL(request.url ?? '/', `http://${HOST}/`);
  const pathSegs = url.pathname.split('/');
  pathSegs.shift();
  const dispatch = pathSegs.shift();
  if (dispatch === 'config') handleConfig(pathSegs, request, response);
  else if (dispatch === 'test') handleTest(pathSegs, request, response);
  else if (dispatch === 'state') handleState(pathSegs, request, response);
  else handleFile(url, request, response);
}

// Node's defaults, as the suite's own server.mjs has them (its keep-alive timeout ends bodies
// that only a close delimits, e.g. under an unknown Transfer-Encoding).
const server = createServer(handleMain);
server.listen(0, HOST, () => {
  const address = server.address();
  if (typeof address === 'object' && address) console.log(JSON.stringify({ listening: address.port }));
});
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
