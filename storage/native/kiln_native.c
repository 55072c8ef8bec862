// Kiln's native helpers: the byte work of a shard block done on the libuv thread pool, so the
// event loop only schedules it. readFrame = pread + CRC32C check (readBlock: the data shards of
// one block in one task; readPaths: the same by file name, each opened and closed in the task),
// writeFrame = CRC32C + pwrite (writeBlock: every shard of one block in one task),
// writeShardFile = a one-frame shard file made, written, synced and committed in one task (the
// shard files of a one-block object: ~9 thread-pool round trips per drive become one),
// crc32c = CRC32C (crc32c.h: three interleaved hardware lanes on x86-64 and arm64, a table elsewhere).
// Frame layout (storage/bitrot.ts): [CRC32C of block, 4 bytes little-endian][block bytes].
#define NAPI_VERSION 8
#include <node_api.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "crc32c.h"

// ---- positional I/O, whole or nothing ------------------------------------------------------

/** Fill iov from fd at pos; returns bytes read (short at end of file) or -errno. */
static ssize_t preadv_full(int fd, struct iovec *iov, int cnt, off_t pos) {
  ssize_t total = 0;
  while (cnt > 0) {
    ssize_t n = preadv(fd, iov, cnt, pos);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (n == 0) break;
    total += n;
    pos += n;
    while (cnt > 0 && (size_t)n >= iov->iov_len) { n -= iov->iov_len; iov++; cnt--; }
    if (cnt > 0) { iov->iov_base = (char *)iov->iov_base + n; iov->iov_len -= n; }
  }
  return total;
}

static ssize_t pwritev_full(int fd, struct iovec *iov, int cnt, off_t pos) {
  ssize_t total = 0;
  while (cnt > 0) {
    ssize_t n = pwritev(fd, iov, cnt, pos);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    total += n;
    pos += n;
    while (cnt > 0 && (size_t)n >= iov->iov_len) { n -= iov->iov_len; iov++; cnt--; }
    if (cnt > 0) { iov->iov_base = (char *)iov->iov_base + n; iov->iov_len -= n; }
  }
  return total;
}

// ---- async work ----------------------------------------------------------------------------

enum op { OP_READ, OP_READ_BLOCK, OP_WRITE, OP_CRC, OP_READ_PATHS, OP_WRITE_FILE, OP_WRITE_BLOCK };

/** OP_WRITE_FILE's names: the tmp dir, the shard file in it, the data dir it becomes, that dir's parent. */
enum { W_TMP, W_FILE, W_DEST, W_PARENT, W_NAMES };

#define MAX_SHARDS 16
/** OP_WRITE_BLOCK's result for a shard given no file (-1 as its fd). */
#define NO_FILE (-1 - 4096)

/** Bytes read per system call in readFrame: small enough to still be in L2 for the CRC. */
#define READ_PIECE (128 * 1024)

typedef struct {
  enum op op;
  int fd;
  int64_t pos;
  uint8_t *data;
  size_t len;
  uint32_t crc;   /* in: initial CRC (OP_CRC); out: CRC of data */
  int err;        /* errno, 0 when fine */
  int ok;         /* OP_READ: frame complete and its CRC matches */
  int nfd;        /* OP_READ_BLOCK: shard i is read from fds[i] into data + i * len (OP_READ_PATHS: paths[i]) */
  int fds[MAX_SHARDS];
  int status[MAX_SHARDS];
  int64_t wrote[MAX_SHARDS]; /* OP_WRITE_BLOCK: the frame's CRC, -errno, or -1 - 4096 for no file */
  char *paths[MAX_SHARDS]; /* OP_READ_PATHS: files; OP_WRITE_FILE: W_NAMES names */
  int durable;    /* OP_WRITE_FILE: fsync the file and the parent dir */
  const char *stage; /* OP_WRITE_FILE: the step that failed */
  napi_ref ref;
  napi_deferred deferred;
  napi_async_work work;
} job_t;

/**
 * Read the frame at pos into data (len bytes) and check it: 1 whole and matching, 0 short or
 * corrupt, -errno on an I/O error. Read in pieces and check each while it is still in cache:
 * one pass over memory, not two.
 */
static int read_one(int fd, int64_t pos, uint8_t *data, size_t len) {
  uint8_t hdr[4];
  size_t first = len < READ_PIECE ? len : READ_PIECE;
  struct iovec iov[2] = { { hdr, 4 }, { data, first } };
  ssize_t n = preadv_full(fd, iov, 2, pos);
  if (n < 0) return (int)n;
  if ((size_t)n != 4 + first) return 0;
  uint32_t c = crc32c(0, data, first);
  for (size_t off = first; off < len; off += READ_PIECE) {
    size_t piece = len - off < READ_PIECE ? len - off : READ_PIECE;
    struct iovec one = { data + off, piece };
    n = preadv_full(fd, &one, 1, pos + 4 + off);
    if (n < 0) return (int)n;
    if ((size_t)n != piece) return 0;
    c = crc32c(c, data + off, piece);
  }
  uint32_t want = hdr[0] | hdr[1] << 8 | hdr[2] << 16 | (uint32_t)hdr[3] << 24;
  return c == want;
}

