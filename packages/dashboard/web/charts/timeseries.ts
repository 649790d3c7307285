/**
 * A time-series chart (uPlot): one x axis of time, one or more lines of one unit. Wraps uPlot's
 * setup so pages only say what to draw; keeps the chart as wide as its card; and writes how many
 * points carry data to `data-points`, which says "drawn with data" to a reader and to the browser
 * tests alike.
 */
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { h } from '../dom.js';
import * as fmt from '../format.js';

export interface Line {
  label: string;
  color: string;
  /** dashed (on, off in px): a line that runs on top of another (duration over response) lets it show through */
  dash?: number[];
}

/** A horizontal line at `value` (an alert rule's threshold), named by `label`. */
export interface Threshold {
  value: number;
  label: string;
}

export interface TimeChart {
  element: HTMLElement;
  /** `x` in ms since the epoch; one array of values per line, null where there is no data */
  update(x: number[], lines: Array<Array<number | null>>): void;
  /** Dashed lines across the plot at these values (the y scale reaches them); [] for none. */
  thresholds(lines: Threshold[]): void;
  /** Thin upright lines at these times (ms since the epoch: long tasks on the event-loop charts); [] for none. */
  moments(times: number[]): void;
  destroy(): void;
}

const HEIGHT = 220;
const THRESHOLD_COLOR = '#c62828';
const MOMENT_COLOR = 'rgba(46, 139, 58, 0.55)';
const SPARSE = 60;

const sparse = (u: uPlot, series: number): boolean => (u.data[series] as Array<number | null>).filter((v) => v !== null).length < SPARSE;

/** The y axis's ticks of a chart in percent carry the sign: "0.5 %" cannot be read as a fraction. */
const percentTicks = (_u: uPlot, splits: number[]): string[] => splits.map((v) => `${Number(v.toPrecision(6))} %`);

/**
 * `onPick` gets the start (ms since the epoch) of the point under the cursor when the plot is
 * clicked: the pages show the traces of that moment. A chart whose `unit` is `%` gets its values
 * from 0 to 100, and its ticks say so.
 */
export function timeChart(title: string, unit: string, lines: Line[], format: (v: number) => string, onPick?: (t: number) => void): TimeChart {
  const plotArea = h('div', { class: 'chart-plot' });
  let marks: Threshold[] = [];
  let instants: number[] = [];
  const element = h('section', { class: 'card chart', 'data-chart': title, 'data-points': 0 }, h('h3', {}, title), plotArea);
  const opts: uPlot.Options = {
    width: 600,
    height: HEIGHT,
    legend: { live: true },
    // the cursor moves on every chart of the page at once, so one moment can be read across them
    cursor: { drag: { x: false, y: false }, sync: { key: 'loopscope' } },
    scales: {
      x: { time: true },
      y: {
        range: (_u, _min, dataMax) => {
          const max = Math.max(dataMax, ...marks.map((m) => m.value));
          return [0, max > 0 ? max * 1.1 : 1];
        },
      },
    },
    hooks: {
      draw: [
        (u) => {
          const ctx = u.ctx;
          ctx.save();
          ctx.strokeStyle = THRESHOLD_COLOR;
          ctx.fillStyle = THRESHOLD_COLOR;
          ctx.setLineDash([6, 4]);
          ctx.lineWidth = 1.5 * devicePixelRatio;
          ctx.font = `${11 * devicePixelRatio}px sans-serif`;
          ctx.textAlign = 'right';
          ctx.textBaseline = 'bottom';
          for (const m of marks) {
            const y = Math.round(u.valToPos(m.value, 'y', true));
            ctx.beginPath();
            ctx.moveTo(u.bbox.left, y);
            ctx.lineTo(u.bbox.left + u.bbox.width, y);
            ctx.stroke();
            ctx.fillText(m.label, u.bbox.left + u.bbox.width - 4 * devicePixelRatio, y - 3 * devicePixelRatio);
          }
          ctx.strokeStyle = MOMENT_COLOR;
          ctx.setLineDash([]);
          for (const t of instants) {
            const x = Math.round(u.valToPos(t / 1000, 'x', true));
            if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
            ctx.beginPath();
            ctx.moveTo(x, u.bbox.top);
            ctx.lineTo(x, u.bbox.top + u.bbox.height);
            ctx.stroke();
          }
          ctx.restore();
        },
      ],
    },
    axes: [
      { stroke: '#555', grid: { stroke: '#eee' }, space: 70, values: (_u, splits, _axis, _space, increment) => splits.map((v) => fmt.timeTick(v, increment)) },
      { stroke: '#555', grid: { stroke: '#eee' }, label: unit, size: 60, ...(unit === '%' ? { values: percentTicks } : {}) },
    ],
    series: [
      { label: 'time', value: (_u: uPlot, v: number | null) => (v === null ? '–' : fmt.momentLabel(v)) },
      ...lines.map((l) => ({
        label: l.label,
        stroke: l.color,
        width: 2,
        ...(l.dash ? { dash: l.dash } : {}),
        spanGaps: false,
        // a lone point between gaps draws no line: with few points, draw the points themselves (a
        // dashed line's smaller, so that the one under it shows)
        points: { show: sparse, size: l.dash ? 4 : 6, fill: l.color },
        value: (_u: uPlot, v: number | null) => (v === null ? '–' : format(v)),
      })),
    ],
  };
  const plot = new uPlot(opts, [[], ...lines.map(() => [])], plotArea);
  if (onPick) {
    plot.over.style.cursor = 'pointer';
    plot.over.title = 'click for the traces of this moment';
    plot.over.addEventListener('click', () => {
      const t = plot.cursor.idx === null || plot.cursor.idx === undefined ? undefined : plot.data[0][plot.cursor.idx];
      if (t !== undefined) onPick(t * 1000);
    });
  }
  const resize = new ResizeObserver(() => {
    const width = Math.floor(plotArea.clientWidth);
    if (width > 0 && width !== plot.width) plot.setSize({ width, height: HEIGHT });
  });
  resize.observe(plotArea);

  return {
    element,
    update(x, values) {
      plot.setData([x.map((t) => t / 1000), ...values] as uPlot.AlignedData);
      element.dataset['points'] = String(values.reduce((n, line) => n + line.filter((v) => v !== null).length, 0));
      element.dataset['from'] = String(x[0] ?? '');
    },
    moments(times) {
      instants = times;
      element.dataset['moments'] = String(times.length);
      plot.redraw(false);
    },
    thresholds(lines) {
      marks = lines;
      element.dataset['thresholds'] = JSON.stringify(lines.map((l) => l.value));
      element.title = lines.map((l) => l.label).join('\n');
      plot.redraw(true);
    },
    destroy() {
      resize.disconnect();
      plot.destroy();
    },
  };
}
