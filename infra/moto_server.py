"""moto's server, with one fix for what the AWS SDK for Rust reads strictly.

moto 5.2.5 answers ListParts with a `<ListPartsResponse>` root where S3 sends
`<ListPartsResult>`; boto3 ignores the root's name, aws-sdk-rust refuses the document.
"""
import sys

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

if __name__ == "__main__":
    sys.exit(main())
