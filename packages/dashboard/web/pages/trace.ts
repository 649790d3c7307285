/**
 * One transaction: its numbers, where its time went (parts that do not overlap: partition.ts), the
 * other services' parts when the request crossed services (components/across-services.ts), and
 * its waterfall with the critical path and, from agents that list them, its slices on the event
 * loop and its waits, each wait linked to what held the loop then (`/api/traces/:id/holders`).
 */
import * as api from '../api.js';
import { breakdown } from '../charts/breakdown.js';
import { acrossServices } from '../components/across-services.js';
import { empty } from '../components/states.js';
import { ABORTED_WHY } from '../components/trace-list.js';
import { waterfall } from '../components/waterfall.js';
import { h, replace } from '../dom.js';
import * as fmt from '../format.js';
import { length, partitionTime, queuedBeforeStart } from '../partition.js';
import { holderRoute, href, routeTo, type Route } from '../route.js';
import { card, crumbs, heading, section, type PageFactory } from './page.js';

export const tracePage: PageFactory = ({ route }) => {
  const traceId = route.traceId ?? '';
  const element = h('div', { class: 'page' }, crumbs(route, [`trace ${traceId}`, undefined]));

  return {
    element,
    live: false,
    async refresh() {
      let trace: api.Trace;
      try {
        trace = await api.trace(traceId);
      } catch (error) {
        if (!(error instanceof api.ApiError && error.status === 404)) throw error;
        replace(element, crumbs(route, [`trace ${traceId}`, undefined]), empty('No such trace.', 'It may be older than the collector keeps traces (7 days by default), or the link is wrong.'));
        return;
      }
      // what held the loop in its waits; a collector without the endpoint, or a failure here, leaves the waits unlinked
      const holders = trace.waits && trace.waits.length > 0 ? await api.holders(traceId).catch((e: unknown) => (e instanceof api.ApiError ? undefined : Promise.reject(e))) : undefined;
      const service = trace.service ?? route.service;
      const queued = length(queuedBeforeStart(trace));
      const trail: Array<[string, Route | undefined]> = service
        ? [[service, routeTo(route, { page: 'service', service })], [trace.endpoint, routeTo(route, { page: 'endpoint', service, endpoint: trace.endpoint })]]
        : [[trace.endpoint, undefined]];
      const warnings = [
        trace.error ? `Failed${trace.errorMessage ? `: ${trace.errorMessage}` : ''}` : undefined,
        trace.aborted === true
          ? `Aborted: the connection closed before the response was finished, so no answer reached the client. ${
              trace.status === 0 ? 'The app never answered' : `The app answered ${trace.status}`
            }; the response ends when the app stopped working on it.`
          : undefined,
        trace.truncated ? 'Closed by the linger limit with work still pending: the numbers stop there.' : undefined,
        trace.atPartLimit
          ? `This trace id has the most parts the collector keeps (${fmt.count(trace.parts.length)}): later transactions with it were counted, not kept. A client may be sending the same traceparent with every request.`
          : undefined,
        trace.droppedSegments ? `${fmt.counted(trace.droppedSegments, 'segment')} ${trace.droppedSegments === 1 ? 'was' : 'were'} dropped (per-transaction segment limit).` : undefined,
      ].filter((w): w is string => w !== undefined);
      replace(
        element,
        crumbs(route, ...trail, [`trace ${traceId}`, undefined]),
        heading(trace.endpoint, h('span', { class: 'muted' }, `${fmt.clock(trace.start)} · trace ${trace.traceId}`)),
        ...warnings.map((w) => h('div', { class: 'banner warn' }, w)),
        h(
          'div',
          { class: 'stats' },
          trace.aborted === true
            ? card('Status', 'aborted', h('span', { class: 'tag aborted', title: ABORTED_WHY }, trace.status === 0 ? 'never answered' : `answered ${trace.status}`))
            : card('Status', trace.status === 0 ? 'not HTTP' : String(trace.status)),
          card('Response', fmt.ms(trace.response)),
          card('Duration', fmt.ms(trace.duration)),
          trace.firstByte === undefined ? null : card('First byte', fmt.ms(trace.firstByte), 'until the status line'),
          card('CPU', fmt.insideMs(trace.cpu), trace.cpu === null ? 'seen from outside the process' : 'total of its slices'),
          card('External', fmt.insideMs(trace.external), trace.external === null ? 'seen from outside the process' : 'parallel calls count once'),
          card(
            'Blocking',
            fmt.insideMs(trace.blocking),
            trace.blocking === null ? 'seen from outside the process' : queued > 0 ? `total wait for the loop, ${fmt.ms(queued)} of it queued before start` : 'total wait for the loop',
          ),
          trace.responseBytes === undefined ? null : card('Bytes', `${fmt.count(trace.responseBytes)} B`, `response body; request body ${fmt.count(trace.requestBytes ?? 0)} B`),
        ),
        section('Where the time went', breakdown([{ label: 'this request', parts: partitionTime(trace), response: trace.response }])),
        acrossServices(trace, (s) => href(routeTo(route, { page: 'service', service: s }))),
        waterfall(trace, service ? { holders, linkOf: (holder) => href(holderRoute(route, service, holder)) } : undefined),
      );
    },
  };
};
