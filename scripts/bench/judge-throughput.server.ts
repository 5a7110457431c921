/**
 * The fake OpenAI-compatible server of the judge throughput benchmark, in its own process (as a real
 * server would be), so its work does not share the judge's event loop. Driven over IPC by
 * judge-throughput.ts: it sends `{baseURL}` once listening, answers `'count'` with `{count}`, and
 * exits on `'close'` (or when the parent goes away).
 */
import { startFakeOpenAI } from '../../test/helpers/fake-openai.js';

const latencyMs = Number(process.argv[2] ?? '100');
const server = await startFakeOpenAI({ latencyMs, handler: () => 'Comparison: A is more complete.\nMore helpful: A' });
process.send?.({ baseURL: server.baseURL });
process.on('message', (msg) => {
  if (msg === 'count') process.send?.({ count: server.count() });
  if (msg === 'close') void server.close().then(() => process.exit(0));
});
process.on('disconnect', () => void server.close().then(() => process.exit(0)));
