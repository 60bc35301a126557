"""`make bench`: how long and how much memory penstat needs, against DuckDB's own limit."""
