/* s3.h - a small S3 client (path-style requests signed with AWS SigV4 by
 * libcurl) for the registry's object-storage backend (docs/registry.md).
 *
 * Works against AWS S3 and S3-compatible stores (OpenStack Swift's s3api,
 * Ceph RGW, MinIO).  Requests are path-style: ENDPOINT/BUCKET/KEY.
 * Operations: put (from a file or a buffer), get (to a file or a buffer),
 * head, list (ListObjectsV2, following continuation tokens) and delete.
 *
 * Credentials come from s3_opts, else the environment
 * (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), else a credentials file
 * (AWS's shared format: `aws_access_key_id = ...` and
 * `aws_secret_access_key = ...` in [default] or before any section).
 * They are never logged nor put in error messages.
 *
 * Errors name the operation, the bucket/key, the HTTP status and the S3
 * error code (`s3: GET mlopsd/m/v1/meta.json: HTTP 404 NoSuchKey: ...`).
 * A missing object is ERR_NOTFOUND; 401/403 are ERR_AUTH; transport
 * failures and other statuses are ERR_IO.
 *
 * Ownership: s3_create copies everything it needs from opts.
 * Thread rule: a struct s3 is immutable after s3_create; every call uses
 * its own curl handle, so any number of threads may share one.
 */
#ifndef MLOPSD_S3_H
#define MLOPSD_S3_H

#include <stddef.h>
#include <stdint.h>

#include "mlopsd/err.h"
#include "mlopsd/sha256.h"

#define S3_KEY_MAX 1024

struct s3; /* opaque */

struct s3_opts {
  const char *endpoint;   /* "http://127.0.0.1:8080", "https://s3.amazonaws.com" */
  const char *region;     /* NULL/"": "us-east-1" */
  const char *bucket;     /* required */
  const char *access_key; /* NULL: env, then credentials_file */
  const char *secret_key;
  const char *credentials_file; /* NULL/"": none */
  long timeout_s;         /* 0: 300 s per request */
  int list_page;          /* keys per ListObjectsV2 page; 0: the store's
                           * default (1,000); tests use small pages */
};

/* Errors: ERR_CONFIG (no endpoint/bucket, no credentials anywhere,
 * unreadable credentials file), ERR_NOMEM. */
MLOPSD_WUR enum err_code s3_create(const struct s3_opts *o, struct s3 **out,
                                   struct err *e);
void s3_destroy(struct s3 *s); /* NULL-safe */
const char *s3_bucket(const struct s3 *s); /* borrowed */

/* Upload the file at path as key.  sha256_out (may be NULL) gets the hex
 * SHA-256 of the bytes sent. */
MLOPSD_WUR enum err_code s3_put_file(struct s3 *s, const char *key,
                                     const char *path,
                                     char sha256_out[SHA256_HEX_LEN],
                                     struct err *e);
MLOPSD_WUR enum err_code s3_put_buf(struct s3 *s, const char *key,
                                    const void *data, size_t n,
                                    struct err *e);

/* Download key into path: written to a temp file beside it, fsync'd and
 * renamed, so path is whole or untouched.  sha256_out (may be NULL) gets
 * the hex SHA-256 of the bytes received. */
MLOPSD_WUR enum err_code s3_get_file(struct s3 *s, const char *key,
                                     const char *path,
                                     char sha256_out[SHA256_HEX_LEN],
                                     struct err *e);
/* Download key into a new NUL-terminated buffer (*out, free()); objects
 * larger than max bytes are refused (ERR_INVAL). */
MLOPSD_WUR enum err_code s3_get_buf(struct s3 *s, const char *key,
                                    size_t max, char **out, size_t *n,
                                    struct err *e);

/* ERR_NOTFOUND when key does not exist; *size (may be NULL) its length. */
MLOPSD_WUR enum err_code s3_head(struct s3 *s, const char *key,
                                 int64_t *size, struct err *e);

/* Called once per object under prefix, in key order; a non-zero return
 * stops the listing and is returned by s3_list as ERR_CANCELED. */
typedef int (*s3_list_fn)(const char *key, int64_t size, void *ud);
MLOPSD_WUR enum err_code s3_list(struct s3 *s, const char *prefix,
                                 s3_list_fn fn, void *ud, struct err *e);

/* Delete key; deleting a missing key is not an error (S3 answers 204). */
MLOPSD_WUR enum err_code s3_delete(struct s3 *s, const char *key,
                                   struct err *e);

/* Split "s3://bucket/prefix/" into bucket and prefix (no leading or
 * trailing '/'; "" when none).  Errors: ERR_CONFIG naming the URL. */
MLOPSD_WUR enum err_code s3_url_parse(const char *url, char *bucket,
                                      size_t bcap, char *prefix,
                                      size_t pcap, struct err *e);

#endif
