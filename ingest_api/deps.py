"""FastAPI dependencies of the ingest API (clients live on app.state, made in the lifespan)."""

from typing import Annotated

from fastapi import Depends, Request

from ingest_api.config import IngestSettings
from ingest_api.kafka_writer import KafkaWriter


def get_settings(request: Request) -> IngestSettings:
    return request.app.state.settings


def get_writer(request: Request) -> KafkaWriter:
    return request.app.state.writer


SettingsDep = Annotated[IngestSettings, Depends(get_settings)]
WriterDep = Annotated[KafkaWriter, Depends(get_writer)]
