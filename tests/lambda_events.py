"""Lambda events as API Gateway and Lambda's SQS poller send them, shaped like the files in
events/: shared by the tests that invoke the functions (cargo lambda, QEMU, SAM)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import boto3

EVENTS = Path(__file__).resolve().parent.parent / "events"


def api_event(method: str, path: str, body: dict | None = None, query: str = "", claims_of: str = "list.json") -> dict:
    """An API Gateway HTTP API event, with the caller of the events/ file `claims_of`."""
    event = json.loads((EVENTS / claims_of).read_text())
    event.update(routeKey=f"{method} {path}", rawPath=path, rawQueryString=query,
                 queryStringParameters=dict(p.split("=", 1) for p in query.split("&") if p) or None,
                 body=json.dumps(body) if body is not None else None, isBase64Encoded=False)
    event["requestContext"]["http"].update(method=method, path=path)
    return event


def sqs_batch() -> dict | None:
    """One batch from the emulator's queue (`QUEUE_URL`), as Lambda's SQS poller delivers it;
    each record keeps its `receiptHandle` for the delete."""
    sqs = boto3.client("sqs")
    msgs = sqs.receive_message(QueueUrl=os.environ["QUEUE_URL"], MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    if not msgs:
        return None
    template = json.loads((EVENTS / "sqs-s3-batch.json").read_text())["Records"][0]
    return {"Records": [dict(template, messageId=m["MessageId"], receiptHandle=m["ReceiptHandle"],
                             body=m["Body"], md5OfBody=m["MD5OfBody"]) for m in msgs]}


def acknowledge(batch: dict) -> None:
    """Deletes a delivered batch's messages, as Lambda does once the function succeeded."""
    sqs = boto3.client("sqs")
    for r in batch["Records"]:
        sqs.delete_message(QueueUrl=os.environ["QUEUE_URL"], ReceiptHandle=r["receiptHandle"])
