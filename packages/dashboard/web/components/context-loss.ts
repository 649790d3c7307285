/**
 * Where a service's requests lost their context (GET /api/context-loss): a notice per call site,
 * saying which module to wrap or report, the requests it happened to and the work missing from them.
 */
import type { ContextLossSite } from '@loopscope/protocol';
import { h } from '../dom.js';
import * as fmt from '../format.js';

/** The sites named one by one; the rest are summed in one line. */
const SHOWN = 3;

/** `…/node_modules/pkg/lib/x.js:1:2` → `pkg/lib/x.js:1:2`; the app's own files as they are. */
const place = (site: string): string => {
  const at = site.lastIndexOf('node_modules/');
  return at < 0 ? site : site.slice(at + 'node_modules/'.length);
};

function notice(s: ContextLossSite): HTMLElement {
  const where = s.function === '' ? place(s.site) : `${s.function} at ${place(s.site)}`;
  const what = `${fmt.counted(s.count, 'request')} lost their context`;
  const missing = `${fmt.ms(s.lostMs)} of their work ran outside them and is missing from their numbers.`;
  const body =
    s.module === 'other'
      ? [`${what} at more call sites than the agent reports at once: ${missing}`]
      : s.module === 'app'
        ? [`${what} in your code (`, h('code', { title: s.site }, where), `): ${missing} Wrap the callbacks it keeps for later with `, h('code', {}, 'loopscope.wrap()'), '.']
        : [
            `${what} in `,
            h('strong', {}, s.module),
            ' (',
            h('code', { title: s.site }, where),
            `): ${missing} Wrap the callbacks you give ${s.module} with `,
            h('code', {}, 'loopscope.wrap()'),
            `, or report it to ${s.module}'s maintainers.`,
          ];
  return h('div', { class: 'banner warn', 'data-context-loss': s.module }, ...body);
}

export function lossNotices(sites: ContextLossSite[]): HTMLElement[] {
  const shown = sites.slice(0, SHOWN).map(notice);
  const rest = sites.slice(SHOWN);
  if (rest.length > 0) {
    const count = rest.reduce((n, s) => n + s.count, 0);
    shown.push(h('div', { class: 'banner warn' }, `…and ${fmt.counted(count, 'more request')} at ${fmt.counted(rest.length, 'more call site')} (GET /api/context-loss lists them).`));
  }
  return shown;
}
