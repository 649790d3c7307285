/**
 * The alert rules file (alerts/rules.ts) and the state machine of alerts (alerts/engine.ts), with
 * fixed inputs: a good file read whole with its defaults; each kind of mistake refused with its
 * line and reason; pending → firing → resolved with `for` and hysteresis, a value on the line not
 * flapping, no data resolving.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addValue, newSketch, toWire, type Alert, type WireSketch } from '@loopscope/protocol';
import { AlertEngine, STANDBY_ROUNDS } from '../../src/alerts/engine.js';
import { Receivers } from '../../src/alerts/receivers.js';
import { parseRules, RulesError } from '../../src/alerts/rules.js';
import type { AlertRound, Storage } from '../../src/storage/storage.js';

test('a rules file is read whole, with its defaults', () => {
  const file = parseRules(`
rules:
  - name: checkout-slow
    service: shop
    endpoint: GET /checkout        # optional
    metric: response
    quantile: 0.95
    above: 300
    for: 30s
    labels: { severity: page }
  - name: quiet
    service: shop
    metric: throughput
    below: 1
    window: 5m
    hysteresis: 0.2
  - name: loop
    service: shop
    metric: loop_delay
    quantile: 0.99
    above: 50
receivers:
  - alertmanager: http://127.0.0.1:9093/
  - webhook: http://127.0.0.1:8080/hook
    secret: abc
    headers: { X-Team: shop }
`);
  assert.equal(file.intervalMs, 15_000);
  assert.deepEqual(
    file.rules.map((r) => [r.name, r.metric, r.quantile, r.direction, r.threshold, r.forMs, r.windowMs, r.hysteresis, r.line]),
    [
      ['checkout-slow', 'response', 0.95, 'above', 300, 30_000, 60_000, 0.1, 3],
      ['quiet', 'throughput', undefined, 'below', 1, 0, 300_000, 0.2, 11],
      ['loop', 'loop_delay', 0.99, 'above', 50, 0, 60_000, 0.1, 17],
    ],
  );
  assert.equal(file.rules[0]!.endpoint, 'GET /checkout');
  assert.deepEqual(file.rules[0]!.labels, { severity: 'page' });
  assert.deepEqual(file.receivers, [
    { kind: 'alertmanager', url: 'http://127.0.0.1:9093' },
    { kind: 'webhook', url: 'http://127.0.0.1:8080/hook', secret: 'abc', headers: { 'X-Team': 'shop' } },
  ]);
});

const rule = (extra: string): string => `rules:\n  - name: r\n    service: shop\n${extra}`;

test('each mistake is refused with its line and what is wrong', () => {
  const cases: Array<[string, RegExp]> = [
    ['rules: [a: b', /rules:1: not valid YAML/],
    ['- a\n- b', /rules:1: the file must be a map/],
    ['rule:\n  - name: x', /rules:1: unknown field "rule": expected one of interval, rules, receivers/],
    ['interval: 10s', /rules:1: `rules:` is missing/],
    ['interval: 500ms\nrules: []', /rules:1: `interval` must be at least 1s/],
    ['interval: soon\nrules: []', /rules:1: `interval` must be a duration such as 30s/],
    [rule('    metric: respons\n    above: 1'), /rules:4: unknown metric "respons": one of response, duration/],
    [rule('    metric: response\n    above: 1'), /rules:2: response needs a `quantile`/],
    [rule('    metric: response\n    quantile: 95\n    above: 1'), /rules:5: `quantile` must be above 0 and at most 1/],
    [rule('    metric: loop_delay\n    quantile: 0.9\n    above: 1'), /rules:5: loop_delay keeps the quantiles 0.5, 0.95, 0.99, 1/],
    [rule('    metric: error_rate\n    quantile: 0.9\n    above: 0.1'), /rules:5: error_rate is not a distribution/],
    [rule('    metric: error_rate\n    above: 5'), /rules:5: error_rate is a share from 0 to 1/],
    [rule('    metric: throughput'), /rules:2: a rule needs exactly one of `above` and `below`/],
    [rule('    metric: throughput\n    above: 1\n    below: 2'), /rules:2: a rule needs exactly one of/],
    [rule('    metric: throughput\n    above: lots'), /rules:5: `above` must be a number, not "lots"/],
    [rule('    metric: throughput\n    above: 1\n    for: 30'), /rules:6: `for` must be a duration/],
    [rule('    metric: throughput\n    above: 1\n    hysteresis: 1'), /rules:6: `hysteresis` must be a share/],
    [rule('    metric: throughput\n    above: 1\n    labels: { 9x: a }'), /rules:6: `labels`: "9x" is not a valid name/],
    [rule('    metric: long_tasks\n    endpoint: GET /x\n    above: 1'), /rules:5: long_tasks is the service's event loop: it has no endpoint/],
    [rule('    metric: throughput\n    above: 1\n    severity: page'), /rules:6: unknown field "severity"/],
    [`${rule('    metric: throughput\n    above: 1')}\n  - name: r\n    service: x\n    metric: throughput\n    above: 2`, /rules:6: a second rule named "r"/],
    ['rules:\n  - service: shop\n    metric: throughput\n    above: 1', /rules:2: `name` is required/],
    [`${rule('    metric: throughput\n    above: 1')}\nreceivers:\n  - slack: http://x`, /rules:7: unknown field "slack"/],
    [`${rule('    metric: throughput\n    above: 1')}\nreceivers:\n  - webhook: ftp://x`, /rules:7: "ftp:\/\/x" is not an http/],
    [`${rule('    metric: throughput\n    above: 1')}\nreceivers:\n  - alertmanager: http://x\n    secret: s`, /rules:7: `secret` and `headers` are for webhooks/],
  ];
  for (const [text, expected] of cases) {
    assert.throws(() => parseRules(text), (err: unknown) => err instanceof RulesError && expected.test(err.message), `${JSON.stringify(text)} → ${expected}`);
  }
});

/** A storage whose every range has the value the test sets (the response's quantiles are all `value`). */
function fakeStorage(): { storage: Storage; set(value: number | null): void } {
  let current: number | null = null;
  const sketch = (): WireSketch => {
    const s = newSketch();
    if (current !== null) addValue(s, current);
    return toWire(s);
  };
  // the latest round of alert evaluation, as a shared storage keeps it
  let round: AlertRound | null = null;
  const storage = {
    summary: async () => {
      const s = sketch();
      return { count: s.n, errors: 0, aborted: 0, sketches: { response: s, duration: s, cpu: s, external: s, blocking: s } };
    },
    lastAlertRound: async () => round,
    saveAlertRound: async (r: AlertRound) => void (round = r),
  } as unknown as Storage;
  return { storage, set: (v) => (current = v) };
}

