/* Fuzz target for the file storage's start-up scan and record reader: the input becomes segment
 * file(s) and a commit pointer in an empty folder; the storage is opened, everything is read,
 * part of it committed, a record appended, and the storage reopened and read again.
 * First input byte = mode: bit0 raw file (no valid header added), bit1 re-frame the body as
 * valid records ([u8 len][bytes] chunks, CRC computed), bit2 a state slot from the next 24 bytes,
 * bit3 a second segment file (from the second half of the body). Invariant checked: the records
 * read equal the record count in the statistics. */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>

#include "storage/file_format.h"
#include "storage/storage.h"
#include "util/log_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char g_dir[64];

static void clean_dir(void) {
    DIR *d = opendir(g_dir);
    if (!d) return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(p, sizeof p, "%s/%s", g_dir, e->d_name);
        unlink(p);
    }
    closedir(d);
}

static void write_file(const char *name, const uint8_t *a, size_t na, const uint8_t *b, size_t nb) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", g_dir, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return;
    if (na && write(fd, a, na) != (ssize_t)na) abort();
    if (nb && write(fd, b, nb) != (ssize_t)nb) abort();
    close(fd);
}

/* Turns [u8 len][bytes] chunks into valid frames; returns a malloc'd buffer. */
static uint8_t *reframe(const uint8_t *in, size_t n, size_t *outn) {
    uint8_t *out = malloc(n / 1 * (TBGW_FRAME_HDR + 1) + 16);
    size_t o = 0, i = 0;
    while (out && i < n) {
        size_t len = in[i++];
        if (len > n - i) len = n - i;
        tbgw_frame_header(out + o, in + i, (uint32_t)len);
        memcpy(out + o + TBGW_FRAME_HDR, in + i, len);
        o += TBGW_FRAME_HDR + len;
        i += len;
    }
    *outn = o;
    return out;
}

static void write_segment(uint64_t first_seq, int raw, int framed, const uint8_t *body, size_t n) {
    char name[64];
    snprintf(name, sizeof name, TBGW_SEG_PREFIX "%020llu" TBGW_SEG_SUFFIX, (unsigned long long)first_seq);
    uint8_t hdr[TBGW_SEG_HDR];
    tbgw_seg_header_encode(hdr, first_seq);
    size_t fn = n;
    uint8_t *framed_body = framed ? reframe(body, n, &fn) : NULL;
    const uint8_t *b = framed_body ? framed_body : body;
    write_file(name, raw ? NULL : hdr, raw ? 0 : sizeof hdr, b, fn);
    free(framed_body);
}

/* Reads everything without committing; returns the count (and checks it against the stats). */
static uint64_t read_all(tbgw_storage *s, int commit_some) {
    uint64_t n = 0;
    tbgw_pack p;
    int k = 0;
    while (s->ops->peek(s, 7, &p) == 0 && p.n) {
        n += p.n;
        for (size_t i = 0; i < p.n; i++)
            if (p.recs[i].len > TBGW_MAX_RECORD) abort();
        if (p.last_seq - p.first_seq + 1 != p.n) abort();
        if (commit_some && (k++ % 2) == 0) s->ops->commit(s, &p);
        tbgw_pack_free(&p);
    }
    s->ops->rewind(s);
    return n;
}

static tbgw_storage *open_storage(void) {
    json_t *cfg =
        json_pack("{s:s, s:s, s:i}", "type", "file", "data_folder_path", g_dir, "max_records_per_file", 16);
    tbgw_storage *s = NULL;
    tbgw_err err;
    if (tbgw_storage_open(cfg, NULL, &s, &err) != 0) s = NULL;
    json_decref(cfg);
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!g_dir[0]) {
        snprintf(g_dir, sizeof g_dir, "/tmp/tbgw-fuzz-file-XXXXXX");
        if (!mkdtemp(g_dir)) abort();
        tbgw_log_set_level(NULL, TBGW_NONE);
    }
    clean_dir();
    if (size < 1) return 0;
    uint8_t mode = data[0];
    data++;
    size--;
    if ((mode & 4) && size >= 17) {
        uint8_t slot[TBGW_STATE_SLOT_SZ];
        uint64_t gen = data[0], committed = data[1] % 64;
        tbgw_state_encode(slot, gen, committed);
        if (data[2] & 1) memcpy(slot, data + 3, 14); /* damaged slot */
        write_file(TBGW_STATE_NAME, slot, sizeof slot, NULL, 0);
        data += 17;
        size -= 17;
    }
    if ((mode & 8) && size >= 2) {
        size_t half = size / 2;
        write_segment(1, mode & 1, mode & 2, data, half);
        write_segment(1 + (data[0] % 32), mode & 1, mode & 2, data + half, size - half);
    } else {
        write_segment(1, mode & 1, mode & 2, data, size);
    }
    tbgw_storage *s = open_storage();
    if (!s) return 0;
    tbgw_storage_stats st;
    s->ops->stats(s, &st);
    if (read_all(s, 0) != st.records) abort();
    read_all(s, 1);
    s->ops->append(s, "tail", 4);
    s->ops->stats(s, &st);
    uint64_t before = st.records;
    s->ops->close(s);
    s = open_storage();
    if (!s) abort(); /* what the storage wrote itself must open */
    s->ops->stats(s, &st);
    if (st.records != before || read_all(s, 0) != before) abort();
    s->ops->close(s);
    return 0;
}
