"""penstat: an event-driven prison-statistics warehouse (Airflow 3, dbt-duckdb, Great Expectations).

The package reads in the order the data flows; each layer imports only the
layers below it (import-linter checks this in `make lint`, see pyproject.toml):

    cli            the `penstat` command (up, down, status, demo, real, rebuild, ingest,
                   build, publish)
    orchestration  Airflow assets, task bodies, failure callbacks, the local Airflow stack
    reporting      text reports read from a publication (headline table, real-data summary)
    publication    stage, gate and switch a publication
    transform      dbt builds (incremental plan) and the risk model of the dbt Python models
    ingestion      a delivery folder in the inbox -> rows in the raw layer, or quarantine
    validation     the Great Expectations context, suites and runner
    senders        whatever writes into an inbox: the synthetic system, the real-data adapters
    warehouse      the working warehouse's raw layer and ledger (DDL, connection, session)
    contract       the delivery contract, the PENSTAT_HOME layout, the published interface
    core           configuration, the one DuckDB connect(), files, processes, clock, faults

docs/architecture.md walks through them.
"""
