"""The row fields the Java side reads and writes by name (allezon.Columns) are
the columns of flink_jobs/sql.py: the tag rows the SELECT produces
(PROFILE_COLUMNS, CUBE_INPUT_COLUMNS) and the cube rows (CUBE_COLUMNS). The tag
rows carry their event time as a time attribute (the windows' timestamps).
Runs in the job's own virtualenv (PyFlink).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest.importorskip("pyflink")

from pyflink.table import EnvironmentSettings, TableEnvironment

from flink_jobs import sql
from flink_jobs.config import JobSettings

COLUMNS_JAVA = (Path(__file__).resolve().parents[2]
                / "flink_jobs/operators/src/main/java/allezon/Columns.java")


@pytest.fixture(scope="module")
def t_env(tmp_path_factory: pytest.TempPathFactory) -> TableEnvironment:
    settings = JobSettings()
    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    path = tmp_path_factory.mktemp("tags") / "tags.json"
    path.write_text("")
    position = f"{sql.KAFKA_PARTITION} INT,\n  {sql.KAFKA_OFFSET} BIGINT"
    env.execute_sql(
        f"CREATE TABLE {sql.SOURCE_TABLE} ({sql.source_columns(settings, position)}) "
        f"WITH ('connector' = 'filesystem', 'path' = '{path}', 'format' = 'json')"
    )
    return env


def test_the_tag_rows_carry_the_event_time_as_their_rowtime(t_env: TableEnvironment) -> None:
    schema = t_env.sql_query(sql.tag_rows_query())._j_table.getResolvedSchema()
    assert "*ROWTIME*" in str(schema.getColumn(sql.EVENT_TIME).get().getDataType()), str(schema)


def test_the_tag_rows_hold_the_profile_columns_and_what_the_cube_reads(t_env: TableEnvironment) -> None:
    names = t_env.sql_query(sql.tag_rows_query()).get_schema().get_field_names()
    assert set(sql.PROFILE_COLUMNS) <= set(names)
    assert {sql.ACTION, *sql.CUBE_INPUT_COLUMNS} <= set(names)


def test_the_java_sinks_read_exactly_these_names() -> None:
    java = set(re.findall(r'static final String \w+ = "(\w+)";', COLUMNS_JAVA.read_text()))
    # The event time reaches Java as each record's timestamp, not as a field.
    assert java == {*sql.CUBE_COLUMNS, *sql.PROFILE_COLUMNS, *sql.CUBE_INPUT_COLUMNS} - {sql.EVENT_TIME}
