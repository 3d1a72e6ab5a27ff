/* SPDX-License-Identifier: MIT */
/*
 * json.c — the streaming JSON writer. It keeps one frame per open container
 * (object or array, and whether it has items yet) so that it can place
 * commas and indentation and refuse misuse; it never buffers the document.
 * It does not parse JSON or check key uniqueness.
 */
#include "json.h"

#include <math.h>
#include <stdint.h>

void st_json_init(struct st_json *j, FILE *out, bool pretty)
{
    j->out = out;
    j->pretty = pretty;
    j->error = false;
    j->after_key = false;
    j->depth = 0;
    j->has_items[0] = false;
    j->is_object[0] = false;
}

static void indent(struct st_json *j)
{
    if (!j->pretty) return;
    fputc('\n', j->out);
    for (int i = 0; i < j->depth; i++)
        fputs("  ", j->out);
}

/* Before any value: a comma and newline as the container needs. A value
 * inside an object must follow a key; at the top level only one value. */
static void before_value(struct st_json *j)
{
    if (j->after_key) {
        j->after_key = false;
        return;
    }
    if (j->depth == 0) {
        if (j->has_items[0]) j->error = true;
        j->has_items[0] = true;
        return;
    }
    if (j->is_object[j->depth]) j->error = true;
    if (j->has_items[j->depth]) fputc(',', j->out);
    j->has_items[j->depth] = true;
    indent(j);
}

static void open_container(struct st_json *j, bool object)
{
    before_value(j);
    fputc(object ? '{' : '[', j->out);
    if (j->depth + 1 >= ST_JSON_MAX_DEPTH) {
        j->error = true;
        return;
    }
    j->depth++;
    j->is_object[j->depth] = object;
    j->has_items[j->depth] = false;
}

static void close_container(struct st_json *j, bool object)
{
    if (j->depth == 0 || j->is_object[j->depth] != object || j->after_key) {
        j->error = true;
        return;
    }
    bool had = j->has_items[j->depth];
    j->depth--;
    if (had) indent(j);
    fputc(object ? '}' : ']', j->out);
}

void st_json_begin_object(struct st_json *j)
{
    open_container(j, true);
}
void st_json_end_object(struct st_json *j)
{
    close_container(j, true);
}
void st_json_begin_array(struct st_json *j)
{
    open_container(j, false);
}
void st_json_end_array(struct st_json *j)
{
    close_container(j, false);
}

void st_json_key(struct st_json *j, const char *key)
{
    if (j->depth == 0 || !j->is_object[j->depth] || j->after_key) {
        j->error = true;
        return;
    }
    if (j->has_items[j->depth]) fputc(',', j->out);
    j->has_items[j->depth] = true;
    indent(j);
    st_json_write_string(j->out, key);
    fputs(j->pretty ? ": " : ":", j->out);
    j->after_key = true;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. */
static int utf8_len(const unsigned char *s)
{
    int n = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : 2;
    if (s[0] < 0xc2 || s[0] > 0xf4) return 0;
    uint32_t cp = s[0] & (0x3f >> (n - 1));
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    bool overlong = (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000);
    bool bad = overlong || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff);
    return bad ? 0 : n;
}

static void write_escaped_byte(FILE *out, unsigned char c)
{
    switch (c) {
    case '"':
        fputs("\\\"", out);
        return;
    case '\\':
        fputs("\\\\", out);
        return;
    case '\n':
        fputs("\\n", out);
        return;
    case '\r':
        fputs("\\r", out);
        return;
    case '\t':
        fputs("\\t", out);
        return;
    case '\b':
        fputs("\\b", out);
        return;
    case '\f':
        fputs("\\f", out);
        return;
    }
    if (c < 0x20 || c == 0x7f)
        fprintf(out, "\\u%04x", c);
    else
        fputc(c, out);
}

void st_json_write_string(FILE *out, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    fputc('"', out);
    while (*p) {
        if (*p < 0x80) {
            write_escaped_byte(out, *p++);
            continue;
        }
        int n = utf8_len(p);
        if (n == 0) {
            fputs("\\ufffd", out);
            p++;
            continue;
        }
        fwrite(p, 1, (size_t)n, out);
        p += n;
    }
    fputc('"', out);
}

void st_json_string(struct st_json *j, const char *s)
{
    before_value(j);
    if (s)
        st_json_write_string(j->out, s);
    else
        fputs("null", j->out);
}

void st_json_int(struct st_json *j, long long v)
{
    before_value(j);
    fprintf(j->out, "%lld", v);
}

void st_json_uint(struct st_json *j, unsigned long long v)
{
    before_value(j);
    fprintf(j->out, "%llu", v);
}

void st_json_double(struct st_json *j, double v)
{
    before_value(j);
    if (!isfinite(v))
        fputs("null", j->out);
    else if (v == floor(v) && fabs(v) < 1e15)
        fprintf(j->out, "%.0f", v);
    else
        fprintf(j->out, "%.6g", v);
}

void st_json_bool(struct st_json *j, bool v)
{
    before_value(j);
    fputs(v ? "true" : "false", j->out);
}

void st_json_null(struct st_json *j)
{
    before_value(j);
    fputs("null", j->out);
}

void st_json_kv_string(struct st_json *j, const char *key, const char *s)
{
    st_json_key(j, key);
    st_json_string(j, s);
}

void st_json_kv_int(struct st_json *j, const char *key, long long v)
{
    st_json_key(j, key);
    st_json_int(j, v);
}

void st_json_kv_uint(struct st_json *j, const char *key, unsigned long long v)
{
    st_json_key(j, key);
    st_json_uint(j, v);
}

void st_json_kv_double(struct st_json *j, const char *key, double v)
{
    st_json_key(j, key);
    st_json_double(j, v);
}

void st_json_kv_bool(struct st_json *j, const char *key, bool v)
{
    st_json_key(j, key);
    st_json_bool(j, v);
}

int st_json_finish(struct st_json *j)
{
    fputc('\n', j->out);
    if (j->depth != 0 || j->after_key || !j->has_items[0]) j->error = true;
    fflush(j->out);
    return j->error || ferror(j->out) ? -1 : 0;
}
