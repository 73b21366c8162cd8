// Overview: every budget with its spend, amount, utilization and state, sortable and
// filterable, updated live; the month's totals and top cost drivers, read again (with
// any new budget) a second after a live change.
import { api } from "./api.js";
import { badge, h, money, put, stateOf, throttled, utilBar } from "./dom.js";

const ORDER = ["Inactive", "Idle", "OK", "Warning", "Throttle", "Block"];
/** Budgets not in force sort below every budget that is (by utilization too). */
const inForce = (v) => v.status !== "Inactive" && v.status !== "Idle";
const COLUMNS = [
  ["tenant", "Tenant", (v) => v.budget.tenant_id],
  ["queue", "Queue", (v) => v.budget.queue_name || ""],
  ["spend", "Spend", (v) => Number(v.spend), "n hide-narrow"],
  ["amount", "Amount", (v) => Number(v.amount ?? v.budget.amount), "n hide-narrow"],
  ["utilization", "Utilization", (v) => (inForce(v) ? Number(v.utilization) : -1)],
  ["state", "State", (v) => ORDER.indexOf(v.status)],
  ["period", "Period ends", (v) => v.period_end || "", "hide-narrow"],
];
/** The month's totals and drivers are read again a second after a change, at most every 10 s. */
const SOON_MS = 1000;
const EVERY_MS = 10000;

function scopeText(budget) {
  const labels = Object.entries(budget.labels || {}).map(([k, v]) => `${k}=${v}`);
  return [budget.queue_name || "all queues", ...labels].join(" · ");
}

function summary(data) {
  const counts = {};
  for (const v of data.budgets) counts[v.status] = (counts[v.status] || 0) + 1;
  const currency = data.budgets.length ? data.budgets[0].budget.currency : "USD";
  return [
    h("div", { class: "card" }, h("span", { class: "muted" }, `Spend ${data.since} to ${data.until}`), h("b", { id: "total-spend" }, `${money(data.total_spend)} ${currency}`)),
    h("div", { class: "card" }, h("span", { class: "muted" }, "Jobs"), h("b", { id: "total-jobs" }, data.total_jobs.toLocaleString("en"))),
    h("div", { class: "card" }, h("span", { class: "muted" }, "Active alerts"), h("b", {}, h("a", { href: "#/alerts", id: "active-alerts" }, String(data.active_alerts)))),
    h("div", { class: "card" }, h("span", { class: "muted" }, "Over a threshold"), h("b", { id: "over-threshold" }, String((counts.Warning || 0) + (counts.Throttle || 0) + (counts.Block || 0)))),
  ];
}

function drivers(data) {
  if (!data.drivers.length) return h("p", { class: "muted" }, "No jobs metered this month yet.");
  return h(
    "div",
    { class: "scroll" },
    h(
      "table",
      { id: "drivers" },
      h("caption", { class: "sr-only" }, "Top cost drivers"),
      h("thead", {}, h("tr", {}, ["Tenant", "Queue", "Cost", "Jobs", "Share"].map((t, i) => h("th", { scope: "col", class: i > 1 ? "n" : null }, t)))),
      h(
        "tbody",
        {},
        data.drivers.map((d) =>
          h("tr", {}, h("td", {}, d.tenant_id), h("td", {}, d.queue_name), h("td", { class: "n" }, money(d.total_cost)), h("td", { class: "n" }, d.job_count.toLocaleString("en")), h("td", { class: "n" }, `${Number(d.percentage).toFixed(1)} %`)),
        ),
      ),
    ),
  );
}

