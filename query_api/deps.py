"""FastAPI dependencies of the query API (clients live on app.state, made in the lifespan)."""

from typing import Annotated

from fastapi import Depends, Request

from query_api.cassandra_session import CassandraReader
from query_api.config import QuerySettings


def get_settings(request: Request) -> QuerySettings:
    return request.app.state.settings


def get_reader(request: Request) -> CassandraReader:
    return request.app.state.reader


SettingsDep = Annotated[QuerySettings, Depends(get_settings)]
ReaderDep = Annotated[CassandraReader, Depends(get_reader)]