/** read_one of a file by name, opened and closed here. */
static int read_path(const char *file, int64_t pos, uint8_t *data, size_t len) {
  int fd;
  do fd = open(file, O_RDONLY | O_CLOEXEC); while (fd < 0 && errno == EINTR);
  if (fd < 0) return -errno;
  int r = read_one(fd, pos, data, len);
  close(fd);
  return r;
}

static int fsync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -errno;
  int r = fsync(fd) < 0 ? -errno : 0;
  close(fd);
  return r;
}

/**
 * The whole life of a one-frame shard file, as Drive.commit and writeShards do it in steps: make
 * the tmp dir, write [crc][data] into a new file there, fsync and close it, rename the tmp dir
 * into the data tree (making the fan-out dir when missing), fsync that parent. Durable once this
 * returns 0; on an error, j->stage names the step and the tmp dir may remain (the caller removes it).
 */
static int write_file(job_t *j) {
  char **n = j->paths;
  uint8_t hdr[4];
  struct iovec iov[2] = { { hdr, 4 }, { j->data, j->len } };
  j->crc = crc32c(0, j->data, j->len);
  hdr[0] = j->crc; hdr[1] = j->crc >> 8; hdr[2] = j->crc >> 16; hdr[3] = j->crc >> 24;
  j->stage = "mkdir";
  if (mkdir(n[W_TMP], 0777) < 0 && errno != EEXIST) return -errno;
  j->stage = "open";
  int fd;
  do fd = open(n[W_FILE], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666); while (fd < 0 && errno == EINTR);
  if (fd < 0) return -errno;
  j->stage = "write";
  ssize_t w = pwritev_full(fd, iov, 2, 0);
  int r = w < 0 ? (int)w : 0;
  if (r == 0 && j->durable) { j->stage = "fsync"; if (fsync(fd) < 0) r = -errno; }
  if (close(fd) < 0 && r == 0) { j->stage = "close"; r = -errno; }
  if (r < 0) return r;
  j->stage = "rename";
  if (rename(n[W_TMP], n[W_DEST]) < 0) {
    if (errno != ENOENT) return -errno;
    // The fan-out dir (never removed by Kiln) is made on first use.
    if (mkdir(n[W_PARENT], 0777) < 0 && errno != EEXIST) return -errno;
    if (rename(n[W_TMP], n[W_DEST]) < 0) return -errno;
  }
  if (j->durable) { j->stage = "fsync dir"; return fsync_dir(n[W_PARENT]); }
  return 0;
}

static void execute(napi_env env, void *arg) {
  (void)env;
  job_t *j = arg;
  uint8_t hdr[4];
  struct iovec iov[2] = { { hdr, 4 }, { j->data, j->len } };
  if (j->op == OP_CRC) {
    j->crc = crc32c(j->crc, j->data, j->len);
  } else if (j->op == OP_WRITE) {
    j->crc = crc32c(0, j->data, j->len);
    hdr[0] = j->crc; hdr[1] = j->crc >> 8; hdr[2] = j->crc >> 16; hdr[3] = j->crc >> 24;
    ssize_t n = pwritev_full(j->fd, iov, 2, j->pos);
    if (n < 0) j->err = (int)-n;
  } else if (j->op == OP_READ) {
    int r = read_one(j->fd, j->pos, j->data, j->len);
    if (r < 0) j->err = -r;
    else j->ok = r;
  } else if (j->op == OP_READ_PATHS) {
    for (int i = 0; i < j->nfd; i++) j->status[i] = read_path(j->paths[i], j->pos, j->data + (size_t)i * j->len, j->len);
  } else if (j->op == OP_WRITE_FILE) {
    int r = write_file(j);
    if (r < 0) j->err = -r;
  } else if (j->op == OP_WRITE_BLOCK) {
    for (int i = 0; i < j->nfd; i++) {
      if (j->fds[i] < 0) { j->wrote[i] = NO_FILE; continue; }
      uint8_t *d = j->data + (size_t)i * j->len;
      uint32_t c = crc32c(0, d, j->len);
      uint8_t h[4] = { c, c >> 8, c >> 16, c >> 24 };
      struct iovec v[2] = { { h, 4 }, { d, j->len } };
      ssize_t n = pwritev_full(j->fds[i], v, 2, j->pos);
      j->wrote[i] = n < 0 ? n : (int64_t)c;
    }
  } else {
    for (int i = 0; i < j->nfd; i++) j->status[i] = read_one(j->fds[i], j->pos, j->data + (size_t)i * j->len, j->len);
  }
}

