// One budget: status, the period's chart with pace and forecast bands, spend per day,
// cost by component, resource and queue, trend and weekly pattern; its controls.  A
// live change updates the cards at once and redraws the rest from fresh figures.
import { api, q, session } from "./api.js";
import { dailyBars, periodChart, weekBars } from "./charts.js";
import { badge, h, money, percent, put, stateOf, throttled, utilBar } from "./dom.js";

function shareTable(id, caption, rows) {
  if (!rows.length) return null;
  return h(
    "div",
    { class: "scroll" },
    h(
      "table",
      { id },
      h("caption", { class: "sr-only" }, caption),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, caption), h("th", { scope: "col", class: "n" }, "Cost"), h("th", { scope: "col", class: "n" }, "Share"))),
      h("tbody", {}, rows.map(([name, cost, pct]) => h("tr", {}, h("td", {}, name), h("td", { class: "n" }, money(cost)), h("td", { class: "n" }, `${Number(pct).toFixed(1)} %`)))),
    ),
  );
}

/** The enforcement message without the budget's id (the page is about that budget). */
function said(message, id) {
  return (message || "").replace(`budget ${id} for `, "");
}

/** Days from the period's start to the server's today: the trends then cover the
 * period so far, and nothing before it. */
function periodDays(status) {
  if (!status.period_start) return 30;
  const today = String(session.who.now).slice(0, 10);
  const days = Math.round((Date.parse(`${today}T00:00:00Z`) - Date.parse(`${status.period_start}T00:00:00Z`)) / 86400000) + 1;
  return Math.max(1, Math.min(366, days));
}

function channels(budget, canWrite) {
  if (!budget.notifications.length) return h("p", { class: "muted" }, "No notification channels: alerts go to the server's channels only. Add one with Edit.");
  const result = h("p", { role: "status", class: "muted", id: "channel-result" });
  const list = h(
    "ul",
    { class: "deliveries" },
    budget.notifications.map((c, i) => {
      const button = canWrite ? h("button", { type: "button", class: "secondary", dataset: { channel: i } }, "Send a test") : null;
      button?.addEventListener("click", async () => {
        button.disabled = true;
        result.textContent = "Sending…";
        try {
          await api(`/v1/budgets/${q(budget.id)}/channels/${i}/test`, { method: "POST" });
          result.textContent = `Test message sent through ${c.type} ${c.target}.`;
        } catch (error) {
          result.textContent = `The test failed: ${error.message}`;
        } finally {
          button.disabled = false;
        }
      });
      return h("li", {}, `${c.type} → ${c.target} (${c.events.join(", ")})${c.enabled ? "" : " — disabled"} `, button);
    }),
  );
  return h("div", {}, list, result);
}

function cards(budget, spend, utilization, stateLabel, amount) {
  return [
    h("div", { class: "card" }, h("span", { class: "muted" }, "Spend this period"), h("b", { id: "budget-spend" }, `${money(spend)} ${budget.currency}`)),
    h("div", { class: "card" }, h("span", { class: "muted" }, "Amount in force"), h("b", { id: "budget-amount" }, `${money(amount)} ${budget.currency}`)),
    h("div", { class: "card" }, h("span", { class: "muted" }, "Utilization"), utilBar(utilization, stateLabel)),
    h("div", { class: "card" }, h("span", { class: "muted" }, "State"), h("b", { id: "budget-state" }, badge(stateLabel))),
  ];
}

