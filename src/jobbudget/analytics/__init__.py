"""Analytics use cases built on the service: forecasts, reports and calibration.

Each module takes a :class:`jobbudget.service.BudgetService` and uses its public
methods (``now``, ``store``, ``get_budget_status``, ...) plus pure domain code."""
