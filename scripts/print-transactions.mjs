// Prints one line per finished transaction (used by `npm start` until the collector lands).
import { onTransactionEnd } from 'loopscope';

const f = (ms) => ms.toFixed(1).padStart(7);
onTransactionEnd((t) => {
  const path = t.criticalPath.map((id) => t.segments.find((s) => s.id === id)?.name).join(' → ');
  process.stdout.write(`\n${t.endpoint.padEnd(18)} ${t.status} response${f(t.response)} duration${f(t.duration)} cpu${f(t.cpu)} external${f(t.external)} blocking${f(t.blocking)}  ${path}`);
});