static const char *errno_code(int e) {
  switch (e) {
    case EIO: return "EIO";
    case ENOENT: return "ENOENT";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case EBADF: return "EBADF";
    case ENOSPC: return "ENOSPC";
    case EROFS: return "EROFS";
    case EINVAL: return "EINVAL";
    case EDQUOT: return "EDQUOT";
    case EISDIR: return "EISDIR";
    case EEXIST: return "EEXIST";
    case ENOTDIR: return "ENOTDIR";
    case ENOTEMPTY: return "ENOTEMPTY";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    default: return "EUNKNOWN";
  }
}

static void free_job(job_t *j) {
  for (int i = 0; i < MAX_SHARDS; i++) free(j->paths[i]);
  free(j);
}

/** Copy a JS string into j->paths[i]; false (a TypeError thrown) when it is not one. */
static bool take_path(napi_env env, napi_value v, job_t *j, int i) {
  size_t n = 0;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &n) != napi_ok || n == 0 || n > 4095) {
    napi_throw_type_error(env, NULL, "expected a file name");
    return false;
  }
  j->paths[i] = malloc(n + 1);
  if (!j->paths[i]) { napi_throw_error(env, NULL, "out of memory"); return false; }
  napi_get_value_string_utf8(env, v, j->paths[i], n + 1, &n);
  return true;
}

static void complete(napi_env env, napi_status status, void *arg) {
  job_t *j = arg;
  napi_value v;
  if (status != napi_ok && j->err == 0) j->err = EINTR;
  if (j->err) {
    napi_value code, msg;
    napi_create_string_utf8(env, errno_code(j->err), NAPI_AUTO_LENGTH, &code);
    char text[256];
    snprintf(text, sizeof text, "%s%s%s", j->stage ? j->stage : "", j->stage ? ": " : "", strerror(j->err));
    napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, code, msg, &v);
    napi_set_named_property(env, v, "code", code);
    napi_reject_deferred(env, j->deferred, v);
  } else {
    if (j->op == OP_READ) napi_get_boolean(env, j->ok, &v);
    else if (j->op == OP_WRITE_BLOCK) {
      napi_create_array_with_length(env, j->nfd, &v);
      for (int i = 0; i < j->nfd; i++) {
        napi_value x;
        napi_create_int64(env, j->wrote[i], &x);
        napi_set_element(env, v, i, x);
      }
    } else if (j->op == OP_READ_BLOCK || j->op == OP_READ_PATHS) {
      napi_create_array_with_length(env, j->nfd, &v);
      for (int i = 0; i < j->nfd; i++) {
        napi_value x;
        napi_create_int32(env, j->status[i], &x);
        napi_set_element(env, v, i, x);
      }
    } else napi_create_uint32(env, j->crc, &v);
    napi_resolve_deferred(env, j->deferred, v);
  }
  napi_delete_reference(env, j->ref);
  napi_delete_async_work(env, j->work);
  free_job(j);
}

#define CHECK(call) do { if ((call) != napi_ok) { napi_throw_error(env, NULL, #call " failed"); return NULL; } } while (0)

/**
 * args: (fd, position, buffer) for read/write, (fds or file names, position, buffer) for
 * readBlock/readPaths/writeBlock, (names, buffer, durable) for writeShardFile, (buffer, initialCrc) for crc.
 */
