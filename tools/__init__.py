"""Scripts that set up and run the whole system natively (make run/up/down, tests, bench)."""
