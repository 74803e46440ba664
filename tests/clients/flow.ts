// The whole flow through the TypeScript client that openapi-generator (typescript-fetch)
// generates from openapi.json (infra/clients.sh): typed models in, typed models out.
//   PICASSO_API=… PICASSO_TOKEN=… node flow.js
import { createHash } from "node:crypto";
import { strict as assert } from "node:assert";

import {
  ApiErrorFromJSON,
  Configuration,
  FileDetail,
  FilesApi,
  ResponseError,
  Status,
  UploadsInPartsApi,
} from "./generated";

const config = new Configuration({
  basePath: process.env.PICASSO_API,
  accessToken: process.env.PICASSO_TOKEN,
});
const files = new FilesApi(config);
const parts = new UploadsInPartsApi(config);
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

async function untilFinal(id: string): Promise<FileDetail> {
  for (let i = 0; i < 600; i++) {
    const detail = await files.getFile({ id });
    if (detail.status === Status.Processed || detail.status === Status.Failed) return detail;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${id} never became final`);
}

async function main() {
  // One PUT: a small text file with its declared SHA-256.
  const text = new TextEncoder().encode("hello from the generated TypeScript client\n".repeat(10));
  const created = await files.createUpload({
    uploadBody: { filename: "hello.txt", contentType: "text/plain", size: text.length, sha256: sha256(text) },
  });
  assert.equal(created.upload.method, "PUT");
  if (created.upload.method !== "PUT") return;
  const put = await fetch(created.upload.url, { method: "PUT", body: text, headers: created.upload.headers });
  assert.equal(put.status, 200, await put.text());
  let done = await untilFinal(created.id);
  assert.deepEqual([done.status, done.sha256], [Status.Processed, sha256(text)]);
  assert.ok(done.downloadUrl, "a processed file has a download link");

  // In parts: above the stack's lowered threshold (MULTIPART_THRESHOLD), resumed from the listing.
  const big = new Uint8Array(12 * 1024 * 1024 + 7).map((_, i) => i % 251);
  const slot = await files.createUpload({
    uploadBody: { filename: "big.bin", contentType: "application/octet-stream", size: big.length },
  });
  if (slot.upload.method !== "MULTIPART") throw new Error(`expected parts, got ${slot.upload.method}`);
  const plan = slot.upload;
  const numbers = Array.from({ length: plan.partCount }, (_, i) => i + 1);
  const sendParts = async (which: number[]) => {
    const signed = await parts.signParts({ id: slot.id, partNumbersBody: { partNumbers: which } });
    for (const p of signed.parts) {
      const start = (p.partNumber - 1) * plan.partSize;
      const r = await fetch(p.url, { method: "PUT", body: big.subarray(start, start + p.size) });
      assert.equal(r.status, 200);
    }
  };
  await sendParts(numbers.slice(0, 1));
  assert.deepEqual((await parts.listParts({ id: slot.id })).parts.map((p) => p.partNumber), [1]);
  await sendParts(numbers.slice(1));
  const held = await parts.listParts({ id: slot.id });
  const completed = await parts.completeUpload({
    id: slot.id,
    completeBody: { parts: held.parts.map((p) => ({ partNumber: p.partNumber, etag: p.etag })) },
  });
  assert.equal(completed.status, Status.Pending);
  done = await untilFinal(slot.id);
  assert.deepEqual([done.status, done.sha256], [Status.Processed, sha256(big)]);

  // A listing, a page at a time.
  const first = await files.listFiles({ limit: 1 });
  assert.equal(first.items.length, 1);
  assert.ok(first.nextCursor);
  const second = await files.listFiles({ limit: 1, cursor: first.nextCursor ?? undefined });
  assert.deepEqual(new Set([first.items[0].id, second.items[0].id]), new Set([created.id, slot.id]));

  // A typed error.
  try {
    await files.createUpload({ uploadBody: { filename: "../etc/passwd", contentType: "text/plain", size: 1 } });
    assert.fail("a path as a file name is refused");
  } catch (e) {
    if (!(e instanceof ResponseError)) throw e;
    assert.equal(e.response.status, 400);
    const refused = ApiErrorFromJSON(await e.response.json());
    assert.equal(refused.error.code, "invalid_filename");
  }

  // Delete, then it is gone.
  await files.deleteFile({ id: created.id });
  try {
    await files.getFile({ id: created.id });
    assert.fail("a deleted file is gone");
  } catch (e) {
    assert.ok(e instanceof ResponseError && e.response.status === 404, String(e));
  }
  console.log("typescript client: the whole flow passed");
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
