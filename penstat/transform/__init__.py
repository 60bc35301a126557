"""Transformation layer: runs the dbt project (dbt_project/) on the warehouse."""
