"""The Celery stack's own services (PostgreSQL, Redis) and its Debian packages."""
