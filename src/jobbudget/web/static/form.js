// Create or edit a budget.  The API checks everything; its message is shown next to
// the field it names (the same words as the API and the CLI).
import { api, q, session } from "./api.js";
import { field, h, put, showError } from "./dom.js";

const PERIODS = ["monthly", "weekly", "daily", "quarterly", "yearly", "custom"];

function input(type, value, attrs = {}) {
  return h("input", { type, value: value ?? "", autocomplete: "off", ...attrs });
}

export async function budgetForm(main, live, id) {
  live.watch([]);
  const old = id ? await api(`/v1/budgets/${q(id)}`) : null;
  const who = session.who;
  const tenant = input("text", old ? old.tenant_id : who.role === "admin" ? "" : who.tenant_id, { required: true, spellcheck: "false", readonly: Boolean(old) });
  const queue = input("text", old?.queue_name, { spellcheck: "false", placeholder: "all queues" });
  const amount = input("text", old?.amount, { inputmode: "decimal", required: true });
  const currency = input("text", old?.currency ?? "USD", { maxlength: 3 });
  const period = h("select", {}, PERIODS.map((p) => h("option", { value: p, selected: (old?.period.type ?? "monthly") === p }, p)));
  const start = input("date", old?.period.type === "custom" ? old.period.start_date : "");
  const end = input("date", old?.period.type === "custom" ? old.period.end_date : "");
  const timezone = input("text", old?.period.timezone ?? "UTC", { spellcheck: "false" });
  const warn = input("text", old?.warning_threshold ?? "0.75", { inputmode: "decimal" });
  const throttle = input("text", old?.throttle_threshold ?? "0.9", { inputmode: "decimal" });
  const block = input("text", old?.block_threshold ?? "1", { inputmode: "decimal" });
  const custom = h("div", { class: "row", hidden: period.value !== "custom" }, field("period.start_date", "Start date", start), field("period.end_date", "End date", end));
  period.addEventListener("change", () => {
    custom.hidden = period.value !== "custom";
  });
  const save = h("button", { type: "submit" }, id ? "Save changes" : "Create budget");
  const form = h(
    "form",
    { class: "budget", novalidate: true, id: "budget-form" },
    h("div", { class: "notice bad form-error", role: "alert" }),
    h("div", { class: "row" }, field("tenant_id", "Tenant (or team / organisation node)", tenant, old ? "A budget stays with its tenant." : null), field("queue_name", "Queue (empty: all queues)", queue)),
    h("div", { class: "row" }, field("amount", "Amount", amount), field("currency", "Currency", currency)),
    h("div", { class: "row" }, field("period.type", "Period", period), field("period.timezone", "Time zone", timezone)),
    custom,
    h("div", { class: "row" }, field("warning_threshold", "Warn at (0.75 = 75 %)", warn), field("throttle_threshold", "Throttle at", throttle), field("block_threshold", "Block at", block)),
    h("div", { class: "actions" }, save, h("a", { href: id ? `#/budgets/${q(id)}` : "#/" }, "Cancel")),
  );
  form.querySelector(".form-error").textContent = "";
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {
      tenant_id: tenant.value.trim(),
      queue_name: queue.value.trim(),
      amount: amount.value.trim(),
      currency: currency.value.trim(),
      period: { type: period.value, timezone: timezone.value.trim() },
      warning_threshold: warn.value.trim(),
      throttle_threshold: throttle.value.trim(),
      block_threshold: block.value.trim(),
    };
    if (period.value === "custom") Object.assign(body.period, { start_date: start.value || null, end_date: end.value || null });
    if (id) delete body.tenant_id; // a budget's tenant does not change
    save.disabled = true;
    try {
      const saved = id ? await api(`/v1/budgets/${q(id)}`, { method: "PATCH", body }) : await api("/v1/budgets", { method: "POST", body });
      location.hash = `#/budgets/${q(saved.id)}`;
    } catch (error) {
      showError(form, error.field, error.message);
    } finally {
      save.disabled = false;
    }
  });
  put(main, h("h1", { tabindex: "-1" }, id ? "Edit budget" : "New budget"), form);
}
