/** Empty, loading and error states, worded for what the user can do about them. */
import { ApiError, Unreachable } from '../api.js';
import { h, type Child } from '../dom.js';

export const empty = (title: string, ...hint: Child[]): HTMLElement => h('div', { class: 'empty' }, h('strong', {}, title), h('p', {}, ...hint));

export const loading = (): HTMLElement => h('div', { class: 'loading' }, 'Loading…');

/** The banner for a failed refresh; the page keeps what it last showed under it. */
export function problem(error: unknown): HTMLElement {
  if (error instanceof Unreachable) { return h('div', { class: 'banner error', role: 'alert' }, h('strong', {}, 'Collector unreachable. '), `${error.message}; retrying every second. Is \`loopscope up\` running?`); }
  if (error instanceof ApiError) return h('div', { class: 'banner error', role: 'alert' }, h('strong', {}, `The collector answered ${error.status}. `), error.message);
  return h('div', { class: 'banner error', role: 'alert' }, h('strong', {}, 'Something went wrong. '), error instanceof Error ? error.message : String(error));
}
