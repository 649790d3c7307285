/**
 * A sparkline: a small trend drawn as SVG lines, broken where there is no data, scaled from 0 to
 * the series' largest value (stated in its label, as is the meaning of the line).
 */
const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 90;
const HEIGHT = 22;

export function sparkline(values: Array<number | null>, color: string, label: string): SVGSVGElement {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${WIDTH} ${HEIGHT}`);
  svg.setAttribute('width', String(WIDTH));
  svg.setAttribute('height', String(HEIGHT));
  svg.setAttribute('class', 'spark');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', label);
  const title = document.createElementNS(SVG, 'title');
  title.textContent = label;
  svg.appendChild(title);
  const max = Math.max(0, ...values.map((v) => v ?? 0));
  const x = (i: number): number => (values.length < 2 ? WIDTH : (i / (values.length - 1)) * WIDTH);
  const y = (v: number): number => HEIGHT - 1 - (max === 0 ? 0 : (v / max) * (HEIGHT - 2));
  // one polyline per run of points with data: a gap stays a gap
  let run: string[] = [];
  const flush = (): void => {
    if (run.length === 0) return;
    const line = document.createElementNS(SVG, 'polyline');
    line.setAttribute('points', run.length === 1 ? `${run[0]} ${run[0]}` : run.join(' '));
    line.setAttribute('fill', 'none');
    line.setAttribute('stroke', color);
    line.setAttribute('stroke-width', run.length === 1 ? '3' : '1.5');
    line.setAttribute('stroke-linecap', 'round');
    svg.appendChild(line);
    run = [];
  };
  values.forEach((v, i) => (v === null ? flush() : run.push(`${x(i).toFixed(1)},${y(v).toFixed(1)}`)));
  flush();
  return svg;
}
