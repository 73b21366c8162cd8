"""The collaborators behind :class:`jobbudget.service.BudgetService`, one concept a
module, each given only the ports it uses (see docs/architecture.md):

* :mod:`.spend_state`: the in-memory spend of every budget period in force;
* :mod:`.hot_state`: the strategy that decides with it (this process's own numbers,
  or numbers shared by every process through Redis or the database);
* :mod:`.pricing`: the cost model in force, estimates and mean job costs;
* :mod:`.metering`: pricing and storing finished jobs;
* :mod:`.admission`: checks, admissions and reservations;
* :mod:`.budget_admin`: budgets and the status of one;
* :mod:`.alert_planning` and :mod:`.alert_desk`: which alerts fire, and alerts as
  data and their delivery;
* :mod:`.keys`: API keys;
* :mod:`.live`: what the live WebSocket asks;
* :mod:`.sync`: keeping the spend state and the shared counters in step with the
  ledger, in the background;
* :mod:`.compose`: the composition root that builds them all from a ``Config``.
"""
