"""Airflow integration (assets, task bodies, callbacks) and the local Airflow stack."""