export async function overview(main, live) {
  let data = await api("/v1/dashboard?top=10");
  const views = new Map(data.budgets.map((v) => [v.budget.id, v]));
  const state = { sort: "utilization", descending: true, text: "", status: "" };
  const tbody = h("tbody");
  const count = h("p", { class: "muted", role: "status" });
  const headRow = h("tr");
  const cards = h("section", { class: "cards", "aria-label": "This month" }, summary(data));
  const driverBox = h("div", {}, drivers(data));

  const visible = () => {
    const text = state.text.toLowerCase();
    const key = COLUMNS.find(([name]) => name === state.sort)[2];
    return [...views.values()]
      .filter((v) => !state.status || v.status === state.status)
      .filter((v) => !text || `${v.budget.tenant_id} ${scopeText(v.budget)}`.toLowerCase().includes(text))
      .sort((a, b) => {
        const x = key(a);
        const y = key(b);
        const order = x < y ? -1 : x > y ? 1 : 0;
        return (state.descending ? -order : order) || String(a.budget.id).localeCompare(String(b.budget.id));
      });
  };

  const row = (v) =>
    h(
      "tr",
      { dataset: { budget: v.budget.id } },
      h("td", {}, h("a", { href: `#/budgets/${encodeURIComponent(v.budget.id)}` }, v.budget.tenant_id)),
      h("td", {}, scopeText(v.budget)),
      h("td", { class: "n hide-narrow", dataset: { col: "spend" } }, money(v.spend)),
      h("td", { class: "n hide-narrow" }, `${money(v.amount ?? v.budget.amount)} ${v.budget.currency}`),
      h("td", { dataset: { col: "utilization" } }, utilBar(v.utilization, v.status)),
      h("td", { dataset: { col: "state" } }, badge(v.status)),
      h("td", { class: "hide-narrow" }, v.period_end || "–"),
    );

  const render = () => {
    const rows = visible();
    put(tbody, rows.map(row));
    count.textContent = `${rows.length} of ${views.size} budgets`;
    for (const th of headRow.children) {
      th.setAttribute("aria-sort", th.dataset.col === state.sort ? (state.descending ? "descending" : "ascending") : "none");
    }
  };

  for (const [name, label, , cls] of COLUMNS) {
    const button = h("button", { type: "button", class: "sort" }, label);
    button.addEventListener("click", () => {
      state.descending = state.sort === name ? !state.descending : name !== "tenant" && name !== "queue";
      state.sort = name;
      render();
    });
    headRow.append(h("th", { scope: "col", class: cls || null, dataset: { col: name } }, button));
  }

  const search = h("input", { id: "filter-text", type: "search", placeholder: "tenant or queue" });
  search.addEventListener("input", () => {
    state.text = search.value;
    render();
  });
  const select = h("select", { id: "filter-state" }, h("option", { value: "" }, "All states"), ORDER.map((o) => h("option", { value: o }, o)));
  select.addEventListener("change", () => {
    state.status = select.value;
    render();
  });

  put(
    main,
    h("h1", { tabindex: "-1" }, "Budgets"),
    cards,
    h(
      "div",
      { class: "tools" },
      h("div", {}, h("label", { for: "filter-text" }, "Filter"), search),
      h("div", {}, h("label", { for: "filter-state" }, "State"), select),
    ),
    h("p", { class: "muted" }, "OK, Warning, Throttle and Block: where the spend stands against the thresholds. Idle: no period in force now. Inactive: deactivated."),
    count,
    h("div", { class: "scroll" }, h("table", { id: "budgets" }, h("caption", { class: "sr-only" }, "Budgets"), h("thead", {}, headRow), tbody)),
    h("h2", {}, "Top cost drivers this month"),
    driverBox,
  );
  render();
  performance.mark("jobbudget:overview"); // benchmarks/bench_dashboard.py: the table is in the page

  const watched = () => [...views.values()].filter((v) => v.budget.active).map((v) => v.budget.id);
  const refresh = async () => {
    try {
      data = await api("/v1/dashboard?top=10");
    } catch {
      return; // the next change tries again
    }
    const before = watched().join(" ");
    for (const v of data.budgets) views.set(v.budget.id, v);
    put(cards, summary(data));
    put(driverBox, drivers(data));
    render();
    if (watched().join(" ") !== before) live.watch(watched()); // a budget made elsewhere
  };
  const later = throttled(refresh, SOON_MS, EVERY_MS);

  live.onStatus = (m) => {
    const v = views.get(m.budget_id);
    if (!v) return;
    const status = stateOf(v.budget.active, m.period_start, m.action);
    const same = Number(v.spend) === Number(m.current_spend) && Number(v.utilization) === Number(m.utilization) && v.status === status;
    if (same && v.period_end === m.period_end) return; // the snapshot on (re)connecting: nothing new
    v.spend = m.current_spend;
    v.utilization = m.utilization;
    if (m.budget_amount !== null) v.amount = m.budget_amount;
    v.status = status;
    v.period_end = m.period_end;
    const old = tbody.querySelector(`tr[data-budget="${CSS.escape(m.budget_id)}"]`);
    if (old) {
      const fresh = row(v);
      fresh.classList.add("flash");
      old.replaceWith(fresh);
    }
    later();
  };
  live.watch(watched());
}
