"""The HTTP API (FastAPI): :func:`jobbudget.api.app.create_app` builds it around a
:class:`jobbudget.service.BudgetService`.  Importing :mod:`jobbudget` does not load it."""
