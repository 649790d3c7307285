/**
 * The app shell: reads the route from the URL, shows its page, refreshes it every second while it
 * is live (and its tab visible), and keeps the page's last content under a banner when a refresh
 * fails, trying again every second while that can help (collector down, a 5xx). A collector that
 * wants its read token gets it asked for in place of the page.
 */
import './styles.css';
import { ApiError, NeedsToken, readToken } from './api.js';
import { problem, loading } from './components/states.js';
import { tokenForm } from './components/token-form.js';
import { h, replace } from './dom.js';
import { callsPage } from './pages/calls.js';
import { endpointPage } from './pages/endpoint.js';
import { loopPage } from './pages/loop.js';
import { mapPage } from './pages/map.js';
import { overviewPage } from './pages/overview.js';
import type { PageFactory, View } from './pages/page.js';
import { servicePage } from './pages/service.js';
import { tracePage } from './pages/trace.js';
import { href, parseRoute, type Page, type Route } from './route.js';

const PAGES: Record<Page, PageFactory> = { overview: overviewPage, service: servicePage, endpoint: endpointPage, trace: tracePage, loop: loopPage, map: mapPage, calls: callsPage };
const REFRESH_MS = 1000;

const banner = h('div', { class: 'banner-slot' });
const main = h('main', {});
document.body.append(
  h('header', { class: 'top' }, h('a', { class: 'brand', href: '/' }, h('span', { class: 'logo' }, '◔'), 'loopscope'), h('nav', {}, h('a', { href: '/' }, 'Services'), h('a', { href: '/map' }, 'Service map'))),
  banner,
  main,
);

let view: View | undefined;
let timer: ReturnType<typeof setTimeout> | undefined;
/** bumped on every navigation, so that a refresh of a page already left draws nothing */
let generation = 0;

/** Whether trying again can help: not when the collector said the request itself is wrong. */
const transient = (error: unknown): boolean => !(error instanceof ApiError && error.status < 500);

async function tick(current: number): Promise<void> {
  const started = Date.now();
  let again = view!.live;
  // a live page in a hidden tab waits, instead of asking the collector every second for nothing
  if (again && document.hidden && document.body.dataset['state'] === 'ready') {
    timer = setTimeout(() => void tick(current), REFRESH_MS);
    return;
  }
  try {
    await view!.refresh();
    if (current !== generation) return;
    replace(banner);
    document.body.dataset['state'] = 'ready';
  } catch (error) {
    if (current !== generation) return;
    if (error instanceof NeedsToken) {
      // a token kept from before that is refused now is forgotten: the form asks again
      const refused = readToken.get() !== null;
      readToken.clear();
      replace(banner);
      replace(main, tokenForm(refused, (token) => {
        readToken.set(token);
        show(parseRoute(new URL(location.href)));
      }));
      document.body.dataset['state'] = 'token';
      return;
    }
    again ||= transient(error);
    replace(banner, problem(error));
    document.body.dataset['state'] = 'error';
  }
  if (again) timer = setTimeout(() => void tick(current), Math.max(0, REFRESH_MS - (Date.now() - started)));
}

function show(route: Route): void {
  generation += 1;
  clearTimeout(timer);
  view?.destroy?.();
  view = PAGES[route.page]({ route, navigate });
  replace(main, view.element, loading());
  document.title = `loopscope — ${route.endpoint ?? route.service ?? 'services'}`;
  document.body.dataset['state'] = 'loading';
  const current = generation;
  void tick(current).then(() => main.querySelector(':scope > .loading')?.remove());
}

function navigate(route: Route): void {
  history.pushState(null, '', href(route));
  show(route);
}

// links inside the app change the page without reloading it
document.addEventListener('click', (e) => {
  const a = (e.target as Element).closest('a');
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || a.target) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith('/api/')) return;
  e.preventDefault();
  history.pushState(null, '', url);
  show(parseRoute(url));
});
window.addEventListener('popstate', () => show(parseRoute(new URL(location.href))));
show(parseRoute(new URL(location.href)));