/** Everything drawn from the status and the trends (redrawn on a live change). */
function figures(id, budget, status, trends) {
  const fc = trends.forecast;
  const weekly = fc && fc.day_of_week_factors.some((f) => Math.abs(f - 1) > 1e-9);
  const labelled = Object.keys(budget.labels || {}).length > 0;
  return [
    h("p", { id: "budget-message" }, said(status.action.message, id)),
    labelled ? h("p", { class: "notice" }, "This budget counts only jobs with its labels; the charts, the forecast and the costs below cover every job of its tenant and queue.") : null,
    h("h2", {}, "This period"),
    h("div", { class: "legend", "aria-hidden": "true" }, h("span", {}, "— spend"), h("span", {}, "- - pace to the amount"), h("span", {}, "··· forecast, shaded: 80 % and 95 % bands"), h("span", {}, "red: the amount")),
    h("div", { id: "period-chart" }, periodChart(trends, status) || h("p", { class: "muted" }, "No period in force now.")),
    fc ? h("p", { id: "forecast" }, `Forecast: ${money(fc.predicted_spend)} ${budget.currency} by ${fc.period_end} (${percent(fc.budget_utilization, 0)}); trend ${fc.trend_direction}. ${fc.recommendation}`) : h("p", { class: "muted" }, "Not enough history to forecast."),
    h("h2", {}, "Spend per day this period"),
    dailyBars(trends.daily, trends.daily_pace),
    h(
      "div",
      { class: "grid2" },
      h("div", {}, h("h2", {}, "Cost by component"), shareTable("components", "Component", trends.components.filter((c) => Number(c.cost) > 0).map((c) => [c.name, c.cost, c.percentage])) || h("p", { class: "muted" }, "No cost yet.")),
      h("div", {}, h("h2", {}, "Cost by queue"), shareTable("queues", "Queue", (trends.queues || []).map((c) => [c.name, c.cost, c.percentage])) || h("p", { class: "muted" }, "No jobs yet.")),
      trends.resources && trends.resources.length ? h("div", {}, h("h2", {}, "Cost by resource"), shareTable("resources", "Resource", trends.resources.map((r) => [r.name, r.cost, r.percentage]))) : null,
    ),
    weekly ? h("div", { class: "week-chart" }, h("h2", {}, "Weekly pattern"), weekBars(fc.day_of_week_factors)) : null,
  ];
}

export async function budgetPage(main, live, id) {
  const status = await api(`/v1/budgets/${q(id)}/status`);
  const budget = status.budget;
  const trends = await api(`/v1/budgets/${q(id)}/trends?days=${periodDays(status)}`);
  const canWrite = session.who.can_write && (session.who.can_admin || budget.owner !== "operator");
  const head = h("section", { class: "cards", id: "budget-cards" }, cards(budget, status.current_spend, status.utilization, stateOf(budget.active, status.period_start, status.action.type), status.amount_in_force ?? budget.amount));
  const body = h("div", { id: "budget-figures" }, figures(id, budget, status, trends));

  const deactivate = h("button", { type: "button", class: "danger", id: "deactivate" }, "Deactivate");
  deactivate.addEventListener("click", async () => {
    if (!confirm(`Deactivate this budget of ${budget.tenant_id}? Its jobs are no longer checked against it.`)) return;
    try {
      await api(`/v1/budgets/${q(id)}`, { method: "DELETE" });
      location.hash = "#/";
    } catch (error) {
      alert(error.message);
    }
  });
  put(
    main,
    h("p", {}, h("a", { href: "#/" }, "← All budgets")),
    h("h1", { tabindex: "-1" }, `${budget.tenant_id}: ${budget.queue_name || "all queues"}`),
    h("p", { class: "muted" }, `${budget.period.type} budget, ${status.period_start || "–"} to ${status.period_end || "–"} (${budget.period.timezone}); warn at ${percent(budget.warning_threshold, 0)}, throttle at ${percent(budget.throttle_threshold, 0)}, block at ${percent(budget.block_threshold, 0)}; set by ${budget.owner}.`),
    head,
    canWrite && budget.active ? h("div", { class: "actions" }, h("a", { href: `#/budgets/${q(id)}/edit`, class: "button" }, "Edit"), deactivate) : null,
    body,
    h("h2", {}, "Notification channels"),
    channels(budget, canWrite),
  );

  const redraw = throttled(
    async () => {
      try {
        const fresh = await api(`/v1/budgets/${q(id)}/status`);
        const freshTrends = await api(`/v1/budgets/${q(id)}/trends?days=${periodDays(fresh)}`);
        put(body, figures(id, budget, fresh, freshTrends));
      } catch {
        /* the next change draws it again */
      }
    },
    300,
    2000,
  ); // the cards change at once; the figures at most every 2 s
  let shown = [status.current_spend, status.utilization, status.action.type];
  live.onStatus = (m) => {
    if (m.budget_id !== id) return;
    const now = [m.current_spend, m.utilization, m.action];
    if (now.every((value, i) => (i < 2 ? Number(value) === Number(shown[i]) : value === shown[i]))) return; // the snapshot on (re)connecting: nothing new
    shown = now;
    put(head, cards(budget, m.current_spend, m.utilization, stateOf(budget.active, m.period_start, m.action), m.budget_amount ?? budget.amount));
    head.classList.add("flash");
    setTimeout(() => head.classList.remove("flash"), 1300);
    redraw();
  };
  live.watch(budget.active ? [id] : []);
}
