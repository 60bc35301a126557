# penstat on the official Apache Airflow image.
#
# Built by docker-compose.yml (`build: .`); see docs/docker.md. The image holds the
# project at /opt/penstat; the data root PENSTAT_HOME (/opt/penstat/home) is a
# volume mounted by compose, never baked in.
#
# Keep the tag in step with the apache-airflow pin in requirements.lock
# (tests/unit/orchestration/test_compose.py checks that they agree).
FROM apache/airflow:3.3.2-python3.11

# The project code is the image's, not the containers': it is built by the airflow
# user (pip installs into that user's site-packages), then handed to root and made
# read-only for everyone else (files 0644, folders 0755, nothing group-writable).
# Compose runs the containers under AIRFLOW_UID with group 0; at run time they write
# only PENSTAT_HOME (/opt/penstat/home, a volume: deliveries, warehouse, publications,
# reports, and dbt's target/ and logs/) and the Airflow logs (/opt/airflow/logs).
# Great Expectations writes its results and Data Docs under PENSTAT_HOME/reports too.
USER root
RUN mkdir -p /opt/penstat \
    && chown airflow:0 /opt/penstat
USER airflow

# Dependencies first, so that a code change does not reinstall them.
#
# requirements.lock is the project's exact resolution (uv pip compile). It pins
# apache-airflow==3.3.2 itself; naming apache-airflow==${AIRFLOW_VERSION} (set by the
# base image) as well is the pattern the Airflow image documentation recommends: pip
# then refuses to move Airflow away from the version the image was built with,
# instead of silently up- or downgrading it.
#
# dbt-core is pinned <1.12 (1.11.x in the lock) on purpose: dbt-core 1.12 cannot
# be installed offline, because one of its dependencies downloads a wheel from
# the internet while it builds. Do not bump it here without solving that first.
#
# The lock also carries the dev tools (pytest, ruff, check-jsonschema); they are
# small and harmless at run time, and installing the lock unchanged keeps the
# image on exactly the versions CI tests.
#
# requirements-celery.lock adds what the CeleryExecutor deployment needs (the celery,
# postgres and fab providers, psycopg2, psycopg 3, asyncpg), resolved with the main
# lock as constraints, so installing both moves no version of the main lock.
COPY --chown=airflow:0 requirements.lock requirements-celery.lock pyproject.toml /opt/penstat/
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" \
        -r /opt/penstat/requirements.lock -r /opt/penstat/requirements-celery.lock

# The project itself. .dockerignore is an allow-list: only the package (penstat/),
# dags/, dbt_project/, expectations/, config/ and the files above reach the build context,
# so no .env, local warehouse or virtualenv can leak into the image.
COPY --chown=airflow:0 . /opt/penstat/

# Editable install: the package stays in /opt/penstat, where penstat.core.locations
# finds config/penstat.toml, dbt_project/ and expectations/ relative to the
# checkout. --no-deps: everything was installed from the lock above.
RUN pip install --no-cache-dir --no-deps -e /opt/penstat \
    && python -m compileall -q /opt/penstat/penstat /opt/penstat/dags

# Read-only code: compiled above (the containers cannot write __pycache__ here), then
# owned by root, and PENSTAT_HOME the one writable folder (its mount point).
USER root
RUN chown -R root:root /opt/penstat \
    && chmod -R u=rwX,go=rX /opt/penstat \
    && mkdir -p /opt/penstat/home \
    && chown airflow:0 /opt/penstat/home \
    && chmod 0770 /opt/penstat/home
USER airflow

# PYTHONPATH: the checkout, as in a local run from the repository root, and
# penstat/orchestration/airflow_settings, which holds airflow_local_settings.py,
# which preloads the task code in the processes that fork task processes (the Celery
# workers here, the scheduler with the LocalExecutor).
ENV PENSTAT_HOME=/opt/penstat/home \
    PENSTAT_CONFIG=/opt/penstat/config/penstat.toml \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/penstat/dags \
    PYTHONPATH=/opt/penstat:/opt/penstat/penstat/orchestration/airflow_settings
