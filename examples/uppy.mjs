// Uppy (https://uppy.io) uploading to Picasso: @uppy/aws-s3 asks Picasso for each upload
// slot in `signRequest` and PUTs the file straight to storage with the URL and headers it
// gets. Files above Picasso's multipart threshold are left to Picasso's own page (see the
// README: Uppy 6 signs S3's multipart calls itself, where Picasso makes them server-side).
import Uppy from '@uppy/core';
import AwsS3 from '@uppy/aws-s3';

/**
 * @param {object} o
 * @param {string} o.api        Picasso's API base URL, e.g. https://abc.execute-api.eu-west-1.amazonaws.com
 * @param {() => string} o.token  the signed-in user's bearer token (an ID or access token)
 * @param {number} [o.maxFileSize]  Picasso's MULTIPART_THRESHOLD (64 MiB unless configured)
 */
export function picassoUppy({ api, token, maxFileSize = 64 * 1024 * 1024 }) {
  const uppy = new Uppy({ restrictions: { maxFileSize } });
  uppy.use(AwsS3, {
    shouldUseMultipart: false,
    // The key Uppy passes to signRequest is the Uppy file id, so the file can be found there;
    // Picasso names the object itself (uploads/{hh}/{id}).
    generateObjectKey: (file) => file.id,
    async signRequest(request) {
      if (request.method !== 'PUT' || request.uploadId) throw new Error('Picasso signs single PUTs only');
      const file = uppy.getFile(request.key);
      const res = await fetch(`${api}/upload`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token()}` },
        body: JSON.stringify({
          filename: file.name,
          content_type: file.type || 'application/octet-stream',
          size: file.size,
        }),
      });
      const body = await res.json();
      if (!res.ok) throw new Error(body.error ? body.error.message : `POST /upload: HTTP ${res.status}`);
      uppy.setFileMeta(file.id, { picassoId: body.id });
      // The signed headers (content-type, if-none-match: *) go with the PUT.
      return { url: body.upload.url, headers: body.upload.headers, key: `uploads/${body.id}` };
    },
  });
  return uppy;
}
