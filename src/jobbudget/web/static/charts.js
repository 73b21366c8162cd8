// Charts as SVG, drawn with DOM calls (no library).  Each is role="img" with a title
// and a description in words, for screen readers.
import { money, num, s } from "./dom.js";

const W = 720;
const H = 260;
const PAD = { left: 62, right: 14, top: 12, bottom: 28 };

function frame(label, description, children, width = W, height = H) {
  const id = `c${Math.random().toString(36).slice(2, 9)}`;
  return s(
    "svg",
    { class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-labelledby": `${id}t ${id}d` },
    s("title", { id: `${id}t` }, label),
    s("desc", { id: `${id}d` }, description),
    children,
  );
}

/** A round top for an axis and its step (four steps of a round size). */
function nice(maxValue) {
  if (!(maxValue > 0)) return [1, 0.25];
  const power = 10 ** Math.floor(Math.log10(maxValue / 4));
  for (const f of [1, 1.5, 2, 2.5, 3, 4, 5, 7.5, 10]) if (4 * f * power >= maxValue) return [4 * f * power, f * power];
  return [40 * power, 10 * power];
}

function scale(maxValue, days, width = W, height = H, round = nice) {
  const [top, step] = round(maxValue);
  const x = (i) => PAD.left + ((width - PAD.left - PAD.right) * i) / Math.max(days - 1, 1);
  const y = (v) => PAD.top + (height - PAD.top - PAD.bottom) * (1 - v / top);
  return { x, y, top, step, width, height };
}

function axes(sc, labels) {
  const out = [s("line", { class: "axis", x1: PAD.left, x2: sc.width - PAD.right, y1: sc.y(0), y2: sc.y(0) })];
  for (let v = 0; v <= sc.top * 1.0001; v += sc.step) {
    out.push(s("line", { class: "grid", x1: PAD.left, x2: sc.width - PAD.right, y1: sc.y(v), y2: sc.y(v) }));
    out.push(s("text", { x: PAD.left - 6, y: sc.y(v) + 4, "text-anchor": "end" }, money(v.toFixed(2))));
  }
  labels.forEach(([i, text], k) => {
    const anchor = labels.length > 1 && k === 0 ? "start" : labels.length > 1 && k === labels.length - 1 ? "end" : "middle";
    out.push(s("text", { x: sc.x(i), y: sc.height - 8, "text-anchor": anchor }, text));
  });
  return out;
}

function dayIndex(start, day) {
  return Math.round((Date.parse(`${day}T00:00:00Z`) - Date.parse(`${start}T00:00:00Z`)) / 86400000);
}

function addDays(day, n) {
  return new Date(Date.parse(`${day}T00:00:00Z`) + n * 86400000).toISOString().slice(0, 10);
}

/** The period: cumulative spend, the pace that spends the amount exactly by the end,
 * the forecast to the period's end with its 80 % and 95 % bands, and the amount. */
export function periodChart(trends, status) {
  const start = status.period_start;
  const end = status.period_end;
  if (!start || !end) return null;
  const days = dayIndex(start, end) + 1;
  const amount = num(status.amount_in_force ?? status.budget.amount);
  const spent = [];
  let total = 0;
  for (const [day, value] of trends.daily) {
    const i = dayIndex(start, day);
    if (i < 0 || i >= days) continue;
    total += num(value);
    spent.push([i, total]);
  }
  // Daily figures are UTC days; a period in another time zone starts within one, so the
  // line is anchored on the period's exact spend (its last point is status.current_spend).
  const offset = num(status.current_spend) - total;
  const start0 = Math.max(0, offset);
  for (const point of spent) point[1] = Math.max(0, point[1] + offset);
  total += offset;
  const fc = trends.forecast;
  const banded = Boolean(fc && spent.length && spent[spent.length - 1][0] + 1 < days); // days left to project
  const high = Math.max(amount, total, banded ? num(fc.upper_95) : 0);
  const sc = scale(high, days + 1);
  const line = (points) => points.map(([i, v], k) => `${k ? "L" : "M"}${sc.x(i).toFixed(1)},${sc.y(v).toFixed(1)}`).join("");
  const parts = [];
  if (banded) {
    const [i0, v0] = spent[spent.length - 1];
    const last = days;
    for (const [cls, lo, hi] of [["band95", fc.lower_95, fc.upper_95], ["band80", fc.lower_80, fc.upper_80]]) {
      const points = [[i0 + 1, v0], [last, num(hi)], [last, num(lo)]];
      parts.push(s("path", { class: cls, d: `${line(points)}Z` }));
    }
    let cum = v0;
    const projected = [[i0 + 1, v0]];
    for (const [day, value] of fc.daily_projection) {
      const i = dayIndex(start, day);
      if (i <= i0) continue;
      cum += num(value);
      projected.push([i + 1, cum]);
    }
    if (projected.length < 2) projected.push([last, num(fc.predicted_spend)]);
    parts.push(s("path", { class: "forecast", d: line(projected) }));
  }
  parts.push(s("line", { class: "amount", x1: sc.x(0), x2: sc.x(days), y1: sc.y(amount), y2: sc.y(amount) }));
  parts.push(s("path", { class: "pace", d: line([[0, 0], [days, amount]]) }));
  if (spent.length) parts.push(s("path", { class: "spend", d: line([[0, start0], ...spent.map(([i, v]) => [i + 1, v])]) }));
  const labels = [[0, start], [Math.floor(days / 2), addDays(start, Math.floor(days / 2))], [days, end]];
  const forecastText = fc
    ? ` Forecast at ${end}: ${money(fc.predicted_spend)} (80 % band ${money(fc.lower_80)} to ${money(fc.upper_80)}, 95 % band ${money(fc.lower_95)} to ${money(fc.upper_95)}).`
    : " No forecast yet.";
  return frame(
    "Spend over the period",
    `Cumulative spend from ${start}: ${money(status.current_spend)} of ${money(status.amount_in_force ?? status.budget.amount)}.${forecastText}${status.budget.period.timezone === "UTC" ? "" : " Days are UTC days."}`,
    [...axes(sc, labels), ...parts],
  );
}

/** Spend per day over the window, with the daily pace. */
export function dailyBars(daily, pace) {
  const values = daily.map(([, v]) => num(v));
  const paceValue = pace === null || pace === undefined ? null : num(pace);
  const sc = scale(Math.max(...values, paceValue || 0, 0), daily.length + 1);
  const width = Math.max(1, ((W - PAD.left - PAD.right) / (daily.length + 1)) * 0.8);
  const bars = daily.map(([day, value], i) => {
    const v = num(value);
    return s(
      "rect",
      { class: paceValue !== null && v > paceValue ? "bar over" : "bar", x: sc.x(i + 0.5) - width / 2, y: sc.y(v), width, height: Math.max(0, sc.y(0) - sc.y(v)) },
      s("title", {}, `${day}: ${money(value)}`),
    );
  });
  if (paceValue !== null) bars.push(s("line", { class: "pace", x1: sc.x(0), x2: sc.x(daily.length), y1: sc.y(paceValue), y2: sc.y(paceValue) }));
  const labels = daily.length ? [[0.5, daily[0][0]], [daily.length - 0.5, daily[daily.length - 1][0]]] : [];
  const over = paceValue === null ? 0 : values.filter((v) => v > paceValue).length;
  return frame(
    "Spend per day",
    `${daily.length} days; ${paceValue === null ? "no pace" : `${over} days above the pace of ${money(pace)} a day`}.`,
    [...axes(sc, labels), ...bars],
  );
}

/** The weekly pattern: Monday..Sunday factors (mean 1: an average day). */
export function weekBars(factors) {
  const names = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
  const width = 420;
  const height = 200;
  const sc = scale(Math.max(...factors, 1), 8, width, height, (m) => [Math.ceil(m), Math.ceil(m) > 4 ? 2 : 1]);
  const bar = ((width - PAD.left - PAD.right) / 8) * 0.7;
  const bars = factors.map((f, i) =>
    s("rect", { class: "bar", x: sc.x(i + 0.5) - bar / 2, y: sc.y(f), width: bar, height: Math.max(0, sc.y(0) - sc.y(f)) }, s("title", {}, `${names[i]}: ×${f.toFixed(2)}`)),
  );
  const marks = [s("line", { class: "axis", x1: PAD.left, x2: width - PAD.right, y1: sc.y(0), y2: sc.y(0) }), s("line", { class: "pace", x1: PAD.left, x2: width - PAD.right, y1: sc.y(1), y2: sc.y(1) })];
  for (let v = 0; v <= sc.top * 1.0001; v += sc.step) marks.push(s("text", { x: PAD.left - 6, y: sc.y(v) + 4, "text-anchor": "end" }, `×${v}`));
  names.forEach((n, i) => marks.push(s("text", { x: sc.x(i + 0.5), y: height - 8, "text-anchor": "middle" }, n)));
  return frame(
    "Weekly pattern",
    `Spend on each weekday against an average day (×1, the dashed line), learned from the history: ${names.map((n, i) => `${n} ×${factors[i].toFixed(2)}`).join(", ")}.`,
    [...marks, ...bars],
    width,
    height,
  );
}
