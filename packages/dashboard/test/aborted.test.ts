/**
 * Aborted requests in real Chromium: traces flagged `aborted` (the connection closed before the
 * response was finished) go through the real collector's ingest; the trace lists label them, and
 * the trace page says it in its status and a banner, with what the app answered (or that it never did).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { WireBatch, WireTrace } from '@loopscope/protocol';
import type { Page } from 'playwright-core';
import { wireTrace, withIngested } from './harness.js';

const SERVICE = 'aborting';
const T = Math.floor(Date.now() / 1000) * 1000 - 30_000;

const trace = (endpoint: string, start: number, fields: Partial<WireTrace>): WireTrace => wireTrace(SERVICE, endpoint, start, { response: 150, duration: 151, cpu: 2, external: 148, externalByKind: { http: 148 }, blocking: 1, ...fields });

const answered = trace('GET /slow/:id', T, {});
// the app answered 200 into a connection its client had closed
const late = trace('GET /slow/:id', T + 100, { aborted: true, duration: 152 });
// dropped before any route: never answered
const dropped = trace('GET (unmatched)', T + 200, { aborted: true, status: 0, response: 330, duration: 330, external: 0, externalByKind: {}, cpu: 81, blocking: 249 });

const batch: WireBatch = {
  v: 1,
  batchId: `aborted-${process.pid}`,
  service: SERVICE,
  instance: 'web-1:1',
  agent: { name: 'loopscope', version: '0.1.0' },
  sentAt: T + 1000,
  intervals: [],
  traces: [answered, late, dropped],
  dropped: { batches: 0, transactions: 0, traces: 0 },
};

const open = withIngested(batch);

/** Each listed trace's status cell, by trace id. */
async function statusCells(page: Page): Promise<Map<string, { text: string; label: string | null }>> {
  const out = new Map<string, { text: string; label: string | null }>();
  const rows = page.locator('section[data-traces] tr[data-trace]');
  for (const row of await rows.all()) {
    const id = (await row.getAttribute('data-trace'))!;
    if (out.has(id)) continue; // the same trace in a second list
    const cell = row.locator('td.num').first();
    const tag = cell.locator('.tag.aborted');
    out.set(id, { text: (await cell.innerText()).trim(), label: (await tag.count()) > 0 ? await tag.getAttribute('title') : null });
  }
  return out;
}

test('the trace lists label an aborted request, and only those', async () => {
  const endpoint = await statusCells(await open(`/endpoint?service=${SERVICE}&endpoint=${encodeURIComponent('GET /slow/:id')}`));
  assert.deepEqual(endpoint.get(answered.traceId), { text: '200', label: null });
  assert.match(endpoint.get(late.traceId)!.text, /^200\s*aborted$/);
  assert.match(endpoint.get(late.traceId)!.label ?? '', /connection closed before the response was finished/);
  const service = await statusCells(await open(`/service?service=${SERVICE}`));
  assert.equal(service.get(dropped.traceId)?.text, 'aborted', 'never answered: no status, the label alone');
  assert.equal(service.size, 3);
});

test('the trace page says it was aborted, and what the app answered', async () => {
  const page = await open(`/trace?id=${late.traceId}`);
  assert.equal((await page.locator('[data-stat="Status"] .stat-value').innerText()).trim(), 'aborted');
  assert.equal((await page.locator('[data-stat="Status"] .stat-extra').innerText()).trim(), 'answered 200');
  const banners = await page.locator('.banner.warn').allInnerTexts();
  assert.ok(banners.some((b) => /^Aborted: the connection closed before the response was finished/.test(b) && /The app answered 200/.test(b)), JSON.stringify(banners));

  const never = await open(`/trace?id=${dropped.traceId}`);
  assert.equal((await never.locator('[data-stat="Status"] .stat-extra').innerText()).trim(), 'never answered');
  assert.ok((await never.locator('.banner.warn').allInnerTexts()).some((b) => /The app never answered/.test(b)));

  const normal = await open(`/trace?id=${answered.traceId}`);
  assert.equal((await normal.locator('[data-stat="Status"] .stat-value').innerText()).trim(), '200');
  assert.equal(await normal.locator('.tag.aborted').count(), 0);
});
