#!/usr/bin/env python3
"""Give existing records the keys of the indexes this version reads.

    python infra/backfill_index_keys.py --table TABLE [--dry-run]

- `shard` ("file#H", H the id's last hex digit) puts a record in `shard_keys`, everyone's
  files (admins). Records from before files had owners lack it.
- `open` ("HH", the id's last two hex digits), on `pending` and `processing` records only,
  puts them in `open_keys`, the sparse index the sweeper reads. Records written before it
  existed lack it: without it a file stuck in flight would not be swept (it would still be
  processed when its event comes).
- `name_key` (the file name under Unicode case folding, `str.casefold`), on records with an
  owner, puts them in `name_keys`, the index `GET /files?q=` searches. Records written before
  search lack it.

It never sets `owner`: records without one stay out of every user's own listing (only
admins see them). A one-off Scan of the whole table (paced by DynamoDB's own pagination,
~1 MB a page), run once after deploying. Each update is conditional on the record still
having the status it was read with, so it can run while the functions are live and can be
run again: a record that moved meanwhile was written by the function that moved it.
Uses the usual AWS credentials and region (AWS_ENDPOINT_URL points it at an emulator).
"""

from __future__ import annotations

import argparse
import sys

import boto3
from botocore.exceptions import ClientError


OPEN = ("pending", "processing")


def keys(item_id: str, status: str, filename: str | None, owned: bool) -> dict[str, str]:
    """The index keys a record of this id, status, name and ownership carries."""
    new = {"shard": f"file#{item_id[-1]}"}
    if status in OPEN:
        new["open"] = item_id[-2:]
    if owned and filename:
        new["name_key"] = filename.casefold()
    return new


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--table", required=True, help="the stack's TableName output")
    ap.add_argument("--dry-run", action="store_true", help="count what would change, write nothing")
    args = ap.parse_args()

    ddb = boto3.client("dynamodb")
    seen = todo = updated = moved = 0
    pages = ddb.get_paginator("scan").paginate(
        TableName=args.table,
        # status, shard and open are DynamoDB reserved words: always through placeholders.
        FilterExpression="attribute_not_exists(#shard) OR (#s IN (:pending, :processing) AND attribute_not_exists(#open))"
                         " OR (attribute_exists(#owner) AND attribute_not_exists(name_key))",
        ProjectionExpression="id, #s, filename, #owner",
        ExpressionAttributeNames={"#s": "status", "#shard": "shard", "#open": "open", "#owner": "owner"},
        ExpressionAttributeValues={":pending": {"S": "pending"}, ":processing": {"S": "processing"}},
    )
    for page in pages:
        for item in page["Items"]:
            seen += 1
            item_id, status = item["id"]["S"], item.get("status", {}).get("S")
            if not status:
                print(f"backfill: {item_id} has no status, left alone", file=sys.stderr)
                continue
            todo += 1
            if args.dry_run:
                continue
            new = keys(item_id, status, item.get("filename", {}).get("S"), "owner" in item)
            try:
                ddb.update_item(
                    TableName=args.table,
                    Key={"id": {"S": item_id}},
                    UpdateExpression="SET " + ", ".join(f"#{k} = :{k}" for k in new),
                    ConditionExpression="#s = :status",
                    ExpressionAttributeNames={"#s": "status", **{f"#{k}": k for k in new}},
                    ExpressionAttributeValues={":status": {"S": status},
                                               **{f":{k}": {"S": v} for k, v in new.items()}},
                )
                updated += 1
            except ClientError as e:
                if e.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
                moved += 1
    if args.dry_run:
        print(f"backfill: {seen} records without index keys, {todo} to update", file=sys.stderr)
    else:
        print(f"backfill: {seen} records without index keys, {updated} updated, "
              f"{moved} changed or gone meanwhile", file=sys.stderr)


if __name__ == "__main__":
    main()