static napi_value start(napi_env env, napi_callback_info info, enum op op) {
  size_t argc = 3;
  napi_value argv[3], promise, name;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  napi_value buf = op == OP_CRC ? argv[0] : op == OP_WRITE_FILE ? argv[1] : argv[2];
  bool is_buf = false;
  if (argc < (op == OP_CRC ? 1u : 3u) || napi_is_buffer(env, buf, &is_buf) != napi_ok || !is_buf) {
    napi_throw_type_error(env, NULL, "expected a Buffer");
    return NULL;
  }
  job_t *j = calloc(1, sizeof *j);
  if (!j) { napi_throw_error(env, NULL, "out of memory"); return NULL; }
  j->op = op;
  void *data;
  CHECK(napi_get_buffer_info(env, buf, &data, &j->len));
  j->data = data;
  if (op == OP_CRC) {
    if (argc > 1) CHECK(napi_get_value_uint32(env, argv[1], &j->crc));
  } else if (op == OP_WRITE_FILE) {
    uint32_t n = 0;
    if (napi_get_array_length(env, argv[0], &n) != napi_ok || n != W_NAMES) {
      free(j);
      napi_throw_type_error(env, NULL, "expected [tmpDir, file, dataDir, parent]");
      return NULL;
    }
    for (uint32_t i = 0; i < n; i++) {
      napi_value x;
      CHECK(napi_get_element(env, argv[0], i, &x));
      if (!take_path(env, x, j, (int)i)) { free_job(j); return NULL; }
    }
    bool durable = false;
    CHECK(napi_get_value_bool(env, argv[2], &durable));
    j->durable = durable;
  } else if (op == OP_READ_BLOCK || op == OP_READ_PATHS || op == OP_WRITE_BLOCK) {
    uint32_t n = 0;
    if (napi_get_array_length(env, argv[0], &n) != napi_ok || n == 0 || n > MAX_SHARDS || j->len % n) {
      free(j);
      napi_throw_type_error(env, NULL, "expected 1 to 16 files sharing the buffer evenly");
      return NULL;
    }
    j->nfd = (int)n;
    j->len /= n;
    for (uint32_t i = 0; i < n; i++) {
      napi_value x;
      CHECK(napi_get_element(env, argv[0], i, &x));
      if (op == OP_READ_PATHS) {
        if (!take_path(env, x, j, (int)i)) { free_job(j); return NULL; }
        continue;
      }
      int32_t fd;
      CHECK(napi_get_value_int32(env, x, &fd));
      j->fds[i] = fd;
    }
    CHECK(napi_get_value_int64(env, argv[1], &j->pos));
  } else {
    int32_t fd;
    CHECK(napi_get_value_int32(env, argv[0], &fd));
    CHECK(napi_get_value_int64(env, argv[1], &j->pos));
    j->fd = fd;
  }
  CHECK(napi_create_reference(env, buf, 1, &j->ref));
  CHECK(napi_create_promise(env, &j->deferred, &promise));
  CHECK(napi_create_string_utf8(env, "kiln.native", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_create_async_work(env, NULL, name, execute, complete, j, &j->work));
  CHECK(napi_queue_async_work(env, j->work));
  return promise;
}

static napi_value read_frame(napi_env env, napi_callback_info info) { return start(env, info, OP_READ); }
static napi_value read_block(napi_env env, napi_callback_info info) { return start(env, info, OP_READ_BLOCK); }
static napi_value write_frame(napi_env env, napi_callback_info info) { return start(env, info, OP_WRITE); }
static napi_value write_block(napi_env env, napi_callback_info info) { return start(env, info, OP_WRITE_BLOCK); }
static napi_value read_paths(napi_env env, napi_callback_info info) { return start(env, info, OP_READ_PATHS); }
static napi_value write_shard_file(napi_env env, napi_callback_info info) { return start(env, info, OP_WRITE_FILE); }
static napi_value crc_async(napi_env env, napi_callback_info info) { return start(env, info, OP_CRC); }

static napi_value crc_sync(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  void *data;
  size_t len;
  uint32_t init = 0;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || napi_get_buffer_info(env, argv[0], &data, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected a Buffer");
    return NULL;
  }
  if (argc > 1) CHECK(napi_get_value_uint32(env, argv[1], &init));
  CHECK(napi_create_uint32(env, crc32c(init, data, len), &out));
  return out;
}

static napi_value combine_sync(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], out;
  uint32_t a, b;
  int64_t len;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(napi_get_value_uint32(env, argv[0], &a));
  CHECK(napi_get_value_uint32(env, argv[1], &b));
  CHECK(napi_get_value_int64(env, argv[2], &len));
  CHECK(napi_create_uint32(env, len > 0 ? crc32c_combine(a, b, (uint64_t)len) : a, &out));
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  // KILN_CRC_SOFTWARE=1 forces the table code, so tests cover it on machines with CRC instructions.
  const char *sw = getenv("KILN_CRC_SOFTWARE");
  crc32c_init(!(sw && sw[0] == '1'));
  napi_property_descriptor props[] = {
    { "readFrame", NULL, read_frame, NULL, NULL, NULL, napi_default, NULL },
    { "readBlock", NULL, read_block, NULL, NULL, NULL, napi_default, NULL },
    { "writeFrame", NULL, write_frame, NULL, NULL, NULL, napi_default, NULL },
    { "writeBlock", NULL, write_block, NULL, NULL, NULL, napi_default, NULL },
    { "readPaths", NULL, read_paths, NULL, NULL, NULL, napi_default, NULL },
    { "writeShardFile", NULL, write_shard_file, NULL, NULL, NULL, napi_default, NULL },
    { "crc32cAsync", NULL, crc_async, NULL, NULL, NULL, napi_default, NULL },
    { "crc32c", NULL, crc_sync, NULL, NULL, NULL, napi_default, NULL },
    { "crc32cCombine", NULL, combine_sync, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
