"""Pure domain code: standard library and numpy only; no I/O and no clock."""
