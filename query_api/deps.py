"""FastAPI dependencies of the query API (clients live on app.state, made in the lifespan).

They are `async def` on purpose: FastAPI runs a plain `def` dependency in its
thread pool, a thread hop per request for a mere attribute read.
"""

from typing import Annotated

from fastapi import Depends, Request

from query_api.cassandra_session import CassandraReader
from query_api.config import QuerySettings


async def get_settings(request: Request) -> QuerySettings:
    settings: QuerySettings = request.app.state.settings
    return settings


async def get_reader(request: Request) -> CassandraReader:
    reader: CassandraReader = request.app.state.reader
    return reader


SettingsDep = Annotated[QuerySettings, Depends(get_settings)]
ReaderDep = Annotated[CassandraReader, Depends(get_reader)]
