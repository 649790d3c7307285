/** What every page gives the app shell, and the small pieces pages share. */
import { h, type Child } from '../dom.js';
import { href, routeTo, type Route } from '../route.js';
import type { Navigate } from '../components/controls.js';

export interface View {
  element: HTMLElement;
  /** fetches and redraws; rejects when the collector could not answer */
  refresh(): Promise<void>;
  /** whether the shell calls refresh every second */
  live: boolean;
  destroy?(): void;
}

export interface PageContext {
  route: Route;
  navigate: Navigate;
}

export type PageFactory = (ctx: PageContext) => View;

export function crumbs(route: Route, ...trail: Array<[string, Route | undefined]>): HTMLElement {
  const items: Child[] = [h('a', { href: href(routeTo(route, { page: 'overview' })) }, 'Services')];
  for (const [label, target] of trail) items.push(h('span', { class: 'sep' }, '›'), target ? h('a', { href: href(target) }, label) : h('span', {}, label));
  return h('nav', { class: 'crumbs', 'aria-label': 'breadcrumbs' }, ...items);
}

/** The tabs of a service: its endpoints and charts, and its event loop. */
export function serviceTabs(route: Route, service: string): HTMLElement {
  const tab = (label: string, page: 'service' | 'loop'): HTMLElement =>
    h('a', { href: href(routeTo(route, { page, service })), class: route.page === page ? 'tab on' : 'tab' }, label);
  return h('nav', { class: 'tabs' }, tab('Endpoints', 'service'), tab('Event loop', 'loop'));
}

export const card = (label: string, value: string, extra?: Child): HTMLElement =>
  h('div', { class: 'stat', 'data-stat': label }, h('div', { class: 'stat-label' }, label), h('div', { class: 'stat-value' }, value), extra ? h('div', { class: 'stat-extra' }, extra) : null);

export const section = (title: string, ...body: Child[]): HTMLElement => h('section', { class: 'card' }, h('h3', {}, title), ...body);

export const heading = (title: string, ...rest: Child[]): HTMLElement => h('div', { class: 'page-head' }, h('h2', {}, title), ...rest);
