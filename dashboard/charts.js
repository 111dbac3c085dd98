// charts.js: the dashboard's charts. The sparkline of the endpoints list is a small SVG drawn
// by preact (no library); the endpoint page's charts use uPlot (npm package uplot, served by
// hookd at vendor/uplot.js), loaded the first time a chart is shown so that the other pages
// do not pay for it. Every chart has a text alternative (role="img" and a label that says what
// it shows, the totals included).
import { h, Component } from './vendor/preact.mjs';
import htm from './vendor/htm.mjs';

const html = htm.bind(h);
const UPLOT_SRC = '/api/webhook/ui/vendor/uplot.js';
let uplotLoading = null;

// Resolves with window.uPlot once vendor/uplot.js has run (a <script src>: the CSP allows
// this origin's scripts, nothing inline).
export function loadUplot() {
  if (window.uPlot) return Promise.resolve(window.uPlot);
  if (!uplotLoading) {
    uplotLoading = new Promise((resolve, reject) => {
      const s = document.createElement('script');
      s.src = UPLOT_SRC;
      s.onload = () => resolve(window.uPlot);
      s.onerror = () => reject(new Error('uPlot did not load'));
      document.head.appendChild(s);
    });
  }
  return uplotLoading;
}

// A 24-hour sparkline: attempts per hour (grey) and failed ones (red), from the buckets of
// GET /v1/{id}/stats.
export function Sparkline({ buckets, label }) {
  if (!buckets) return html`<span class="spark-empty" aria-hidden="true">…</span>`;
  const w = 120, hgt = 28;
  const all = buckets.map((b) => b.delivered + b.failed + b.givenUp);
  const bad = buckets.map((b) => b.failed + b.givenUp);
  const max = Math.max(1, ...all);
  const pts = (vals) => vals.map((v, i) =>
    `${((i / Math.max(1, vals.length - 1)) * w).toFixed(1)},${(hgt - 2 - (v / max) * (hgt - 4)).toFixed(1)}`).join(' ');
  const total = all.reduce((a, b) => a + b, 0), failed = bad.reduce((a, b) => a + b, 0);
  return html`<svg class="spark" width=${w} height=${hgt} viewBox=${`0 0 ${w} ${hgt}`} role="img"
      aria-label=${`${label}: ${total} attempts in 24 hours, ${failed} failed`}>
    <polyline class="spark-all" points=${pts(all)} />
    <polyline class="spark-bad" points=${pts(bad)} />
  </svg>`;
}

// A uPlot chart of series over the buckets' start times. props: title, buckets, series:
// [{label, value(bucket) -> number|null, color}], unit.
export class Chart extends Component {
  componentDidMount() { this.draw(); }
  componentDidUpdate(prev) { if (prev.buckets !== this.props.buckets) this.draw(); }
  componentWillUnmount() { if (this.plot) this.plot.destroy(); }
  draw() {
    const { buckets, series } = this.props;
    loadUplot().then((uPlot) => {
      if (!this.box) return;
      if (this.plot) this.plot.destroy();
      const width = Math.max(280, Math.min(this.box.clientWidth || 600, 900));
      const xs = buckets.map((b) => Date.parse(b.start) / 1000);
      const raw = series.map((s) => buckets.map((b) => s.value(b)));
      let data, opts;
      if (this.props.stacked) {
        // stacked bars: series i is drawn as the sum of the series up to it, the tallest
        // first, so every bar shows its parts; the legend shows each series' own value
        const prefix = raw.map((_, i) => xs.map((_, j) => raw.slice(0, i + 1).reduce((a, r) => a + (r[j] || 0), 0)));
        const idx = series.map((_, i) => i).reverse();
        const bars = uPlot.paths.bars({ size: [0.8, 40] });
        data = [xs, ...idx.map((i) => prefix[i])];
        opts = idx.map((i) => ({ label: series[i].label, stroke: series[i].color, fill: series[i].color,
          width: 1, paths: bars, points: { show: false },
          value: (u, v, si, k) => (k === null || k === undefined ? '--' : String(raw[i][k])) }));
      } else {
        data = [xs, ...raw];
        opts = series.map((s) => ({ label: s.label, stroke: s.color, width: 2,
          points: { show: true, size: 5 }, spanGaps: false }));
      }
      this.plot = new uPlot({
        width, height: 200,
        series: [{}, ...opts],
        axes: [{}, { size: 50 }],
        legend: { show: true },
        cursor: { drag: { x: false, y: false } },
      }, data, this.box);
    }).catch((e) => { if (this.box) this.box.textContent = e.message; });
  }
  render({ title, buckets, series, unit }) {
    const sums = series.map((s) => {
      const v = buckets.map((b) => s.value(b)).filter((x) => x !== null && x !== undefined);
      return unit === 'ms'
        ? `${s.label} max ${v.length ? Math.max(...v) : 'none'}${v.length ? ' ms' : ''}`
        : `${s.label} ${v.reduce((a, b) => a + b, 0)}`;
    }).join(', ');
    return html`<figure class="chart">
      <figcaption>${title}</figcaption>
      <div class="chart-box" role="img" aria-label=${`${title}: ${sums}`}
        ref=${(el) => { this.box = el; }}></div>
    </figure>`;
  }
}
