#!/usr/bin/env python3
"""Give records written before files had owners the keys of the all-files indexes.

    python infra/backfill_index_keys.py --table TABLE [--dry-run]

Records from before carry `status` and `id` but none of `shard` ("file#H"), `status_shard`
("{status}#H") and `status_id` ("{status}#{id}"), H the id's last hex digit, so they are in
no index: not in an admin's `GET /files?scope=all`, nor seen by the sweeper. This sets the
three keys, as the functions write them, on every record that lacks `shard`. It never sets
`owner`: such records stay out of every user's own listing (only admins see them).

It is a one-off Scan of the whole table (paced by DynamoDB's own pagination, ~1 MB a page),
run once after deploying. Each update is conditional on the record still lacking `shard` and
still having the status it was read with, so it can run while the functions are live and
can be run again: a record that moved meanwhile got its keys from the function that moved it.
Uses the usual AWS credentials and region (AWS_ENDPOINT_URL points it at an emulator).
"""

from __future__ import annotations

import argparse
import sys

import boto3
from botocore.exceptions import ClientError


def keys(item_id: str, status: str) -> dict[str, str]:
    shard = item_id[-1]
    return {"status_id": f"{status}#{item_id}", "status_shard": f"{status}#{shard}", "shard": f"file#{shard}"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--table", required=True, help="the stack's TableName output")
    ap.add_argument("--dry-run", action="store_true", help="count what would change, write nothing")
    args = ap.parse_args()

    ddb = boto3.client("dynamodb")
    seen = todo = updated = moved = 0
    pages = ddb.get_paginator("scan").paginate(
        TableName=args.table,
        # status and shard are DynamoDB reserved words: always through placeholders.
        FilterExpression="attribute_not_exists(#shard)",
        ProjectionExpression="id, #s",
        ExpressionAttributeNames={"#s": "status", "#shard": "shard"},
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
            new = keys(item_id, status)
            try:
                ddb.update_item(
                    TableName=args.table,
                    Key={"id": {"S": item_id}},
                    UpdateExpression="SET status_id = :status_id, status_shard = :status_shard, #shard = :shard",
                    ConditionExpression="attribute_not_exists(#shard) AND #s = :status",
                    ExpressionAttributeNames={"#s": "status", "#shard": "shard"},
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
