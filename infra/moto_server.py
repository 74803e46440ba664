"""moto's server, with two fixes.

- moto 5.2.5 answers ListParts with a `<ListPartsResponse>` root where S3 sends
  `<ListPartsResult>`; boto3 ignores the root's name, aws-sdk-rust refuses the document.
- DynamoDB applies each write, and each transaction, atomically: a condition is checked and
  the write made as one step. moto's server answers requests on several threads and checks
  a condition, then writes, with nothing in between held: two conditional writes at the same
  moment can both pass. One lock around its DynamoDB writes restores DynamoDB's guarantee.
"""
import sys
import threading

from moto.s3.responses import S3Response
from moto.server import main

_list_parts = S3Response.list_parts


def list_parts(self):
    status, headers, body = _list_parts(self)
    if isinstance(body, bytes):
        body = body.replace(b"ListPartsResponse", b"ListPartsResult")
    elif isinstance(body, str):
        body = body.replace("ListPartsResponse", "ListPartsResult")
    return status, headers, body


S3Response.list_parts = list_parts

from moto.dynamodb.models import DynamoDBBackend  # noqa: E402

_writes = threading.RLock()  # a transaction writes through the same methods


def atomic(method):
    def locked(self, *args, **kwargs):
        with _writes:
            return method(self, *args, **kwargs)
    return locked


for _name in ("put_item", "update_item", "delete_item", "transact_write_items"):
    setattr(DynamoDBBackend, _name, atomic(getattr(DynamoDBBackend, _name)))

if __name__ == "__main__":
    sys.exit(main())
