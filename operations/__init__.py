"""Running penstat: Airflow assets and task bodies, the local Airflow stack, the demo."""
