"""The ``backend`` fixture: a seeded SQL backend on SQLite and on PostgreSQL.

PostgreSQL: a throw-away database on ``$KLANTCONTACT_TEST_POSTGRES_URL`` (default: user postgres
on 127.0.0.1:5432, trust auth), one for the session. When it is unreachable the PostgreSQL cases
fail, unless ``KLANTCONTACT_SKIP_POSTGRES=1`` says to skip them.
"""

from __future__ import annotations

import os
import uuid
from typing import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from actions.backend.seed import seed
from actions.backend.sql import Base, SqlBackend

PG_ADMIN_URL = os.environ.get("KLANTCONTACT_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, dropped afterwards."""
    if os.environ.get("KLANTCONTACT_SKIP_POSTGRES") == "1":
        pytest.skip("KLANTCONTACT_SKIP_POSTGRES=1")
    admin = create_engine(PG_ADMIN_URL, future=True, isolation_level="AUTOCOMMIT",
                          connect_args={"connect_timeout": 3})
    name = f"helder_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except DBAPIError as exc:
        admin.dispose()
        pytest.fail(
            f"PostgreSQL is not reachable at {make_url(PG_ADMIN_URL).render_as_string(hide_password=True)} "
            f"({str(exc.orig).strip()}). Start it (trust auth for user postgres), point KLANTCONTACT_TEST_POSTGRES_URL "
            "at one, or set KLANTCONTACT_SKIP_POSTGRES=1 to skip the PostgreSQL tests.",
            pytrace=False,
        )
    try:
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            # A leftover session (a failed test's pool) would block DROP DATABASE.
            connection.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name AND pid <> pg_backend_pid()"),
                {"name": name},
            )
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path) -> Iterator[SqlBackend]:
    """A seeded backend on an empty database of each kind."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'helder.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    sql = SqlBackend(url)
    Base.metadata.drop_all(sql.engine)  # the PostgreSQL database is shared by the tests
    seed(sql)
    yield sql
    sql.dispose()
