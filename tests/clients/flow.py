"""The whole flow through the Python client that openapi-python-client generates from
openapi.json (infra/clients.sh): typed models in, typed models out.

    PICASSO_API=… PICASSO_TOKEN=… python tests/clients/flow.py GENERATED_DIR
"""
import hashlib
import os
import sys
import time

import httpx

sys.path.insert(0, sys.argv[1])

from picasso_client import AuthenticatedClient  # noqa: E402
from picasso_client.api.files import create_upload, delete_file, get_file, list_files  # noqa: E402
from picasso_client.api.uploads_in_parts import complete_upload, list_parts, sign_parts  # noqa: E402
from picasso_client.models import (  # noqa: E402
    ApiError,
    CompleteBody,
    CompletedPartBody,
    FileDetail,
    MultipartUpload,
    PartNumbersBody,
    PutUpload,
    Status,
    UploadBody,
)

api, token = os.environ["PICASSO_API"], os.environ["PICASSO_TOKEN"]
client = AuthenticatedClient(base_url=api, token=token, raise_on_unexpected_status=True)
storage = httpx.Client(timeout=60)


def until_final(file_id: str) -> FileDetail:
    for _ in range(600):
        detail = get_file.sync(file_id, client=client)
        assert isinstance(detail, FileDetail), detail
        if detail.status in (Status.PROCESSED, Status.FAILED):
            return detail
        time.sleep(0.1)
    raise AssertionError(f"{file_id} never became final")


# One PUT: a small text file with its declared SHA-256.
text = b"hello from the generated Python client\n" * 10
created = create_upload.sync(
    client=client,
    body=UploadBody(filename="hello.txt", content_type="text/plain", size=len(text),
                    sha256=hashlib.sha256(text).hexdigest()),
)
assert created is not None and isinstance(created.upload, PutUpload), created
put = storage.put(created.upload.url, content=text, headers=created.upload.headers.additional_properties)
assert put.status_code == 200, put.text
done = until_final(created.id)
assert (done.status, done.sha256) == (Status.PROCESSED, hashlib.sha256(text).hexdigest()), done
assert done.download_url, "a processed file has a download link"
assert storage.get(done.download_url).content == text

# In parts: above the stack's lowered threshold (MULTIPART_THRESHOLD), resumed from the listing.
big = bytes(range(256)) * (12 * 1024 * 1024 // 256 + 1)
slot = create_upload.sync(
    client=client, body=UploadBody(filename="big.bin", content_type="application/octet-stream", size=len(big))
)
assert slot is not None and isinstance(slot.upload, MultipartUpload), slot
plan = slot.upload
numbers = list(range(1, plan.part_count + 1))
signed = sign_parts.sync(slot.id, client=client, body=PartNumbersBody(part_numbers=numbers[:1]))
first = signed.parts[0]
chunk = big[: first.size]
assert storage.put(first.url, content=chunk).status_code == 200
held = list_parts.sync(slot.id, client=client)
assert [p.part_number for p in held.parts] == [1], held
signed = sign_parts.sync(slot.id, client=client, body=PartNumbersBody(part_numbers=numbers[1:]))
for part in signed.parts:
    start = (part.part_number - 1) * plan.part_size
    assert storage.put(part.url, content=big[start:start + part.size]).status_code == 200
held = list_parts.sync(slot.id, client=client)
body = CompleteBody(parts=[CompletedPartBody(part_number=p.part_number, etag=p.etag) for p in held.parts])
assert complete_upload.sync(slot.id, client=client, body=body).status == Status.PENDING
done = until_final(slot.id)
assert (done.status, done.sha256) == (Status.PROCESSED, hashlib.sha256(big).hexdigest()), done

# A listing, a page at a time.
first_page = list_files.sync(client=client, limit=1)
assert len(first_page.items) == 1 and first_page.next_cursor, first_page
second_page = list_files.sync(client=client, limit=1, cursor=first_page.next_cursor)
assert {first_page.items[0].id, second_page.items[0].id} == {created.id, slot.id}

# A typed error.
refused = create_upload.sync_detailed(
    client=AuthenticatedClient(base_url=api, token=token),
    body=UploadBody(filename="../etc/passwd", content_type="text/plain", size=1),
)
assert refused.status_code == 400 and isinstance(refused.parsed, ApiError), refused
assert refused.parsed.error.code == "invalid_filename", refused.parsed

# Delete, then it is gone.
delete_file.sync_detailed(created.id, client=client)
gone = get_file.sync_detailed(created.id, client=AuthenticatedClient(base_url=api, token=token))
assert gone.status_code == 404 and gone.parsed.error.code == "not_found", gone
print("python client: the whole flow passed")
