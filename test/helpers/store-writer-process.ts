/**
 * Another process writing to a cache directory a test's CacheStore has open, as a worker of
 * the node does: `fork` this file with the directory as its argument, then send it
 * `{ id, bodyId, marker? }` messages; it commits a record for `id` with that body id, writes
 * the file `marker` if given (for a parent that waits without yielding to its event loop), and
 * answers `{ committed: bodyId }`. With `invalidate: true`, it invalidates `id` instead (its
 * generation moves) and answers `{ invalidated: id }`. It exits when the parent disconnects.
 */
import { writeFileSync } from 'node:fs';
import { entryRecord } from './records.ts';
import { testStore } from './test-store.ts';

const dir = process.argv[2]!;
const store = testStore(dir);

process.on('message', (message: { id: string; bodyId: string; marker?: string; invalidate?: true }) => {
  if (message.invalidate) {
    void store.invalidateKey(message.id).then(() => {
      if (message.marker !== undefined) writeFileSync(message.marker, 'invalidated');
      process.send?.({ invalidated: message.id });
    });
    return;
  }
  const record = entryRecord({
    bodyId: message.bodyId,
    url: message.id,
    headers: ['cache-control', 'max-age=60'],
  });
  void store
    .write(() => store.commitEntryInTxn(message.id, message.id, record))
    .then(() => {
      if (message.marker !== undefined) writeFileSync(message.marker, message.bodyId);
      process.send?.({ committed: message.bodyId });
    });
});
process.on('disconnect', () => {
  void store.close().then(() => process.exit(0));
});
process.send?.({ ready: true });
