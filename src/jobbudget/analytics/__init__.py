"""Analytics use cases: forecasts, reports, dashboard views, forecast accuracy and
calibration.

Each function takes a :class:`~jobbudget.analytics.readmodel.ReadModel` (the few
public methods of the service it reads, and the store roles it uses) plus pure domain
code.  Nothing here imports the service: :class:`jobbudget.service.BudgetService`
satisfies the read model and calls these functions, never the other way round."""
