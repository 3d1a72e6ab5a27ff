/* SPDX-License-Identifier: MIT */
/*
 * json.h — a streaming JSON writer for the strata tools: objects, arrays,
 * keys and scalars written straight to a FILE, with string escaping (control
 * characters, quotes, backslashes; invalid UTF-8 replaced by U+FFFD), commas
 * and optional indentation handled for the caller, and misuse (a key outside
 * an object, a value without a key, unbalanced ends, nesting deeper than
 * ST_JSON_MAX_DEPTH) recorded and reported by st_json_finish().
 *
 * Cost: O(output); no allocation; one small struct per document.
 */
#ifndef STRATA_TOOL_JSON_H
#define STRATA_TOOL_JSON_H

#include <stdbool.h>
#include <stdio.h>

#define ST_JSON_MAX_DEPTH 64

struct st_json {
    FILE *out;
    bool pretty;
    bool error;
    bool after_key;
    int depth;
    bool is_object[ST_JSON_MAX_DEPTH];
    bool has_items[ST_JSON_MAX_DEPTH];
};

/* Start a document on out; pretty: newlines and two-space indentation. */
void st_json_init(struct st_json *j, FILE *out, bool pretty);
void st_json_begin_object(struct st_json *j);
void st_json_end_object(struct st_json *j);
void st_json_begin_array(struct st_json *j);
void st_json_end_array(struct st_json *j);
/* The key of the next value (objects only). */
void st_json_key(struct st_json *j, const char *key);
/* A string value; NULL writes null. */
void st_json_string(struct st_json *j, const char *s);
void st_json_int(struct st_json *j, long long v);
void st_json_uint(struct st_json *j, unsigned long long v);
/* A number with up to 6 significant digits after rounding; NaN and
 * infinities, which JSON cannot hold, become null. */
void st_json_double(struct st_json *j, double v);
void st_json_bool(struct st_json *j, bool v);
void st_json_null(struct st_json *j);
/* Key and value in one call. */
void st_json_kv_string(struct st_json *j, const char *key, const char *s);
void st_json_kv_int(struct st_json *j, const char *key, long long v);
void st_json_kv_uint(struct st_json *j, const char *key, unsigned long long v);
void st_json_kv_double(struct st_json *j, const char *key, double v);
void st_json_kv_bool(struct st_json *j, const char *key, bool v);
/* End the document with a newline: 0 if it was well formed and written,
 * -1 if misused or the stream had an error. */
int st_json_finish(struct st_json *j);
/* Write s as a quoted, escaped JSON string. */
void st_json_write_string(FILE *out, const char *s);

#endif /* STRATA_TOOL_JSON_H */
