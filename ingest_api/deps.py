"""FastAPI dependencies of the ingest API (clients live on app.state, made in the lifespan).

They are `async def` on purpose: FastAPI runs a plain `def` dependency in its
thread pool, a thread hop per request for a mere attribute read.
"""

from typing import Annotated

from fastapi import Depends, Request

from ingest_api.config import IngestSettings
from ingest_api.kafka_writer import KafkaWriter


async def get_settings(request: Request) -> IngestSettings:
    settings: IngestSettings = request.app.state.settings
    return settings


async def get_writer(request: Request) -> KafkaWriter:
    writer: KafkaWriter = request.app.state.writer
    return writer


SettingsDep = Annotated[IngestSettings, Depends(get_settings)]
WriterDep = Annotated[KafkaWriter, Depends(get_writer)]