test('pending → firing after `for`; a value on the line does not flap; resolved past the hysteresis, or with no data', async () => {
  const file = parseRules(rule('    metric: response\n    quantile: 0.95\n    above: 100\n    for: 2s\n    hysteresis: 0.1'));
  const sent: Alert[] = [];
  const receivers = new Receivers([], () => undefined, () => undefined);
  receivers.notify = (a: Alert) => void sent.push({ ...a });
  const { storage, set } = fakeStorage();
  const engine = new AlertEngine(file, storage, receivers, () => undefined, 'one');
  const at = async (t: number, v: number | null): Promise<string> => {
    set(v);
    await engine.evaluate(t);
    return engine.list()[0]?.state ?? 'none';
  };
  const T = 1_800_000_000_000;
  assert.equal(await at(T, 50), 'none');
  assert.equal(await at(T + 1000, 150), 'pending');
  assert.equal(await at(T + 2000, 50), 'none', 'back under the line before `for`: never fired, nothing sent');
  assert.equal(sent.length, 0);
  assert.equal(await at(T + 3000, 150), 'pending');
  assert.equal(await at(T + 4000, 150), 'pending');
  assert.equal(await at(T + 5000, 150), 'firing', '`for` (2 s) after it began to hold');
  // on the line, just under it, just over it: still firing (the hysteresis wants under 90)
  for (const [i, v] of [99.5, 95, 101, 91].entries()) assert.equal(await at(T + 6000 + i * 1000, v), 'firing', `at ${v}`);
  assert.equal(await at(T + 10_000, 85), 'resolved');
  assert.deepEqual(
    sent.map((a) => [a.state, a.firedAt, a.resolvedAt]),
    [
      ['firing', T + 5000, null],
      ['resolved', T + 5000, T + 10_000],
    ],
  );
  // a second run: fires again, and a window with no data resolves it
  await at(T + 11_000, 200);
  await at(T + 13_000, 200);
  assert.equal(engine.list()[0]!.state, 'firing');
  assert.equal(await at(T + 14_000, null), 'resolved');
  assert.equal(engine.list()[0]!.value, null);
});

test('collectors on one storage evaluate once: the others stand by with the same alerts, and one takes over, still firing, when the holder stops', async () => {
  const file = parseRules(`interval: 1s\n${rule('    metric: response\n    quantile: 0.95\n    above: 100\n    for: 1s')}`);
  const { storage, set } = fakeStorage();
  const sent: Array<[string, string]> = [];
  const engine = (holder: string): AlertEngine => {
    const receivers = new Receivers([], () => undefined, () => undefined);
    receivers.notify = (a: Alert) => void sent.push([holder, a.state]);
    return new AlertEngine(file, storage, receivers, () => undefined, holder);
  };
  const [a, b] = [engine('a'), engine('b')];
  const T = 1_800_000_000_000;
  set(150);
  await a.evaluate(T);
  await b.evaluate(T + 100); // a holds: b only takes in a's state
  await a.evaluate(T + 1000);
  await b.evaluate(T + 1100);
  assert.deepEqual(sent, [['a', 'firing']], 'fired once, by a');
  assert.deepEqual(b.list(), a.list(), 'b answers what a evaluated');
  // a stops; b waits STANDBY_ROUNDS rounds, claims one, then evaluates
  for (let i = 2; i <= 2 + STANDBY_ROUNDS; i++) await b.evaluate(T + i * 1000 + 100);
  assert.deepEqual(sent, [['a', 'firing']], 'not yet, and never announced again');
  await b.evaluate(T + 6100);
  await b.evaluate(T + 7100);
  assert.equal(b.list()[0]!.state, 'firing', 'still firing under b');
  assert.equal(b.list()[0]!.firedAt, T + 1000, 'since a fired it');
  set(50);
  await b.evaluate(T + 8100);
  assert.deepEqual(sent, [['a', 'firing'], ['b', 'resolved']]);
  // a comes back: b holds now, so a stands by
  await a.evaluate(T + 8200);
  assert.equal(a.list()[0]!.state, 'resolved');
  assert.equal(sent.length, 2);
});
