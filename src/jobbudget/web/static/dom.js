// Building the page with DOM calls only: every string becomes a text node or an
// attribute value, never markup, so whatever a tenant typed is shown, not run.
const SVG = "http://www.w3.org/2000/svg";

function fill(node, attrs, children) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** An HTML element: h("td", {class: "n"}, "12.00"). */
export function h(tag, attrs, ...children) {
  return fill(document.createElement(tag), attrs, children);
}

/** An SVG element. */
export function s(tag, attrs, ...children) {
  return fill(document.createElementNS(SVG, tag), attrs, children);
}

/** Replace what `node` holds. */
export function put(node, ...children) {
  node.replaceChildren();
  return fill(node, {}, children);
}

/** A decimal string (exponent form included) as sign, whole digits and fraction
 * digits, without floating point; null when it is not a number. */
function digitsOf(text) {
  const m = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d{1,4}))?$/.exec(String(text).trim());
  if (!m || !(m[2] || m[3])) return null;
  const [, sign, whole = "", frac = "", exp = "0"] = m;
  let digits = whole + frac;
  let point = whole.length + Number(exp);
  if (point < 0) {
    digits = "0".repeat(-point) + digits;
    point = 0;
  }
  if (point > digits.length) digits += "0".repeat(point - digits.length);
  return { negative: sign === "-", whole: digits.slice(0, point).replace(/^0+(?=\d)/, "") || "0", frac: digits.slice(point) };
}

/** Exact money for people: a decimal string rounded half-even to cents, with thousands
 * separators (no floating point, never an exponent); below a cent: "< 0.01". */
export function money(text) {
  if (text === null || text === undefined) return "–";
  const n = digitsOf(text);
  if (!n) return "–";
  let cents = BigInt(n.whole + (n.frac + "00").slice(0, 2));
  const rest = n.frac.slice(2);
  // half-even, as the server's reports, CLI and alerts round (one figure, one text)
  const first = rest[0] || "0";
  if (first > "5" || (first === "5" && (/[1-9]/.test(rest.slice(1)) || cents % 2n === 1n))) cents += 1n;
  if (cents === 0n && /[1-9]/.test(n.frac)) return n.negative ? "> -0.01" : "< 0.01";
  const digits = cents.toString().padStart(3, "0");
  const int = digits.slice(0, -2).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${n.negative && cents !== 0n ? "-" : ""}${int}.${digits.slice(-2)}`;
}

/** A ratio ("0.953") as a percentage ("95.3 %"); never in exponent form. */
export function percent(ratio, digits = 1) {
  if (ratio === null || ratio === undefined) return "–";
  const value = Number(ratio) * 100;
  if (!Number.isFinite(value)) return "–";
  if (value >= 1e6) return "> 999,999 %";
  return `${value.toLocaleString("en", { minimumFractionDigits: digits, maximumFractionDigits: digits })} %`;
}

/** A number for charts only (display, never arithmetic on money that is shown). */
export function num(text) {
  const value = Number(text);
  return Number.isFinite(value) ? value : 0;
}

export const STATES = { allow: "OK", warn: "Warning", throttle: "Throttle", block: "Block" };

/** A budget's state as the overview shows it: Inactive (deactivated), Idle (no period
 * in force now) or its enforcement action's label. */
export function stateOf(active, periodStart, action) {
  if (!active) return "Inactive";
  if (!periodStart) return "Idle";
  return STATES[action] || action;
}

/** The state badge: text and colour (the text alone tells the state). */
export function badge(label) {
  return h("span", { class: `badge ${String(label).toLowerCase()}` }, label);
}

/** The utilization bar with its percentage. */
export function utilBar(ratio, label) {
  const width = Math.max(0, Math.min(100, num(ratio) * 100));
  return h(
    "div",
    { class: `util ${String(label).toLowerCase()}` },
    s(
      "svg",
      { viewBox: "0 0 100 10", preserveAspectRatio: "none", "aria-hidden": "true", focusable: "false" },
      s("rect", { class: "track", width: 100, height: 10, rx: 5 }),
      s("rect", { class: "fill", width: width.toFixed(1), height: 10, rx: 5 }),
    ),
    h("span", {}, percent(ratio)),
  );
}

/** A field's label, control and the place for its error. */
export function field(name, label, control, help) {
  control.id = `f-${name.replaceAll(".", "-")}`;
  control.name = name;
  const error = h("div", { class: "error", id: `${control.id}-error`, role: "alert" });
  control.setAttribute("aria-describedby", error.id);
  return h(
    "div",
    { class: "field", dataset: { field: name } },
    h("label", { for: control.id }, label),
    control,
    help ? h("div", { class: "muted" }, help) : null,
    error,
  );
}

/** The field box the API's ``name`` points to: "notifications[0].target" and
 * "notifications.0.target" are the field notifications.target; "period.type" falls back
 * to "period" when the form has no field of that name. */
function fieldBox(form, name) {
  let named = (name || "").replace(/\[\d+\]/g, "").replace(/\.\d+(?=\.|$)/g, "");
  for (; named; named = named.includes(".") ? named.slice(0, named.lastIndexOf(".")) : "") {
    const box = form.querySelector(`.field[data-field="${CSS.escape(named)}"]`);
    if (box) return box;
  }
  return null;
}

/** Show each [field, message] next to its field (or at the form's top when no field
 * matches), clearing what was shown before; the first field at fault gets the focus. */
export function showErrors(form, errors) {
  for (const node of form.querySelectorAll(".field.invalid")) node.classList.remove("invalid");
  for (const node of form.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
  for (const node of form.querySelectorAll(".error")) node.textContent = "";
  const top = form.querySelector(".form-error");
  if (top) top.textContent = "";
  let focused = false;
  for (const [fieldName, message] of errors) {
    const box = fieldBox(form, fieldName);
    if (!box) {
      if (top) top.textContent = message;
      continue;
    }
    box.classList.add("invalid");
    box.querySelector(".error").textContent = message;
    const control = box.querySelector("input, select");
    control.setAttribute("aria-invalid", "true");
    if (!focused) control.focus();
    focused = true;
  }
}

/** Show ``message`` next to the field the API named (or at the form's top). */
export function showError(form, fieldName, message) {
  showErrors(form, message ? [[fieldName, message]] : []);
}

/** "2026-12-06T07:01:02Z" as "2026-12-06 07:01 UTC". */
export function when(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : `${d.toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

/** Call ``fn`` about ``soon`` ms after the first of a burst of calls, and at most once
 * every ``every`` ms: a page that reads the API again on live changes stays cheap for
 * the server however fast jobs come. */
export function throttled(fn, soon, every) {
  let timer = null;
  let last = -Infinity;
  return () => {
    if (timer !== null) return;
    const wait = Math.max(soon, last + every - Date.now());
    timer = setTimeout(async () => {
      last = Date.now();
      try {
        await fn();
      } finally {
        timer = null;
      }
    }, wait);
  };
}
